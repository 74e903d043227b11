"""Accounts and the addresses that name them, written once for every path.

User ``i`` of a server is ``user<i>@<domain>``. A mistyped address is the same with a
mistyped user part (``user<i>x``: nobody's) or a mistyped domain (two letters of the
top-level label swapped: a domain that does not exist). The engines carry addresses as
text and parse them (:func:`parse_local`); the flow path carries them parsed, as arrays of
(ISP, user, typo); :func:`account` decides from either which account an address names, so
"user unknown" is one rule on both paths.
"""

from __future__ import annotations

from typing import Any

TYPO_NONE, TYPO_USER, TYPO_DOMAIN = 0, 1, 2   # how an address is mistyped
# the user ``postmaster`` stands for: every domain has one (RFC 5321 §4.5.1), whose account
# comes after its users' (:func:`account`)
POSTMASTER = -2


def account_name(user: int) -> str:
    """The account's name, as POP3 USER and SMTP AUTH give it."""
    return f"user{user}"


def mistyped(domain: str) -> str:
    """A domain with two letters of its top-level label swapped: it does not exist."""
    head, _, tld = domain.rpartition(".")
    typo = tld[0] + tld[2] + tld[1] + tld[3:] if len(tld) > 2 else tld + tld[0]
    return f"{head}.{typo}"


def recipient_address(domain: str, user: int, typo: int) -> str:
    """The address someone writes for ``user`` of ``domain``: right, with a mistyped user
    part, or with a mistyped domain."""
    if typo == TYPO_USER:
        return f"user{user}x@{domain}"
    if typo == TYPO_DOMAIN:
        return f"user{user}@{mistyped(domain)}"
    return f"user{user}@{domain}"


def recipient_addresses(domain: str, users: list[int], typos: list[int]) -> list[str]:
    """:func:`recipient_address` of many users of one domain (one call a message: a spam
    message names some 25)."""
    wrong = mistyped(domain) if TYPO_DOMAIN in typos else ""
    return [f"user{u}x@{domain}" if t == TYPO_USER else f"user{u}@{wrong}" if t == TYPO_DOMAIN
            else f"user{u}@{domain}" for u, t in zip(users, typos, strict=True)]


def parse_local(local: str) -> tuple[int, int]:
    """The (user, typo) a local part stands for: ``user7`` is (7, TYPO_NONE), ``user7x``
    (7, TYPO_USER), ``postmaster`` in any case (POSTMASTER, TYPO_NONE); anything else
    (``user07``, ``user²``, ``"user 7"``) is (-1, TYPO_USER), which names no account."""
    if local[:4] != "user":
        if local.lower() == "postmaster":
            return POSTMASTER, TYPO_NONE
        return -1, TYPO_USER
    digits, typo = local[4:], TYPO_NONE
    if digits[-1:] == "x":
        digits, typo = digits[:-1], TYPO_USER
    # ASCII digits without a leading zero: "user²" and "user07" name nobody
    if digits.isascii() and digits.isdigit() and (digits[0] != "0" or digits == "0"):
        return int(digits), typo
    return -1, TYPO_USER


def in_domain(isp: Any, typo: Any, server: Any) -> Any:
    """Whether an address carried parsed, for the domain of ISP ``isp``, is in the domain of
    ISP ``server``'s mail server: the right domain of that same ISP. For one address, or
    arrays of them."""
    return (isp == server) & (typo != TYPO_DOMAIN)


# the "account" of the null reverse path <> (a bounce's sender): nobody's, and not "none"
NULL_SENDER = -3


def sender_account(reverse_path: str, domain: str, users: int) -> int:
    """The account of a server (``domain``, ``users`` accounts) a reverse path names: -1
    for none, :data:`NULL_SENDER` for ``<>``."""
    if not reverse_path:
        return NULL_SENDER
    local, at, sender_domain = reverse_path.rpartition("@")
    if not at or sender_domain.lower() != domain:
        return -1
    return int(account(*parse_local(local), users))


def account(user: Any, typo: Any, users: Any) -> Any:
    """The account an address names at a server of ``users`` accounts, -1 for none, and
    ``users`` for its postmaster: a Python int for one address, an array for arrays of them
    (the same expression)."""
    names = (typo == TYPO_NONE) & (user >= 0) & (user < users)
    postmaster = (typo == TYPO_NONE) & (user == POSTMASTER)
    return (user + 1) * names - 1 + postmaster * (users + 1)

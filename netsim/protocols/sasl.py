"""SASL PLAIN (RFC 4616) and LOGIN encodings, shared by the SMTP and IMAP engines.

Only the encodings, and which PLAIN messages give credentials, live here; the exchange (334
prompts, ``+`` continuations, ``*`` to cancel) is the engines'.
"""

from __future__ import annotations

import base64
import binascii
import enum

__all__ = [
    "LOGIN_PASSWORD_PROMPT",
    "LOGIN_USERNAME_PROMPT",
    "MECHANISMS",
    "PlainRefused",
    "b64decode",
    "b64encode",
    "encode_plain",
    "plain_credentials",
]

#: The mechanisms the engines implement.
MECHANISMS = ("PLAIN", "LOGIN")
LOGIN_USERNAME_PROMPT = "VXNlcm5hbWU6"  # base64 of "Username:"
LOGIN_PASSWORD_PROMPT = "UGFzc3dvcmQ6"  # base64 of "Password:"


def b64encode(text: str) -> str:
    """Base64 of the UTF-8 encoding of ``text``; ``"="`` for the empty string (RFC 4954)."""
    if not text:
        return "="
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def b64decode(data: str) -> str | None:
    """Decode strict base64 to UTF-8 text; ``"="`` is the empty string.

    Returns:
        The text, or ``None`` if ``data`` is not valid base64 or not UTF-8.
    """
    if data == "=":
        return ""
    try:
        raw = binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None


def encode_plain(username: str, password: str, authzid: str = "") -> str:
    """The base64 PLAIN message ``authzid NUL authcid NUL passwd``."""
    return b64encode(f"{authzid}\0{username}\0{password}")


class PlainRefused(enum.Enum):
    """Why a PLAIN message gives no credentials."""

    NOT_BASE64 = "not base64, or not UTF-8"
    MALFORMED = "not authzid NUL authcid NUL passwd"
    OTHER_IDENTITY = "asks to act for another user"


def plain_credentials(data: str) -> tuple[str, str] | PlainRefused:
    """``(username, password)`` from a base64 PLAIN message, or why there are none.

    Acting for another identity (an authzid that is not the user's own) is not supported:
    a user logs in only as themselves.
    """
    text = b64decode(data)
    if text is None:
        return PlainRefused.NOT_BASE64
    parts = text.split("\0")
    if len(parts) != 3 or not parts[1]:
        return PlainRefused.MALFORMED
    authzid, username, password = parts
    if authzid and authzid != username:
        return PlainRefused.OTHER_IDENTITY
    return username, password

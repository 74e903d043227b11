"""The facts a policy judges, for one ask (the engines') or many (the flow path's).

An :class:`Ask` is what the server knows when it asks a policy about one session or
recipient, in Python scalars; :class:`Asks` holds many, as numpy arrays read on demand.
:func:`session_ask`, :func:`recipient` and :func:`data_ask` make one from what the engines
see (the session and the server, an address, an envelope); the flow path makes many from
its arrays (``netsim.world.dialogue``). Decisions over facts are written once in
``netsim.mail.policy`` and ``netsim.mail.defences``: :func:`not_` and :func:`inbound` are
their shared pieces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Protocol

import numpy as np

from netsim.mail.accounts import account, parse_local
from netsim.mail.message import Kind
from netsim.net import Network
from netsim.protocols import Envelope, SMTPSession

__all__ = ["FACTS", "Ask", "Asks", "Later", "PolicyServer", "Texts", "data_ask", "inbound",
           "made", "not_", "recipient", "session_ask"]


def not_(x: Any) -> Any:
    """Logical not of a bool or of a bool array (``~`` turns a Python bool into -2)."""
    return x ^ True


def inbound(user: Any, own: Any) -> Any:
    """A stranger's session: not authenticated, not from the server's own networks. What
    inbound defences (greylisting, content filters) examine."""
    return (user < 0) & not_(own)


@dataclass(slots=True)
class Ask:
    """What the server knows when a policy is asked about one session or recipient (Python
    scalars; :class:`Asks` holds many)."""

    at: Any                 # the instant the server acts [s]
    client: Any             # the client's address (-1: not an address of the world)
    subnet: Any             # the client's network, an index into the address plan (-1: none)
    port: Any               # the port the client connected to
    own: Any                # the client is in the server's own networks ("mynetworks")
    user: Any               # the authenticated account at this server; -1: none
    size: Any = 0           # the message's size [bytes]
    local: Any = False      # RCPT: the recipient's domain is the server's
    account: Any = -1       # RCPT: the account the recipient names at the server; -1: none
    key: Any = 0            # DATA: the message's key (netsim.draws)
    spam: Any = False       # DATA: the message is spam (what a content filter detects)
    reverse_path: Any = ""
    sender: Any = None      # MAIL: the account the reverse path names (None: from its text)
    forward_path: Any = ""
    pop_at: Any = -math.inf  # the client address's last POP3 login at the server [s]


FACTS = tuple(f.name for f in fields(Ask))
_DEFAULTS = {f.name: f.default for f in fields(Ask)}
_FACT_SET = frozenset(FACTS)


class Asks:
    """Many asks, one entry each (the flow path's): the facts of :class:`Ask` as numpy
    arrays, or one value shared by all; ``reverse_path`` and ``forward_path`` as
    :class:`Texts`, made only for the entries a policy reads them for; a fact may come
    :class:`Later`, made when a policy first reads it. A part taken out of another keeps an
    index and reads a fact only when a policy asks for it."""

    # a fact read is kept as an attribute: later reads of it are plain attribute reads
    __slots__ = ("__dict__", "_facts", "_index", "_n")

    def __init__(self, n: int, facts: dict[str, Any], index: np.ndarray | None = None):
        if not facts.keys() <= _FACT_SET:
            raise TypeError(f"not facts of an ask: {sorted(set(facts) - _FACT_SET)}")
        self._facts = facts
        self._index = index
        self._n = n if index is None else len(index)

    def __len__(self) -> int:
        return self._n

    def __getattr__(self, name: str) -> Any:
        if name not in _DEFAULTS:
            raise AttributeError(name)
        value = self._facts.get(name, _DEFAULTS[name])
        if isinstance(value, Later):   # made once, when first read
            value = self._facts[name] = made(value)
        if isinstance(value, Texts):   # a Texts read knows its entries
            value = value[np.arange(self._n) if self._index is None else self._index]
        elif self._index is not None and isinstance(value, np.ndarray):
            value = value[self._index]
        self.__dict__[name] = value
        return value

    def take(self, index: np.ndarray) -> Asks:
        """The asks at ``index``."""
        mine = self._index
        return Asks(self._n, self._facts, index if mine is None else mine[index])

    def row(self, i: int) -> Ask:
        """Ask ``i``, as Python scalars."""
        return Ask(*(_item(getattr(self, name), i) for name in FACTS))


class Later:
    """A fact of many asks made when a policy first reads it."""

    __slots__ = ("make",)

    def __init__(self, make: Any):
        self.make = make


def made(fact: Any) -> Any:
    """A fact's value: made now if it comes :class:`Later`."""
    return fact.make() if isinstance(fact, Later) else fact


def _item(value: Any, i: int) -> Any:
    if isinstance(value, Texts):
        return value.text(i)
    if isinstance(value, np.ndarray):
        return value[i].item()
    return value


class Texts:
    """Addresses of many asks, made on demand: ``make(i)`` is the text of entry ``i`` of
    the arrays they were made from; ``make_many(indices)``, if given, the texts of many
    at once (a policy that reads every entry's address, as greylisting does)."""

    __slots__ = ("_index", "_make", "_make_many")

    def __init__(self, make: Any, index: np.ndarray | None = None, make_many: Any = None):
        self._make = make
        self._index = index
        self._make_many = make_many

    def __getitem__(self, index: np.ndarray) -> Texts:
        mine = self._index
        return Texts(self._make, index if mine is None else mine[index], self._make_many)

    def text(self, i: int) -> str:
        return str(self._make(int(i if self._index is None else self._index[i])))

    def texts(self) -> list[str]:
        """Every entry's text, in order (the entries a part was taken at)."""
        assert self._index is not None, "Texts are read through Asks, which index them"
        if self._make_many is not None:
            return list(self._make_many(self._index))
        make = self._make
        return [str(make(i)) for i in self._index.tolist()]


class PolicyServer(Protocol):
    """What a policy may read of the server that asks it (``MailServer`` is one): the
    ``server`` of the classic hooks, and all :func:`session_ask` and :func:`recipient` read.

    Attributes:
        now: The instant the server acts on the current command [s].
        domain: The server's mail domain, lower case.
        users: How many accounts the server has (``user0`` … ``user<users-1>``).
        own_subnets: The indices of the server's own networks ("mynetworks").
        network: The world's network (its address plan places a client).
    """

    @property
    def now(self) -> float: ...

    @property
    def domain(self) -> str: ...

    @property
    def users(self) -> int: ...

    @property
    def own_subnets(self) -> frozenset[int]: ...

    @property
    def network(self) -> Network: ...

    def user_index(self, name: str) -> int | None:
        """The index of an account name (``user7`` or ``user7@domain``), None if unknown."""

    def pop_login(self, client: int, at: float) -> float:
        """When ``client`` last logged in by POP3 at the server, at or before ``at``
        (-inf: never); what POP-before-SMTP reads."""


def session_ask(server: PolicyServer, session: SMTPSession) -> Ask:
    """The facts of one session at ``server``, as the engines' hooks see it."""
    client = session.client_address
    subnet = -1
    if isinstance(client, int):
        try:
            subnet = server.network.plan.subnet_of(client).index
        except KeyError:   # a lab client outside the world's networks
            subnet = -1
    name = session.authenticated_user
    user = server.user_index(name) if name else None
    at = server.now
    return Ask(at=at, client=client if isinstance(client, int) else -1,
               subnet=subnet, port=session.port, own=subnet in server.own_subnets,
               user=-1 if user is None else user, reverse_path=session.mail_from or "",
               pop_at=server.pop_login(client, at) if isinstance(client, int) else -math.inf)


def recipient(server: PolicyServer, ask: Ask, forward_path: str) -> Ask:
    """``ask``, now about the recipient ``forward_path`` (local to the server? which
    account?): the same object, changed (asked once a recipient)."""
    local, at, domain = forward_path.rpartition("@")   # asked per recipient: no helpers
    if not at:   # a bare <postmaster> is this server's (RFC 5321 §4.1.1.3)
        local, domain = forward_path, server.domain
    ask.local = is_local = domain.lower() == server.domain
    ask.account = account(*parse_local(local), server.users) if is_local else -1
    ask.forward_path = forward_path
    return ask


def data_ask(ask: Ask, envelope: Envelope) -> Ask:
    """``ask``, now about the message of ``envelope`` (the simulation carries a ``Mail``;
    the lab, bytes): the same object, changed."""
    mail = envelope.payload
    ask.size = envelope.size
    ask.key = int(getattr(mail, "key", 0))
    ask.spam = getattr(mail, "kind", None) is Kind.SPAM
    return ask

"""Which engine serves a lab connection, and what the session loop must know of it.

SMTP (25, 587, 465), POP3 (110, 995) and IMAP (143, 993) each get the world server's engine
with the lab's hooks (:mod:`netsim.lab.hooks`) inside its byte layer. Where the lab has TLS,
STARTTLS and STLS are offered on the plain ports, and the scenario's security settings keep
logins inside TLS (``submission_security: tls``, ``pop3_security: stls|pop3s``,
``imap_security: starttls|imaps``). POP3 and IMAP are mail reading: one pool of slots, a
silent close at their idle timeout and when the lab stops.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from netsim.lab.hooks import LabIMAPHooks, LabPOP3Hooks, LabSMTPHooks
from netsim.lab.layout import LabLayout, Service
from netsim.lab.settings import LabSettings
from netsim.lab.store import Postmaster
from netsim.protocols import POP3WireServer, SMTPWireServer, encode_pop3_reply, encode_reply
from netsim.protocols.imap_responses import BYE_BUSY, StatusResponse
from netsim.protocols.imap_wire import IMAPWireServer
from netsim.protocols.pop3_replies import ERR_BUSY, ERR_TOO_MANY_FROM_ADDRESS
from netsim.protocols.replies import S421_TOO_MANY_FROM_ADDRESS, S421_TOO_MANY_SESSIONS

__all__ = ["Engines", "Served", "busy", "too_many_from_address"]

Wire = SMTPWireServer | POP3WireServer | IMAPWireServer


@dataclass(eq=False, slots=True)
class Served:
    """One connection's engine, as the session loop drives it.

    Attributes:
        wire: The byte layer around the engine.
        idle_s: Its idle timeout [s].
        pop3: POP3's hooks, to unlock the maildrop when the connection ends.
        imap: IMAP's hooks, to tell the session of new mail.
        resting: The loop waits for the client's bytes: news may be written at once.
        held: News to write before the loop reads again.
    """

    wire: Wire
    idle_s: float
    pop3: LabPOP3Hooks | None = None
    imap: LabIMAPHooks | None = None
    resting: bool = False
    held: bytes = b""

    @property
    def is_smtp(self) -> bool:
        """SMTP says 421 at its idle timeout and when the lab stops; POP3 and IMAP close
        silently (RFC 1939 §3; RFC 9051 §5.4 allows it)."""
        return isinstance(self.wire, SMTPWireServer)

    def news(self, user: int) -> bytes:
        """Mail reached ``user``'s maildrop: what to tell the client now. The engine tells
        a client idling in that mailbox at once (``* n EXISTS``), any other before the
        responses to its next command."""
        wire, hooks = self.wire, self.imap
        if hooks is None or hooks.user != user or wire.closed:
            return b""
        assert isinstance(wire, IMAPWireServer)
        return wire.new_messages(hooks.arrivals())

    def end(self) -> None:
        """The connection is over: a POP3 maildrop is unlocked without deleting (unless QUIT
        committed), an IMAP mailbox released."""
        if self.pop3 is not None:
            self.pop3.release()
        if isinstance(self.wire, IMAPWireServer) and not self.wire.closed:
            self.wire.engine.abort()


def busy(service: Service, hostname: str) -> bytes:
    """The refusal when a pool of session slots is full."""
    if service.is_imap:
        return StatusResponse("*", BYE_BUSY).to_bytes()
    if service.is_pop3:
        return encode_pop3_reply(ERR_BUSY)
    return encode_reply(S421_TOO_MANY_SESSIONS.with_text(
        f"{hostname} too many sessions, try again later"))


def too_many_from_address(service: Service) -> bytes:
    """The refusal when one address holds its share of a pool (IMAP has no code for the
    address's share: its BYE says the server is busy)."""
    if service.is_imap:
        return StatusResponse("*", BYE_BUSY).to_bytes()
    if service.is_pop3:
        return encode_pop3_reply(ERR_TOO_MANY_FROM_ADDRESS)
    return encode_reply(S421_TOO_MANY_FROM_ADDRESS)


class Engines:
    """Makes each connection's engine.

    Args:
        layout: The lab's servers.
        postmaster: Where accepted mail goes (and its spool, which deletions reach).
        settings: Timeouts and the budget of bad commands.
        tls: Whether the lab has TLS.
    """

    def __init__(self, layout: LabLayout, postmaster: Postmaster, settings: LabSettings, *,
                 tls: bool) -> None:
        self.layout = layout
        self.postmaster = postmaster
        self.settings = settings
        self.tls = tls
        # a new, larger UIDVALIDITY each start: the maildrops number their mail afresh
        self.uidvalidity = int(time.time())

    def serve(self, service: Service, address: object, peer_host: str) -> Served:
        """The engine for a connection to ``service`` from ``address`` (the scenario
        address, or the peer's text for a stranger)."""
        index, s, tls = service.server, self.settings, self.tls
        server = self.layout.servers[index]
        security = self.layout.world.scenario.isps[index].mail_server
        # POP3 and IMAP engines get the port as the lab presents it: with pop3s or imaps in
        # the scenario, the plain 110 and 143 are still plain (the engine's TLS follows 995
        # and 993)
        if service.is_imap:
            imap = LabIMAPHooks(server, self.uidvalidity, self.postmaster.spool)
            engine_imap, _ = server.imap_engine(
                service.standard_port, address, imap, s.max_errors, starttls=tls,
                tls=service.implicit_tls,
                allow_plaintext=not (tls and security.imap_security in ("starttls", "imaps")))
            return Served(IMAPWireServer(engine_imap), s.imap_idle_s, imap=imap)
        if service.is_pop3:
            pop3 = LabPOP3Hooks(server, self.postmaster.spool)
            # the wall clock in the APOP timestamp keeps it unique across lab restarts
            engine_pop3, _ = server.pop3_engine(
                service.standard_port, address, pop3, s.max_errors,
                stamp=str(int(time.time())), stls=tls, tls=service.implicit_tls,
                allow_plaintext=not (tls and security.pop3_security in ("stls", "pop3s")))
            return Served(POP3WireServer(engine_pop3), s.pop3_idle_s, pop3=pop3)
        engine, _ = server.smtp_engine(
            service.scenario_port, address, LabSMTPHooks(server, index, self.postmaster),
            s.max_errors, starttls=tls, tls=service.implicit_tls,
            auth_requires_tls=tls and security.submission_security == "tls")
        engine.session.extra["peer"] = peer_host
        return Served(SMTPWireServer(engine), s.smtp_idle_s)

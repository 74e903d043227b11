"""How the lab listens, and how patient it is: the settings ``netsim serve`` takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from netsim.lab.layout import PortMap
from netsim.lab.relay import RelaySettings

__all__ = ["LabSettings"]


@dataclass(frozen=True, slots=True)
class LabSettings:
    """How the lab listens and how patient it is.

    Attributes:
        ports: Where the standard ports go (see :class:`~netsim.lab.layout.PortMap`).
        bind_all: Also listen on every interface (server k at port + 100·k).
        at: The scenario time at which the lab starts [s].
        smtp_idle_s: SMTP idle timeout [s].
        pop3_idle_s: POP3 idle timeout [s].
        imap_idle_s: IMAP idle timeout [s] (RFC 9051 §5.4: at least 30 minutes; a client
            in IDLE renews it within that).
        max_errors: Bad commands a session may send before 421, -ERR or BYE and close.
        auth_failure_delay_s: How long the reply to a failed SMTP AUTH waits [s] (Postfix
            smtpd_error_sleep_time, 1 s): guessing passwords costs time.
        per_address_sessions: Sessions one client address may hold of a server's SMTP
            slots or of its mail-reading (POP3 and IMAP) slots; ``None``: half of them
            (Postfix: 50 of 100 processes).
        min_data_rate: A partly received line or message must complete within the idle
            timeout, extended by the octets that arrive at this rate [octets/s] (Postfix
            smtpd_min_data_rate, 500): trickling a byte at a time keeps no session.
        session_deadline_s: The longest a session may last [s]. Assumed (1 hour).
        tls: Serve TLS: STARTTLS and STLS on the plain ports, implicit TLS on 465, 995 and
            993, with a CA made at start (:class:`~netsim.lab.tls.LabTLS`).
        tls_dir: Where the CA certificate is written (None: a new temporary folder).
        spool: Keep accepted mail on disk under this folder (:mod:`netsim.lab.spool`), and
            take back what it holds at start; None: in memory only.
        drop_hold_s: How long a dropped connection is held unanswered [s]; ``None``: the
            scenario's ``smtp.connect_timeout_s``.
        relay: The relay's retry schedule and timeouts.
        pcap: Record every session and write it to this file when the lab stops
            (:mod:`netsim.lab.capture`); None: record nothing.
    """

    ports: PortMap = field(default_factory=PortMap)
    bind_all: bool = False
    at: float = 0.0
    smtp_idle_s: float = 300.0
    pop3_idle_s: float = 600.0
    imap_idle_s: float = 1800.0
    max_errors: int = 10
    auth_failure_delay_s: float = 1.0
    per_address_sessions: int | None = None
    min_data_rate: float = 500.0
    session_deadline_s: float = 3600.0
    tls: bool = True
    tls_dir: Path | None = None
    spool: Path | None = None
    drop_hold_s: float | None = None
    relay: RelaySettings = field(default_factory=RelaySettings)
    pcap: Path | None = None

"""SMTP sessions as arrays (the flow path), from the greeting to QUIT.

Every decision is asked where the engines ask it: the servers' policies through
``netsim.mail.consult`` (the connect, MAIL, RCPT and data steps, each policy in its server's
order), the engine's own checks through ``netsim.protocols.smtp_server`` (AUTH before MAIL
on 587, the size limit, the recipient limit), the instants through ``netsim.mail.session``.
What is written here is only how the arrays become the facts the policies judge.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from netsim.draws import keyed_exponential
from netsim.mail import Kind, Mail, SenderType
from netsim.mail.accounts import (
    NULL_SENDER,
    TYPO_NONE,
    account,
    account_name,
    in_domain,
    recipient_address,
)
from netsim.mail.consult import Consultation, Refusals
from netsim.mail.facts import Asks, Later, Texts, made
from netsim.mail.ledger import KINDS, Ledger
from netsim.mail.policy import mechanism
from netsim.mail.server import MailServer
from netsim.mail.session import exchange, exchanges, greeting, transfer
from netsim.net import AddressPlan
from netsim.protocols import Envelope, Reply, SMTPSession
from netsim.protocols.replies import S452_TOO_MANY_RCPTS
from netsim.protocols.smtp_server import auth_required, mail_checks, too_many_recipients
from netsim.world.columns import Columns


class FlowError(ValueError):
    """A world, or a reply of a policy, that the flow path cannot decide (the engines
    can): run it at fidelity ``session``."""


class ServerArrays:
    """What the flow path's sessions read of the mail servers they reach: their settings as
    arrays, one entry a server (whether a network is a server's own: one entry a server and
    network), their policies laid out (``Consultation``, once they are final: ``ready``),
    the sessions each served. The first ``isps`` servers are the ISPs', by ISP index (the
    index a recipient's domain names); others (open relays) follow."""

    consultation: Consultation

    def __init__(self, servers: Sequence[MailServer], plan: AddressPlan,
                 isps: int | None = None):
        self.servers = servers
        self.isps = len(servers) if isps is None else isps
        self.proc = np.array([s.processing_s for s in servers])
        self.max_rcpt = np.array([s.settings.max_recipients for s in servers])
        self.size_limit = np.array([s.settings.message_size_limit for s in servers])
        self.bandwidth = np.array([s.settings.server_bandwidth_bps for s in servers])
        self.scan_mean = np.array([s.settings.scan_mean_s for s in servers])
        self.scan_salt = np.array([s.scan_salt for s in servers], dtype=np.uint64)
        self.users = np.array([s.users for s in servers])
        self.subnet_bps = np.array([n.bandwidth_bps for n in plan.subnets])
        # whether a client network is one of the server's own ("mynetworks")
        self.own = np.zeros((len(servers), len(plan.subnets)), dtype=bool)
        for i, server in enumerate(servers):
            self.own[i, list(server.own_subnets)] = True
        self.sessions = np.zeros(len(servers), dtype=np.int64)

    def ready(self) -> None:
        """The servers' policies are final (the run starts): lay them out."""
        self.consultation = Consultation(self.servers)

    def last_logins(self, server: np.ndarray, client: np.ndarray, opened: np.ndarray,
                    one_way: np.ndarray, asked: np.ndarray) -> np.ndarray:
        """Each session's ``pop_at`` fact: its client's last POP3 login at its server as of
        the greeting (``MailServer.pop_login``, as the engines' hooks read it; -inf: none),
        where ``asked``; only servers that have seen logins are asked."""
        pop_at = np.full(len(server), -math.inf)
        seen = np.array([bool(s.pop_logins) for s in self.servers])
        ask = np.flatnonzero(asked & seen[server])
        if len(ask):
            greet = greeting(opened[ask], one_way[ask], self.proc[server[ask]])[0]
            servers = self.servers
            for j, i in enumerate(ask.tolist()):
                pop_at[i] = servers[int(server[i])].pop_login(int(client[i]), float(greet[j]))
        return pop_at

    def count(self) -> None:
        """After the run: what was counted in arrays joins the servers' and policies'."""
        self.consultation.count()
        for server, n in zip(self.servers, self.sessions.tolist(), strict=True):
            server.stats_sessions += n
            server.stats_smtp_sessions += n


@dataclass
class Decided:
    """What a batch of sessions decided. Per recipient: its reply code (0: accepted), what
    stopped it (a ``stopped_by`` code), and whether it went to the junk folder. Per
    session: when the server answered the final dot (NaN: no data) and when the session
    ended for the client (after QUIT, or after a 421)."""

    code: np.ndarray
    cause: np.ndarray
    junk: np.ndarray
    dot: np.ndarray
    end: np.ndarray


@dataclass(slots=True)
class Part:
    """One sender's sessions ready for a dialogue (``Dialogue``'s ``s``, ``r`` and ``helo``),
    and what it does with what they decided (``close``)."""

    sessions: Columns
    recipients: Columns
    helo: Callable[[int], str]
    close: Callable[[Decided], None]


def decide_parts(servers: ServerArrays, ledger: Ledger, parts: Sequence[Part]) -> None:
    """Decide several senders' sessions in one dialogue, so that a stateful policy sees all
    of them in time order (an account's rate limit: its owner's sessions and spammers'
    with its password), and hand each part what its own sessions decided."""
    if not parts:
        return
    if len(parts) == 1:
        part = parts[0]
        part.close(Dialogue(servers, ledger, part.sessions, part.recipients, part.helo).decide())
        return
    counts = [len(p.sessions) for p in parts]
    first = np.cumsum([0, *counts]).tolist()
    sizes = [len(p.recipients) for p in parts]
    start = np.cumsum([0, *sizes]).tolist()
    sessions = Columns.join([p.sessions for p in parts])
    recipients = Columns.join([p.recipients.but(session=p.recipients.session + a)
                               for p, a in zip(parts, first[:-1], strict=True)])

    def helo(k: int) -> str:
        j = bisect.bisect_right(first, k) - 1
        return parts[j].helo(k - first[j])

    d = Dialogue(servers, ledger, sessions, recipients, helo).decide()
    for j, part in enumerate(parts):
        r, s = slice(start[j], start[j + 1]), slice(first[j], first[j + 1])
        part.close(Decided(d.code[r], d.cause[r], d.junk[r], d.dot[s], d.end[s]))


class Dialogue:
    """SMTP sessions at the servers of the flow path (the ISPs'), decided as arrays.

    ``s`` has one row a session: ``server`` (an ISP index), ``opened`` (the connection is
    open), ``one_way``, ``client`` (its address), ``subnet``, ``port``, ``user`` (the account
    that authenticates, -1: none), ``from_srv`` and ``from_user`` (the reverse path: -1 for
    a bounce's null path), ``size``, ``key``, ``kind`` (a ledger kind code), ``mid`` and,
    optionally, ``pop_at`` (the client's last POP3 login at the server; none by default).
    ``r`` has one row a recipient, grouped by session in RCPT order: ``session`` (a row of
    ``s``), ``place`` (its place among the session's RCPTs), ``rcpt_isp``, ``rcpt_user``,
    ``typo`` and ``row`` (its ledger row). ``helo(k)`` is the name session ``k``'s client
    greets with.
    """

    def __init__(self, servers: ServerArrays, ledger: Ledger, s: Columns, r: Columns,
                 helo: Callable[[int], str]):
        self.arrays = servers
        self.ledger = ledger
        self.s = s
        self.r = r
        self.helo = helo
        self.servers = servers.servers
        self.facts = self._session_facts()
        self.proc = servers.proc[s.server]
        servers.sessions += np.bincount(s.server, minlength=len(self.servers))

    # -- the facts -------------------------------------------------------------------------
    def _sender(self, k: int) -> str:
        user = int(self.s.from_user[k])
        return "" if user < 0 else self.servers[int(self.s.from_srv[k])].address_of(user)

    def _forward_path(self, i: int) -> str:
        r = self.r
        return recipient_address(self.servers[int(r.rcpt_isp[i])].domain, int(r.rcpt_user[i]),
                                 int(r.typo[i]))

    def _senders(self, k: np.ndarray) -> list[str]:
        """The reverse paths of sessions ``k``, each session's made once."""
        texts: dict[int, str] = {}
        out = []
        for j in k.tolist():
            text = texts.get(j)
            if text is None:
                text = texts[j] = self._sender(j)
            out.append(text)
        return out

    def _forward_paths(self, i: np.ndarray) -> list[str]:
        r, servers = self.r, self.servers
        return [recipient_address(servers[isp].domain, user, typo) for isp, user, typo in zip(
            r.rcpt_isp[i].tolist(), r.rcpt_user[i].tolist(), r.typo[i].tolist(), strict=True)]

    def _session_facts(self) -> dict[str, Any]:
        """The facts of each session (arrays, one entry a session)."""
        s, arrays = self.s, self.arrays
        facts = {"client": s.client, "subnet": s.subnet, "port": s.port,
                 "own": arrays.own[s.server, s.subnet], "user": s.user, "size": s.size,
                 "key": s.key, "spam": s.kind == KINDS.index(Kind.SPAM),
                 # (not a method: a fact that held the dialogue would make a reference
                 # cycle, and each minute's arrays would wait for the cycle collector)
                 "sender": Later(lambda: _sender_accounts(s, arrays.users))}
        if "pop_at" in s:   # users' sessions: their clients' POP3 logins
            facts["pop_at"] = s.pop_at
        return facts

    def _session_ask(self, at: np.ndarray, authenticated: bool) -> Asks:
        """Each session's facts at instants ``at`` (before AUTH, or after it)."""
        facts = {**self.facts, "at": at, "reverse_path": Texts(self._sender)}
        if not authenticated:
            facts["user"] = -1
        return Asks(len(at), facts)

    def _session(self, k: int, step: str) -> SMTPSession:
        """Session ``k`` as a classic hook sees it at ``step``."""
        s = self.s
        port = int(s.port[k])
        greeted = step != "connect"
        user = int(s.user[k])
        return SMTPSession(
            client_address=int(s.client[k]), port=port,
            server_hostname=self.servers[int(s.server[k])].hostname,
            helo_name=self.helo(k) if greeted else None, esmtp=greeted,
            authenticated_user=account_name(user) if greeted and user >= 0 else None,
            tls=port == 465, mail_from=self._sender(k) if step in ("rcpt", "data") else None)

    def _mail(self, k: int, rows: list[int], addresses: list[str]) -> Mail:
        """The message of session ``k`` as a classic data hook sees it."""
        ledger, s = self.ledger, self.s
        row = rows[0]
        return Mail(int(s.mid[k]), KINDS[int(s.kind[k])], SenderType(ledger.word("sender", row)),
                    self._sender(k), int(s.size[k]), float(ledger.value("created_s", row)),
                    origin=ledger.word("origin_isp", row),
                    rows=dict(zip(addresses, rows, strict=True)), key=int(s.key[k]))

    # -- the dialogue ----------------------------------------------------------------------
    def decide(self) -> Decided:
        arrays, s, r = self.arrays, self.s, self.r
        n_s = len(s)
        one_way, proc = s.one_way, self.proc
        # the greeting: the connect policies (a 554 or a 421 refuses the whole session)
        acts, first = greeting(s.opened, one_way, proc)
        greet, greet_cause = self._codes(self._session_step(
            "connect", acts, False, np.ones(n_s, dtype=bool),
            lambda k: (self._session(k, "connect"), None)))
        # EHLO, AUTH (the flow path's clients give their own account's password), MAIL FROM:
        # the engine's checks, then the policies
        authenticated = s.user >= 0
        mail_at, after_mail = exchange(exchanges(first, 1 + authenticated, one_way, proc),
                                       one_way, proc)
        mail = np.zeros(n_s, dtype=np.int64)
        mail_cause = np.zeros(n_s, dtype=np.int64)
        for refuses, reply in mail_checks(auth_required(s.port), authenticated, s.size,
                                          arrays.size_limit[s.server]):
            hit = (greet == 0) & (mail == 0) & refuses
            mail[hit], mail_cause[hit] = reply.code, self._cause(reply)
        policy, policy_cause = self._codes(self._session_step(
            "mail", mail_at, True, (greet == 0) & (mail == 0),
            lambda k: (self._session(k, "mail"), self._sender(k))))
        mail, mail_cause = np.where(mail > 0, mail, policy), np.where(mail > 0, mail_cause,
                                                                      policy_cause)
        refused = np.where(greet > 0, greet, mail)
        code = refused[r.session]
        cause = np.where(greet > 0, greet_cause, mail_cause)[r.session]
        # RCPT TO: the recipient limit, then the policies, one recipient at a time per session
        k = r.session
        rcpt_at = exchange(exchanges(first[k], 2 + authenticated[k] + r.place, one_way[k],
                                     proc[k]), one_way[k], proc[k])[0]
        self._recipients(code, cause, rcpt_at, refused == 0)
        # DATA and the message: the data policies judge what was accepted
        count = np.bincount(k, minlength=n_s)
        accepted = code == 0
        accepted_any = np.bincount(k[accepted], minlength=n_s) > 0
        content_sent = exchanges(first, 3 + authenticated + count, one_way, proc)
        data = transfer(s.size, arrays.bandwidth[s.server], arrays.subnet_bps[s.subnet])
        dot, quit_sent = exchange(content_sent, one_way, proc, data, self._scan(accepted_any))
        judged = self._session_step("data", dot, True, accepted_any,
                                    lambda j: self._data_hook_args(j, accepted))
        data, data_cause = self._codes(judged)
        hit = accepted & (data[k] > 0)
        code[hit], cause[hit] = data[k][hit], data_cause[k][hit]
        junk = accepted & ~hit & judged.junk[k]
        # the end of each session for the client: QUIT after the data or a refusal, none
        # after a 421
        last_reply = np.where(greet > 0, first,
                              np.where(mail > 0, after_mail,
                                       exchanges(first, 2 + authenticated + count, one_way,
                                                 proc)))
        end = np.where(accepted_any, exchanges(quit_sent, 1, one_way, proc),
                       np.where(greet == 421, first, exchanges(last_reply, 1, one_way, proc)))
        return Decided(code, cause, junk, np.where(accepted_any, dot, np.nan), end)

    def _session_step(self, step: str, at: np.ndarray, authenticated: bool,
                      asked: np.ndarray,
                      session_of: Callable[[int], tuple[SMTPSession, object]]) -> Refusals:
        """A step asked once a session, at instants ``at``: its facts are made only where a
        server has a policy for the step (a world without connect or data policies asks
        nothing there)."""
        if not self.arrays.consultation.asks(step):
            return Refusals.empty(len(at))
        return self._step(step, self._session_ask(at, authenticated), asked, session_of)

    def _step(self, step: str, asks: Asks, asked: np.ndarray,
              session_of: Callable[[int], tuple[SMTPSession, object]],
              server: np.ndarray | None = None) -> Refusals:
        """One step, asked where ``asked`` (of the sessions, or of ``server``'s asks: a mask,
        or their indices in time order)."""
        found = self.arrays.consultation.refusals(
            step, self.s.server if server is None else server, asks, session_of, asked)
        if step != "connect" and any(x is not None and x.code == 421 for x in found.replies):
            raise FlowError(f"a policy answered 421 at {step}, which closes a session "
                            "midway: only the engines replay that; use fidelity session")
        return found

    def _codes(self, found: Refusals) -> tuple[np.ndarray, np.ndarray]:
        """Per ask: the refusal's reply code and what it stands for (0, 0: none)."""
        if found.is_empty:
            return found.reply, np.zeros_like(found.reply)
        codes = np.array([0 if x is None else x.code for x in found.replies])
        causes = np.array([0 if x is None else self._cause(x) for x in found.replies])
        return codes[found.reply], causes[found.reply]

    def _cause(self, reply: Reply) -> int:
        return self.ledger.code("stopped_by", mechanism(reply))

    def _recipients(self, code: np.ndarray, cause: np.ndarray, at: np.ndarray,
                    open_session: np.ndarray) -> None:
        """Each recipient's RCPT: refused with 452 once its transaction holds the server's
        limit of recipients, else asked of the policies, all in time order. A recipient
        whose place is below the limit cannot meet it; one beyond it depends on what the
        places before it accepted: the asks are split before each such recipient, so that
        what comes before it in time is decided first."""
        s, r, arrays = self.s, self.r, self.arrays
        limit = arrays.max_rcpt[s.server][r.session]
        asked = open_session[r.session]
        if not (asked & (r.place >= limit)).any():
            # no transaction can reach its limit: one step, which puts its asks in time
            # order if its policies need it (``Consultation.in_order``)
            if asked.any():
                self._ask_rcpt(code, cause, at, asked)
            return
        live = np.flatnonzero(asked)
        live = live[np.argsort(at[live], kind="stable")]
        beyond = r.place[live] >= limit[live]
        cuts = np.flatnonzero(beyond)
        accepted = np.zeros(len(s), dtype=np.int64)
        for start, stop in zip([0, *cuts.tolist()], [*cuts.tolist(), len(live)], strict=True):
            rows = live[start:stop]
            if not len(rows):
                continue
            if beyond[start]:
                first = rows[0]
                if too_many_recipients(accepted[r.session[first]], limit[first]):
                    code[first] = S452_TOO_MANY_RCPTS.code
                    cause[first] = self._cause(S452_TOO_MANY_RCPTS)
                    rows = rows[1:]
            self._ask_rcpt(code, cause, at, rows)
            if len(cuts):   # only counted where a transaction can reach its limit
                accepted += np.bincount(r.session[rows[code[rows] == 0]], minlength=len(s))

    def _ask_rcpt(self, code: np.ndarray, cause: np.ndarray, at: np.ndarray,
                  asked: np.ndarray) -> None:
        """The RCPT policies for the recipients ``asked`` (a mask, or their indices in time
        order), at their instants ``at``."""
        if not len(asked):
            return
        s, r, arrays = self.s, self.r, self.arrays
        k = r.session
        server = s.server[k]
        # each recipient's session's facts, read per recipient when a policy reads them
        facts: dict[str, Any] = {name: Later(lambda v=value: made(v)[k])
                                 for name, value in self.facts.items()}
        facts.update(at=at, reverse_path=Texts(lambda i: self._sender(int(k[i])),
                                               make_many=lambda i: self._senders(k[i])),
                     local=Later(lambda: in_domain(r.rcpt_isp, r.typo, server)),
                     account=Later(lambda: account(r.rcpt_user, r.typo,
                                                   arrays.users[r.rcpt_isp])),
                     forward_path=Texts(self._forward_path, make_many=self._forward_paths))
        asks = Asks(len(r), facts)

        def session_of(i: int) -> tuple[SMTPSession, object]:
            return self._session(int(k[i]), "rcpt"), self._forward_path(i)

        found, found_cause = self._codes(self._step("rcpt", asks, asked, session_of, server))
        hit = found > 0
        code[hit], cause[hit] = found[hit], found_cause[hit]

    def _data_hook_args(self, k: int, accepted: np.ndarray) -> tuple[SMTPSession, object]:
        """What a classic data hook of session ``k`` sees: the session with its accepted
        recipients, and the envelope of the message."""
        r = self.r
        rows = np.flatnonzero((r.session == k) & accepted)
        addresses = [self._forward_path(int(i)) for i in rows]
        session = self._session(k, "data")
        session.rcpt_to = list(addresses)
        mail = self._mail(k, r.row[rows].tolist(), addresses)
        return session, Envelope(mail.mail_from, tuple(addresses), mail.size, mail,
                                 session.helo_name, session.authenticated_user)

    def _scan(self, accepted_any: np.ndarray) -> np.ndarray:
        """The server's scan of each message it receives, keyed by message
        (``MailServer.scan_time``)."""
        arrays, s = self.arrays, self.s
        mean = arrays.scan_mean[s.server]
        scanned = accepted_any & (mean > 0)
        if not scanned.any():   # no draws where none would be used
            return np.zeros(len(mean))
        return np.where(scanned, keyed_exponential(s.key, arrays.scan_salt[s.server], mean),
                        0.0)


def _sender_accounts(s: Columns, users: np.ndarray) -> np.ndarray:
    """The account each session's reverse path names at its server (what SenderLoginMatch
    reads), of servers with ``users`` accounts each."""
    mine = account(s.from_user, TYPO_NONE, users[s.server])
    return np.where(s.from_user < 0, NULL_SENDER, np.where(s.from_srv == s.server, mine, -1))

"""SMTP sessions decided as arrays (the flow path): the adapter's instants, the server's
policies in order, the engines' own replies, the content filter's keyed verdict."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from netsim.mail.defences import Blocklist, ContentFilter, Greylisting, RateLimit
from netsim.mail.draws import keyed_exponential, keyed_uniform
from netsim.mail.hooks import SMTPHooks
from netsim.mail.policy import LocalRecipients, RelayControl, mechanism
from netsim.protocols import Reply, SMTPSession
from netsim.protocols.replies import (
    S451_RATE_LIMITED,
    S452_TOO_MANY_RCPTS,
    S550_USER_UNKNOWN,
    S554_RELAY_DENIED,
)
from netsim.world.columns import Columns
from netsim.world.workload import TYPO_DOMAIN, TYPO_USER, recipient_address

if TYPE_CHECKING:
    from netsim.world.flow import LegitFlow


class Dialogue:
    """SMTP sessions as arrays, timed as the session adapter times them: per session the
    server (an ISP index), the instant the connection opened, the one-way latency and how
    many commands come before the first RCPT; per recipient its session and its place among
    the session's RCPTs."""

    def __init__(self, flow: LegitFlow, server: np.ndarray, opened: np.ndarray,
                 one_way: np.ndarray, before_rcpt: np.ndarray, session: np.ndarray,
                 place: np.ndarray):
        self.flow = flow
        self.server = server
        self.proc = flow.proc[server]
        self.step = 2 * one_way + self.proc
        self.opened = opened
        # the greeting is answered after processing; then the client sends its first command
        self.base = opened + one_way + self.proc
        self.one_way = one_way
        self.before_rcpt = before_rcpt
        self.session = session
        self.place = place
        for i, n in enumerate(np.bincount(server, minlength=len(flow.servers)).tolist()):
            if n:
                flow.servers[i].stats_sessions += n
                flow.servers[i].stats_smtp_sessions += n

    def greeting(self, client: np.ndarray, port: np.ndarray) -> np.ndarray:
        """Per session: the greeting's refusal code (0: 220) from the servers' blocklists."""
        code = np.zeros(len(client), dtype=np.int64)
        for i in np.flatnonzero(self.flow.listed[self.server]).tolist():
            server = self.flow.servers[int(self.server[i])]
            session = SMTPSession(client_address=int(client[i]), port=int(port[i]))
            server.instant = float(self.opened[i] + self.proc[i])
            reply = SMTPHooks(server).on_connect(session)
            server.instant = None
            if reply is not None:
                code[i] = reply.code
        return code

    def decide(self, code: np.ndarray, cause: np.ndarray, *, rows: Columns, client: np.ndarray,
               port: np.ndarray, own: np.ndarray, auth_user: np.ndarray,
               mail_from: Callable[[int], str]) -> None:
        """Fill in each recipient's RCPT reply code (0: accepted) and mechanism code, asking
        its server's policies in order at the recipient's instant; recipients refused
        already (``code`` set) are not asked. ``client``, ``port``, ``own`` (the client is
        in the server's own networks) and ``auth_user`` (-1: none) are per session."""
        flow = self.flow
        s = self.session
        srv = self.server[s]
        instant = (self.base[s] + (self.before_rcpt[s] + self.place) * self.step[s]
                   + self.one_way[s] + self.proc[s])
        local = (rows.rcpt_isp == srv) & (rows.typo != TYPO_DOMAIN)
        authenticated = auth_user[s] >= 0
        too_many = (code == 0) & (self.place >= flow.max_rcpt[srv])
        self._refuse(code, cause, too_many, S452_TOO_MANY_RCPTS)
        for kinds, members in flow.signatures.items():
            group = np.isin(srv, members)
            if not group.any():
                continue
            for position, kind in enumerate(kinds):
                undecided = group & (code == 0)
                if kind is RelayControl:
                    allowed = local | authenticated | (
                        (port[s] == 25) & (instant < flow.auth_on_25_from[srv]) & own[s])
                    self._refuse(code, cause, undecided & ~allowed, S554_RELAY_DENIED)
                elif kind is LocalRecipients:
                    self._refuse(code, cause, undecided & local & (rows.typo == TYPO_USER),
                                 S550_USER_UNKNOWN)
                elif kind is RateLimit:
                    self._rate_limit(code, cause, undecided & authenticated, position,
                                     instant, auth_user)
                elif kind not in (ContentFilter, Blocklist):   # judged at DATA, at greeting
                    scope = undecided
                    if kind is Greylisting:
                        scope = scope & ~authenticated & ~own[s]
                    self._ask(code, cause, scope, position, instant, rows, client, port,
                              auth_user, mail_from)

    def _rate_limit(self, code: np.ndarray, cause: np.ndarray, scope: np.ndarray,
                    position: int, instant: np.ndarray, auth_user: np.ndarray) -> None:
        """Each server's rate limit, asked in bulk for its authenticated recipients."""
        flow = self.flow
        ask = np.flatnonzero(scope)
        ask = ask[np.argsort(instant[ask], kind="stable")]
        server = self.server[self.session[ask]]
        for i in np.unique(server).tolist():
            rows = ask[server == i]
            policy = flow.servers[i].policies[position]
            assert isinstance(policy, RateLimit)
            users = [f"user{u}" for u in auth_user[self.session[rows]].tolist()]
            limited = rows[np.array(policy.limits(users, instant[rows].tolist()), dtype=bool)]
            self._refuse(code, cause, limited, S451_RATE_LIMITED)

    def _ask(self, code: np.ndarray, cause: np.ndarray, scope: np.ndarray, position: int,
             instant: np.ndarray, rows: Columns, client: np.ndarray, port: np.ndarray,
             auth_user: np.ndarray, mail_from: Callable[[int], str]) -> None:
        """Ask a stateful policy through its own hook, one recipient at a time in time order."""
        flow = self.flow
        ask = np.flatnonzero(scope)
        for i in ask[np.argsort(instant[ask], kind="stable")].tolist():
            k = int(self.session[i])
            server = flow.servers[int(self.server[k])]
            user = int(auth_user[k])
            session = SMTPSession(client_address=int(client[k]), port=int(port[k]),
                                  authenticated_user=f"user{user}" if user >= 0 else None,
                                  mail_from=mail_from(k))
            address = recipient_address(flow.servers[int(rows.rcpt_isp[i])].domain,
                                        int(rows.rcpt_user[i]), int(rows.typo[i]))
            server.instant = float(instant[i])
            reply = server.policies[position].check_rcpt(server, session, address)
            server.instant = None
            if reply is not None:
                code[i] = reply.code
                cause[i] = flow.ledger.code("stopped_by", mechanism(reply))

    def _refuse(self, code: np.ndarray, cause: np.ndarray, mask: np.ndarray,
                reply: Reply) -> None:
        code[mask] = reply.code
        cause[mask] = self.flow.ledger.code("stopped_by", mechanism(reply))

    def close(self, accepted_any: np.ndarray, transfer: np.ndarray, keys: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray]:
        """Per session: the instant the final dot is answered (NaN without data) and the
        session's end after QUIT; each server scans what it receives (keyed by message)."""
        flow = self.flow
        rcpts = np.bincount(self.session, minlength=len(self.base))
        after_rcpts = self.base + (self.before_rcpt + rcpts) * self.step
        mean = flow.scan_mean[self.server]
        scan = np.where(accepted_any & (mean > 0),
                        keyed_exponential(keys, flow.scan_salt[self.server], mean), 0.0)
        dot = after_rcpts + self.step + self.one_way + transfer + self.proc + scan
        end = np.where(accepted_any, dot + self.one_way + self.step, after_rcpts + self.step)
        return np.where(accepted_any, dot, np.nan), end

    def refused_after(self, commands: np.ndarray) -> np.ndarray:
        """The end of a session refused at its ``commands``-th exchange (0: the greeting),
        after the client's QUIT."""
        return self.base + (commands + 1) * self.step

    def content_filter(self, keys: np.ndarray, inbound: np.ndarray,
                       spam: np.ndarray | None = None) -> np.ndarray:
        """Per session: caught by its server's content filter (spam: detected; anything
        else: a false positive), judged by the message's key as ``ContentFilter.check_data``
        judges it."""
        flow = self.flow
        judged = inbound & (flow.false_positive[self.server] >= 0)
        rate = flow.false_positive[self.server]
        if spam is not None:
            rate = np.where(spam, flow.detection[self.server], rate)
        caught = np.zeros(len(keys), dtype=bool)
        caught[judged] = keyed_uniform(keys[judged], flow.filter_salt[self.server[judged]]) \
            < rate[judged]
        examined = np.bincount(self.server[judged], minlength=len(flow.servers))
        hits = np.bincount(self.server[caught], minlength=len(flow.servers))
        for i in np.flatnonzero(examined).tolist():
            policy = flow.filters[i]
            assert policy is not None
            policy.examined += int(examined[i])
            policy.caught += int(hits[i])
        return caught

"""``netsim serve``, ``netsim send`` and ``netsim fetch``: the live lab's commands.

The clients derive the lab's addresses and ports from the same scenario, ``--set`` and
``--ports`` options as the server, so nothing is shared but the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Any

from netsim.errors import UserError
from netsim.lab.addresses import parse_ipv4, text
from netsim.lab.clients import Target, compose, fetch, fetch_imap, send
from netsim.lab.layout import LabLayout, PortMap, lab_world
from netsim.lab.server import Lab, LabSettings
from netsim.lab.table import banner
from netsim.protocols import Credentials
from netsim.scenario import Scenario

__all__ = ["register"]

Load = Callable[[argparse.Namespace], Scenario]

BIND_ALL_WARNING = """\
WARNING: --bind-all: the lab's mail servers are reachable from OTHER HOSTS on every
WARNING: interface. They accept mail for their domains from anyone, keep it in memory and
WARNING: show demo passwords above. Use this only on a network you trust, and stop the lab
WARNING: when the class is over. Clients from outside 127.0.0.0/8 count as strangers."""


def register(sub: Any, scenario_args: Callable[[argparse.ArgumentParser], None],
             load: Load) -> None:
    """Add ``serve``, ``send`` and ``fetch`` to the ``netsim`` command's subparsers."""
    serve = sub.add_parser("serve", help="the live lab: each ISP's mail server (SMTP, "
                           "submission, POP3, IMAP) on its own loopback address, for real "
                           "mail clients and nc")
    scenario_args(serve)
    _port_args(serve)
    serve.add_argument("--bind-all", action="store_true", help="also listen on every "
                       "interface (server k on its ports + 100·k); loopback only by default")
    serve.add_argument("--at", type=float, default=0.0, metavar="SECONDS", help="scenario time "
                       "at start: policies whose start_s is not later are in force (default 0)")
    serve.add_argument("--smtp-timeout", type=float, default=300.0, metavar="SECONDS",
                       help="SMTP idle timeout (RFC 5321: 5 minutes)")
    serve.add_argument("--pop3-timeout", type=float, default=600.0, metavar="SECONDS",
                       help="POP3 idle timeout (RFC 1939: at least 10 minutes)")
    serve.add_argument("--imap-timeout", type=float, default=1800.0, metavar="SECONDS",
                       help="IMAP idle timeout (RFC 9051: at least 30 minutes)")
    serve.add_argument("--quiet", action="store_true", help="log only warnings, not every "
                       "connection, delivery and relay dialogue")
    serve.add_argument("--tls-dir", type=Path, metavar="DIR", help="where the lab's CA "
                       "certificate is written (default: a new temporary folder)")
    serve.add_argument("--no-tls", action="store_true", help="serve no TLS (no STARTTLS, "
                       "STLS, 465, 995 or 993)")
    serve.add_argument("--spool", type=Path, metavar="DIR", help="keep accepted mail on disk "
                       "in DIR (written before each 250) and take it back on the next start")
    serve.add_argument("--pcap", type=Path, metavar="FILE", help="record every session "
                       "and write them to FILE as a packet capture when the lab stops, with "
                       "the world's addresses and ports (TLS left out)")
    serve.set_defaults(func=partial(cmd_serve, load=load))

    sender = sub.add_parser("send", help="send one message to a lab server and print the "
                            "SMTP dialogue")
    scenario_args(sender)
    _port_args(sender)
    _client_args(sender)
    sender.add_argument("--port", type=int, choices=(25, 587), default=25,
                        help="25 (SMTP) or 587 (submission, needs --user)")
    sender.add_argument("--user", help="log in with SMTP AUTH as this user (user7 or "
                        "user7@domain)")
    sender.add_argument("--password", help="the user's password")
    sender.add_argument("--auth", choices=("PLAIN", "LOGIN"), default="PLAIN",
                        help="SASL mechanism (default PLAIN)")
    sender.add_argument("--mail-from", required=True, metavar="ADDRESS", help="envelope sender")
    sender.add_argument("--to", action="append", required=True, metavar="ADDRESS",
                        help="recipient (repeatable)")
    sender.add_argument("--subject", default="Hello")
    sender.add_argument("--body", default="This is a test mail")
    sender.add_argument("--helo", help="the EHLO name (default: from the source address)")
    sender.set_defaults(func=partial(cmd_send, load=load))

    fetcher = sub.add_parser("fetch", help="read a maildrop on a lab server with POP3 (or "
                             "IMAP) and print the dialogue")
    scenario_args(fetcher)
    _port_args(fetcher)
    _client_args(fetcher)
    fetcher.add_argument("--user", required=True, help="user7 or user7@domain")
    fetcher.add_argument("--password", required=True)
    fetcher.add_argument("--imap", action="store_true", help="fetch with IMAP (port 143: "
                         "AUTHENTICATE PLAIN or LOGIN, UID SEARCH, UID FETCH) instead of POP3")
    fetcher.add_argument("--apop", action="store_true", help="log in with APOP (no password "
                         "on the wire; POP3 only)")
    fetcher.add_argument("--keep", action="store_true", help="do not delete what was fetched "
                         "(IMAP: no \\Deleted and EXPUNGE; BODY[] still marks it \\Seen)")
    fetcher.add_argument("--unseen", action="store_true", help="with --imap: only the messages "
                         "not yet \\Seen (SEARCH UNSEEN)")
    fetcher.set_defaults(func=partial(cmd_fetch, load=load))


def _port_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ports", choices=("offset", "standard"), default="offset",
                        help="offset: 10025, 10587, 10110, 10143 … (default); standard: "
                        "25, 587, 110, 143 … (needs root)")
    parser.add_argument("--offset", type=int, default=10000, help="added to the standard "
                        "ports with --ports offset (default 10000)")


def _client_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", required=True, metavar="ISP", help="ISP name, domain or "
                        "server name, e.g. isp-b")
    parser.add_argument("--from-address", metavar="ADDRESS", help="source address: a scenario "
                        "address (10.1.0.5) or a lab one (127.1.0.5); default 127.0.0.1, "
                        "outside every network")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait for each reply (default 10)")


# -- serve ------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace, load: Load) -> int:
    """Run the lab until SIGINT or SIGTERM."""
    settings = LabSettings(ports=PortMap(args.ports, args.offset), bind_all=args.bind_all,
                           at=args.at, smtp_idle_s=args.smtp_timeout,
                           pop3_idle_s=args.pop3_timeout, imap_idle_s=args.imap_timeout,
                           tls=not args.no_tls, tls_dir=args.tls_dir, spool=args.spool,
                           pcap=args.pcap)
    lab = Lab(load(args), settings)
    _logging(logging.WARNING if args.quiet else logging.INFO)
    return asyncio.run(_serve(lab))


async def _serve(lab: Lab) -> int:
    await lab.start()
    if lab.settings.bind_all:
        print(BIND_ALL_WARNING, file=sys.stderr, flush=True)
    print(banner(lab), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # not on every platform: there Ctrl-C raises KeyboardInterrupt instead
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        lost = await lab.stop()
        stored = sum(len(s.maildrops) for s in lab.layout.servers)
        print(f"\nlab stopped: {stored} message(s) in maildrops and {lost} relay "
              "delivery(ies) in the queue are gone (the lab keeps mail in memory)", flush=True)
        if lab.settings.pcap is not None:
            print(f"capture: {lab.packets} packet(s) in {lab.settings.pcap}", flush=True)
    return 0


def _logging(level: int) -> None:
    logger = logging.getLogger("netsim.lab")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.propagate = False


# -- send and fetch -----------------------------------------------------------------------
def _target(args: argparse.Namespace, load: Load, port: int) -> tuple[LabLayout, Target]:
    if args.timeout <= 0:
        raise UserError("--timeout must be positive")
    layout = LabLayout(lab_world(load(args)), PortMap(args.ports, args.offset))
    server = layout.find_server(args.server)
    layout.service(server, port)
    source = layout.client_source(args.from_address)
    return layout, Target(source, layout.hosts[server], layout.ports.lab_port(port),
                          args.timeout)


def _echo(direction: str, line: str) -> None:
    if direction == "*":
        print(line, flush=True)
    elif direction == "!":   # the connection failed
        print(f"({line})", flush=True)
    else:
        print(f"{direction}: {line}", flush=True)


def _helo(layout: LabLayout, source: str) -> str:
    address = layout.addresses.scenario_address(parse_ipv4(source))
    if address is None:
        return "stranger.example"
    net = layout.world.plan.subnet_of(address)
    return f"h{text(address).replace('.', '-')}.{net.name}.example"


def cmd_send(args: argparse.Namespace, load: Load) -> int:
    """Send one message; exit status 1 if it was not accepted for every recipient."""
    layout, target = _target(args, load, args.port)
    credentials = None
    if args.user is not None or args.password is not None:
        if not args.user or args.password is None:
            raise UserError("--user and --password go together")
        credentials = Credentials(args.user, args.password, args.auth)
    message = compose(args.mail_from, args.to, args.subject, args.body)
    try:
        outcome = asyncio.run(send(target, args.helo or _helo(layout, target.source),
                                   args.mail_from, args.to, message, credentials, _echo))
    except ValueError as exc:  # the client engine checks addresses and the EHLO name
        raise UserError(str(exc)) from None
    print(f"\naccepted for {', '.join(args.to)}" if outcome.ok else
          f"\nnot sent: {outcome.problem}")
    return 0 if outcome.ok else 1


def cmd_fetch(args: argparse.Namespace, load: Load) -> int:
    """Fetch a maildrop by POP3 or IMAP; exit status 1 if the login or the session failed
    (or, with IMAP, the fetched messages could not be deleted)."""
    if args.imap and args.apop:
        raise UserError("--apop is POP3's: IMAP logs in with AUTHENTICATE PLAIN or LOGIN")
    if args.unseen and not args.imap:
        raise UserError("--unseen needs --imap: POP3 has no \\Seen flag")
    _, target = _target(args, load, 143 if args.imap else 110)
    try:
        if args.imap:
            outcome = asyncio.run(fetch_imap(target, args.user, args.password, keep=args.keep,
                                             unseen=args.unseen, echo=_echo))
        else:
            outcome = asyncio.run(fetch(target, args.user, args.password, apop=args.apop,
                                        keep=args.keep, echo=_echo))
    except ValueError as exc:  # the client engine checks the user name and password
        raise UserError(str(exc)) from None
    if outcome.ok:
        if args.imap:
            what = ("kept on the server, marked \\Seen" if args.keep
                    else "marked \\Deleted and expunged")
        else:
            what = "kept on the server" if args.keep else "deleted at QUIT"
        print(f"\n{len(outcome.messages)} message(s) retrieved, {what}")
    else:
        print(f"\nfailed: {outcome.problem}")
    return 0 if outcome.ok else 1

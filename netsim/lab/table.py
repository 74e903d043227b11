"""What ``netsim serve`` prints on start: servers and their ports, networks, accounts."""

from __future__ import annotations

from netsim.lab.addresses import STRANGER, text
from netsim.lab.layout import SERVICES
from netsim.lab.server import Lab
from netsim.scenario.schema import ISPConfig

__all__ = ["ACCOUNTS_SHOWN", "banner"]

ACCOUNTS_SHOWN = 3


def _when(start_s: float) -> str:
    return "" if start_s <= 0 else f" from {start_s:g} s"


def policies(isp: ISPConfig) -> str:
    """An ISP's policies in a few words, e.g. ``OP25B (drop), 587+AUTH``."""
    p = isp.policies
    out = []
    if p.op25b is not None:
        share = "" if p.op25b.pool_share >= 1 else f", {p.op25b.pool_share:.0%} of the pool"
        out.append(f"OP25B ({p.op25b.action}{share}){_when(p.op25b.start_s)}")
    if p.op25b_top_talkers is not None:
        t = p.op25b_top_talkers
        out.append(f"OP25B on top talkers (over {t.max_connections} in {t.window_s:g} s, "
                   f"{t.action}){_when(t.start_s)}")
    if p.submission is not None:
        out.append(f"587+AUTH{_when(p.submission.start_s)}")
    if p.auth_on_25 is not None:
        out.append(f"AUTH on 25{_when(p.auth_on_25.start_s)}")
    if p.inbound_25_block is not None:
        out.append(f"inbound 25 blocked{_when(p.inbound_25_block.start_s)}")
    if p.rate_limit is not None:
        out.append(f"{p.rate_limit.recipients_per_hour:g} rcpt/h{_when(p.rate_limit.start_s)}")
    return ", ".join(out) or "no filters"


def _ports(lab: Lab, server: int, where: dict[tuple[int, str], tuple[str, int]]) -> list[str]:
    return [str(where[(server, name)][1]) if (server, name) in where else "-"
            for name, _ in SERVICES]


def banner(lab: Lab) -> str:
    """The table printed when the lab is listening."""
    world, layout = lab.world, lab.layout
    scenario = world.scenario
    rows: list[tuple[str, ...]] = [
        ("server", "address", "SMTP", "submission", "465", "POP3", "995", "IMAP", "993",
         "domain", "policies")]
    for i, server in enumerate(layout.servers):
        rows.append((server.hostname, layout.hosts[i], *_ports(lab, i, lab.bound),
                     server.domain, policies(scenario.isps[i])))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    lines = [f"netsim lab: scenario {scenario.name} (seed {scenario.seed}); scenario time "
             f"{lab.settings.at:g} s is now and runs with the clock; Ctrl-C stops", ""]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[-1]
              for r in rows]
    if lab.tls is not None:
        lines += ["", "TLS: STARTTLS on SMTP, submission and IMAP, STLS on POP3, TLS from the "
                  "first octet on 465, 995 and 993; the lab's CA certificate:",
                  f"  {lab.tls.ca_path}",
                  f"  (curl --cacert {lab.tls.ca_path} ..., openssl s_client -starttls smtp "
                  f"-CAfile {lab.tls.ca_path} -connect HOST:PORT)"]
    else:
        lines += ["", "no TLS (--no-tls): STARTTLS and STLS are not offered, 465, 995 and "
                  "993 are not served"]
    if lab.spool is not None:
        copies, queued = lab.restored
        lines += ["", f"spool: {lab.spool.root} (mail is on disk before each 250; taken "
                  f"back now: {copies} maildrop copies, {queued} relay queue entries)"]
    else:
        lines += ["", "no spool: mail lives in memory until the lab stops (--spool DIR)"]
    if lab.settings.pcap is not None:
        lines += ["", f"capture: every session is recorded and written to {lab.settings.pcap} "
                  "when the lab stops (the world's addresses and ports; TLS left out)"]
    if lab.exposed:
        lines += ["", "ALSO ON EVERY INTERFACE (--bind-all): SMTP, submission, 465, POP3, "
                  "995, IMAP, 993 ports"]
        lines += [f"  {s.hostname}: {' '.join(_ports(lab, i, lab.exposed))}"
                  for i, s in enumerate(layout.servers)]
    lines += ["", "networks: a client whose source address is in a lab range stands in that "
              "network"]
    for subnet in world.plan.subnets:
        lab_range = layout.addresses.lab_prefix(subnet)
        example = ""
        if lab_range and subnet.prefix.num_addresses > 6:
            host = subnet.host(4)
            example = f"e.g. {layout.addresses.lab_text(host)} = {text(host)}"
        lines.append(f"  {subnet.name:<16} {subnet.kind:<8} {subnet.prefix!s:<18} → "
                     f"{lab_range or 'not mapped':<16} {example}")
    lines.append(f"  {STRANGER} and anything else is outside every network: a stranger")
    lines += ["", "accounts (POP3 USER/PASS, IMAP LOGIN and SMTP AUTH): user / password"]
    for server in layout.servers:
        shown = [f"{server.address_of(u)} / {server.password(u)}"
                 for u in range(min(ACCOUNTS_SHOWN, server.users))]
        more = f"  (user0..user{server.users - 1})" if server.users > ACCOUNTS_SHOWN else ""
        lines.append(f"  {'   '.join(shown) or 'no accounts'}{more}")
    return "\n".join(lines)

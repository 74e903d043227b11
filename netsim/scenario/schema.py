"""The scenario: every parameter of a world, validated before anything runs.

Each field says its unit and where its default comes from; docs/scenario.md is generated from
these descriptions (``netsim schema --markdown``), so the two cannot drift apart. Unknown keys
are rejected everywhere: a misspelt parameter must not silently keep its default.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

Seconds = Annotated[float, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]


class Strict(BaseModel):
    """Base of every scenario section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _prefix_text(value: object) -> object:
    """Prefixes are written as text (``10.1.0.0/16``); a number or a boolean is a mistake
    that ``ipaddress`` would otherwise read as an address."""
    if not isinstance(value, (str, ipaddress.IPv4Network)):
        raise ValueError("must be a prefix written like 10.1.0.0/16")
    return value


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("must be lower-case letters, digits and '-', at most 63 characters")
    return value


def _check_domain(value: str) -> str:
    if not _DOMAIN.match(value):
        raise ValueError("is not a valid lower-case domain name")
    return value


class MailServerConfig(Strict):
    """One ISP's logical mail system (``mail.<domain>``, also the MX of the domain)."""

    session_slots: int = Field(
        50, ge=1, description="Concurrent SMTP+POP3 sessions the server serves; further clients "
        "wait for a slot [sessions]. Postfix default_process_limit is 100; halved for a small ISP.")
    processing_s: Seconds = Field(
        0.001, description="Server time to process one command [s]. Assumed; sets the M/M/c "
        "service time together with the round trips.")
    scan_mean_s: Seconds = Field(
        0.0, description="Mean time to scan a message after the final dot before the reply, "
        "exponentially distributed; the session keeps its slot meanwhile [s]. 0: no scanning "
        "delay. Assumed.")
    pop3_security: Literal["plaintext", "apop", "stls", "pop3s"] = Field(
        "plaintext", description="How POP3 logins travel: USER/PASS in plain text on 110, APOP "
        "(RFC 1939: digest, no password on the wire), STLS (RFC 2595) or POP3S on 995 "
        "(RFC 8314). Only plaintext can be captured by an eavesdropper.")
    imap_security: Literal["plaintext", "starttls", "imaps"] = Field(
        "plaintext", description="How IMAP logins travel: LOGIN in plain text on 143, "
        "STARTTLS first (RFC 9051 §6.2.1), or IMAPS on 993 (RFC 8314). Only plaintext can be "
        "captured by an eavesdropper, as POP3's USER/PASS.")
    submission_security: Literal["plaintext", "tls"] = Field(
        "plaintext", description="Whether SMTP AUTH on submission travels in plain text or "
        "inside TLS (STARTTLS or 465, RFC 8314). Only plaintext can be captured.")
    max_recipients: int = Field(
        100, ge=1, description="Recipients per transaction before 452 (RFC 5321 §4.5.3.1.8: "
        "at least 100).")
    message_size_limit: int = Field(
        10_240_000, ge=65_536, description="Largest message accepted, else 552 [bytes] "
        "(Postfix message_size_limit).")
    mailbox_quota_bytes: int | None = Field(
        None, ge=1, description="Octets a mailbox may hold; mail for a mailbox at its quota "
        "is refused at RCPT with 552 5.2.2 (Dovecot's quota-status service for Postfix), "
        "and the sending server bounces it. A POP3 client's mail leaves the mailbox at its "
        "next scheduled check; an IMAP client's stays. Mailboxes start empty. null: no "
        "quota (assumed: the ISPs' quotas of the time, some megabytes, rarely filled in a "
        "day by POP3 users).")
    auth_failure_limit: int = Field(
        5, ge=1, description="Failed SMTP AUTH logins a client address may make in "
        "auth_failure_window_s; then every AUTH from it gets 454 4.7.0 until its failures "
        "age out of the window, while the account stays open from other addresses "
        "[logins] (fail2ban's maxretry 5).")
    auth_failure_window_s: Seconds = Field(
        600, gt=0, description="The window of auth_failure_limit [s] (fail2ban's findtime "
        "and bantime, 10 minutes).")


class Switch(Strict):
    """A policy that is in force from ``start_s`` on."""

    start_s: Seconds = Field(0, description="Simulated time the policy comes into force [s].")


class OP25BPolicy(Switch):
    """Outbound Port 25 Blocking at the ISP's egress."""

    action: Literal["drop", "reject"] = Field(
        "drop", description="Drop the SYN (the client waits its connect timeout) or reset it "
        "(one round trip).")
    pool_share: Share = Field(
        1.0, description="Share of the dynamic pool's subscriber hosts the rule covers: the "
        "first round(share × subscribers) hosts of the pool, one address block, as operators "
        "rolled blocking out block by block (Assumed: no published shares; bots sit at random "
        "hosts, so the block holds about that share of them). 1: the whole pool. Visited "
        "networks behind the ISP stay covered whole.")


class TopTalkersPolicy(Switch):
    """OP25B on the ISP's top talkers: a stateful rule at its egress, after op25b."""

    max_connections: int = Field(
        100, ge=1, description="Port-25 connection attempts (to addresses other than the "
        "ISP's own mail server) a host may make within window_s; the next is blocked "
        "[connections]. Assumed: Comcast's threshold was not published; a subscriber's mail "
        "client talks to its own ISP's server, which does not count.")
    window_s: float = Field(
        3600, gt=0, description="Sliding window over which a host's attempts are counted "
        "[s]. Assumed.")
    action: Literal["drop", "reject"] = Field(
        "drop", description="Drop the SYN (the client waits its connect timeout) or reset it "
        "(one round trip).")


class PopBeforeSMTPPolicy(Switch):
    """POP-before-SMTP: a POP3 login opens relay on port 25 for the client's address."""

    window_s: float = Field(1800, gt=0, description="How long after a POP3 login the "
                            "login's address may relay on 25 [s]. Operators chose it (MDaemon "
                            "asks for a check within the last N minutes); 30 minutes assumed.")


class RateLimitPolicy(Switch):
    """Per-account submission rate limit (Postfix policy daemons; token bucket)."""

    recipients_per_hour: float = Field(100, gt=0, description="Recipients an account may "
                                       "submit an hour before 451 4.7.1 [1/h]. Assumed.")


def _switch(value: object) -> object:
    """``true`` turns a policy on with its defaults, ``false`` turns it off."""
    if value is True:
        return {}
    if value is False:
        return None
    return value


class ISPPolicies(Strict):
    """An ISP's policies; each is null (off) or a mapping (on, with an optional start time)."""

    op25b: OP25BPolicy | None = Field(None, description="Outbound Port 25 Blocking: port 25 "
                                      "from the dynamic pool (and visited networks behind the "
                                      "ISP) to anything but the ISP's own mail server.")
    op25b_top_talkers: TopTalkersPolicy | None = Field(
        None, description="OP25B on the dynamic pool's top talkers, decided as the run goes: "
        "a host that makes more than max_connections port-25 attempts to addresses other than "
        "the ISP's own mail server within window_s is blocked from that attempt on, for the "
        "rest of the run (Assumed: operators lifted a block once the subscriber had cleaned "
        "the host, days later). Comcast blocked port 25 for \"the top talkers of the day\" "
        "from June 2004 (Washington Post, 12 June 2004); the mail leaving its network fell "
        "from about 665 to 464 million messages a day, 30 % (SenderBase figures, CNET News, "
        "June 2004). Attempts that op25b stops first do not count; visited networks behind "
        "the ISP are not its subscribers' hosts and are not covered.")
    submission: Switch | None = Field(default_factory=Switch, description="Offer port 587 with "
                                      "SMTP AUTH (RFC 6409; RFC 5068 asks every provider to).")
    sender_login_match: Switch | None = Field(
        default_factory=Switch, description="An authenticated client may send only as its "
        "own account: MAIL FROM must be the address it logged in as, else 553 5.7.1 (Postfix "
        "reject_sender_login_mismatch, the usual setting of a submission service; the null "
        "sender passes). Spammers with stolen credentials therefore send as the account.")
    auth_on_25: Switch | None = Field(None, description="Require AUTH for relaying on port 25 "
                                      "too, instead of relaying for the ISP's own networks.")
    pop_before_smtp: PopBeforeSMTPPolicy | None = Field(
        None, description="POP-before-SMTP, the roaming relief of the years before 587: a "
        "successful POP3 login opens relay on port 25 for that client address for a window.")
    inbound_25_block: Switch | None = Field(None, description="Block port 25 from outside "
                                            "into the dynamic pool (no servers at home).")
    rate_limit: RateLimitPolicy | None = Field(None, description="Per-account submission "
                                               "rate limit.")

    _switches = field_validator("op25b", "submission", "sender_login_match", "auth_on_25",
                                "pop_before_smtp",
                                "inbound_25_block", "rate_limit", "op25b_top_talkers",
                                mode="before")(_switch)


PRESETS: dict[str, dict[str, object]] = {
    "none": {"op25b": None},
    "op25b": {"op25b": {}, "submission": None},
    "op25b+587": {"op25b": {}, "submission": {}},
}


class ISPConfig(Strict):
    """An ISP: an autonomous system with subscribers, a dynamic pool and a server network."""

    name: str = Field(description="Short name, used in results and in links.")
    domain: str = Field(description="Mail domain of the ISP's subscribers (e.g. isp-a.example).")
    subscribers: int = Field(ge=0, description="Subscriber hosts (one mail user each) [hosts].")
    dynamic_pool: ipaddress.IPv4Network = Field(
        description="Prefix of the subscribers' dynamically assigned addresses.")
    server_network: ipaddress.IPv4Network = Field(
        description="Prefix of the ISP's static server network; the mail server takes its "
        "first host address.")
    core_latency_s: Seconds = Field(
        0.002, description="One-way latency across the ISP's own core [s]. Assumed.")
    access_latency_s: Seconds = Field(
        0.005, description="One-way latency of a subscriber's access link [s]. Assumed "
        "(DSL/cable last mile).")
    access_bandwidth_bps: float = Field(
        10e6, gt=0, description="A subscriber connection's upstream rate [bit/s]. Assumed.")
    server_latency_s: Seconds = Field(
        0.0005, description="One-way latency inside the ISP's server network [s]. Assumed.")
    bot_fraction: Share = Field(0.0, description="Share of subscriber hosts infected by "
                                "bots. Public estimates vary widely by country: a parameter.")
    imap_share: Share = Field(
        0.0, description="Share of the subscribers whose mail client retrieves by IMAP "
        "(RFC 9051) and leaves mail on the server (marked seen); the others retrieve by POP3 "
        "and delete what they retrieved. Assumed 0: the ISPs of the OP25B years served "
        "their subscribers by POP3 (the primer, which names IMAP as what came after).")
    mail_server: MailServerConfig = Field(default_factory=MailServerConfig,
                                          description="The ISP's mail server.")
    policies: ISPPolicies = Field(default_factory=ISPPolicies, description="The ISP's "
                                  "policies; a preset (scenario `policy`) overrides op25b and "
                                  "submission.")

    _name = field_validator("name")(_check_name)
    _prefixes = field_validator("dynamic_pool", "server_network", mode="before")(_prefix_text)

    _domain = field_validator("domain")(_check_domain)

    @model_validator(mode="after")
    def _pool_fits(self) -> ISPConfig:
        if self.subscribers > self.dynamic_pool.num_addresses - 2:
            raise ValueError(
                f"{self.subscribers} subscribers do not fit in dynamic_pool {self.dynamic_pool} "
                f"({self.dynamic_pool.num_addresses - 2} host addresses)")
        return self


class LinkConfig(Strict):
    """An edge of the ISP graph."""

    a: str = Field(description="One ISP's name.")
    b: str = Field(description="The other ISP's name.")
    latency_s: float = Field(gt=0, description="One-way latency of the link [s]. Public RTTs: "
                             "Dallas–New York 38 ms, New York–Paris 78 ms (docs/references.md).")


class GeneratedTopology(Strict):
    """A generated ISP graph (networkx, seeded from the run's ``topology`` stream)."""

    generator: Literal["barabasi_albert", "waxman", "complete"] = Field(
        "barabasi_albert", description="networkx generator: Barabási–Albert preferential "
        "attachment (internet-like degree tail), Waxman (geometric), or complete.")
    attach: int = Field(2, ge=1, description="Barabási–Albert: edges from each new node.")
    latency_min_s: float = Field(0.002, gt=0, description="Smallest link latency [s].")
    latency_max_s: float = Field(0.040, gt=0, description="Largest link latency [s]; link "
                                 "latencies are uniform between the two.")


class VisitedNetworkConfig(Strict):
    """A shared network (hotel, café) whose upstream ISP's egress policy applies."""

    name: str = Field(description="Short name.")
    prefix: ipaddress.IPv4Network = Field(description="Address prefix of the network.")
    upstream: str = Field(description="Name of the ISP the network is attached to.")
    access_latency_s: Seconds = Field(0.010, description="One-way latency of the shared "
                                      "access link [s]. Assumed.")
    eavesdrop_probability: Share = Field(0.0, description="Probability that a plaintext login "
                                         "(POP3 USER/PASS, SMTP AUTH) crossing this network is "
                                         "captured. Not published: sweep it.")

    _name = field_validator("name")(_check_name)
    _prefix = field_validator("prefix", mode="before")(_prefix_text)


class HostingNetworkConfig(Strict):
    """A hosting network of static addresses (rented servers), attached to an upstream ISP."""

    name: str = Field(description="Short name.")
    prefix: ipaddress.IPv4Network = Field(description="Address prefix of the network.")
    upstream: str = Field(description="Name of the ISP the network is attached to.")
    access_latency_s: Seconds = Field(0.001, description="One-way latency inside the data "
                                      "centre [s]. Assumed.")

    _name = field_validator("name")(_check_name)
    _prefix = field_validator("prefix", mode="before")(_prefix_text)


class ProviderConfig(Strict):
    """A mail provider that is not an access ISP: a company's or a hosting provider's server,
    to which its customers submit from wherever they are, always with SMTP AUTH."""

    name: str = Field(description="Short name.")
    domain: str = Field(description="The provider's domain; its server is mail.<domain>.")
    network: str = Field(description="The hosting network its server lives in.")
    submission: Switch | None = Field(default_factory=Switch, description="Offer port 587 "
                                      "with SMTP AUTH (RFC 6409), from start_s; without it "
                                      "customers submit on 25 with AUTH.")

    _name = field_validator("name")(_check_name)

    _domain = field_validator("domain")(_check_domain)

    _submission = field_validator("submission", mode="before")(_switch)


class DNSConfig(Strict):
    """Authoritative data is derived from the ISPs; these set the resolvers' behaviour."""

    ttl_s: Seconds = Field(3600, description="TTL of MX and A records [s]. Common operator "
                           "default.")
    negative_ttl_s: Seconds = Field(900, description="How long NXDOMAIN is cached [s] "
                                    "(RFC 2308 negative caching). Assumed.")
    lookup_mean_s: float = Field(0.150, gt=0, description="Mean latency of an uncached lookup "
                                 "[s] (docs/references.md: mean about 150 ms).")
    lookup_p90_s: float = Field(0.275, gt=0, description="90th percentile of uncached lookup "
                                "latency [s] (docs/references.md: 90 % within 275 ms). Equal to "
                                "the mean gives a fixed latency.")
    cached_lookup_s: Seconds = Field(0.0005, description="Latency of an answer from the "
                                     "resolver's cache [s]. Assumed.")
    servfail_rate: Share = Field(0.001, description="Share of uncached lookups answered "
                                 "SERVFAIL (temporary: the sender queues and retries). Assumed.")

    @model_validator(mode="after")
    def _tail(self) -> DNSConfig:
        if self.lookup_p90_s < self.lookup_mean_s:
            raise ValueError("lookup_p90_s must not be below lookup_mean_s")
        return self


class SMTPConfig(Strict):
    """Timing of SMTP clients and queues."""

    connect_timeout_s: Seconds = Field(30, description="How long a client waits for a dropped "
                                       "SYN before giving up [s] (Postfix smtp_connect_timeout).")
    backoff_min_s: float = Field(300, gt=0, description="First retry delay after a temporary "
                                 "failure [s] (Postfix minimal_backoff_time 300 s).")
    backoff_max_s: float = Field(4000, gt=0, description="Largest retry delay [s] (Postfix "
                                 "maximal_backoff_time 4000 s); delays double up to it.")
    queue_lifetime_s: float = Field(432_000, gt=0, description="Give up and bounce after "
                                    "[s] (Postfix maximal_queue_lifetime 5 d; RFC 5321: 4–5 d).")
    server_bandwidth_bps: float = Field(100e6, gt=0, description="Rate of a server-to-server "
                                        "connection [bit/s]. Assumed.")

    @model_validator(mode="after")
    def _backoff(self) -> SMTPConfig:
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError("backoff_max_s must not be below backoff_min_s")
        return self


class UsersConfig(Strict):
    """Legitimate mail users: one per subscriber."""

    sends_per_day: float = Field(4.0, ge=0, description="Mean messages a user sends a day "
                                 "[1/d]. Consumers send far fewer than corporate users' 29 "
                                 "(Radicati 2003): a parameter.")
    rate_sigma: float = Field(1.0, ge=0, description="Log-normal sigma of per-user send rates "
                              "(heavy tail across users; 0 gives every user the mean).")
    recipients_pmf: tuple[float, ...] = Field(
        (0.93, 0.036, 0.012, 0.022), description="Probability of 1, 2, 3, … recipients "
        "(a university MX 2013: 93 % one, 3.6 % two, 1.2 % three; rest spread to four).")
    other_isp_share: Share = Field(0.7, description="Share of recipients at another ISP. "
                                   "Assumed.")
    mistyped_user_share: Share = Field(0.01, description="Share of recipients whose user part "
                                       "is mistyped (550 5.1.1 user unknown). Assumed.")
    mistyped_domain_share: Share = Field(0.002, description="Share of recipients whose domain "
                                         "is mistyped (NXDOMAIN). Assumed.")
    mua_587_share: Share = Field(0.5, description="Share of users whose MUA submits on 587 "
                                 "with AUTH where and once their ISP offers 587; the others, "
                                 "and these before their ISP offers 587, submit on 25 as "
                                 "mua_25_auth_share and mua_25_pop_share say. Assumed: no "
                                 "published share.")
    mua_25_auth_share: Share = Field(0.0, description="Share of MUAs on port 25 that "
                                     "authenticate with SMTP AUTH (RFC 4954), as ISPs told "
                                     "travellers to before 587; the rest of those on 25 relay "
                                     "by their address (at home) unless POP-before-SMTP.")
    mua_25_pop_share: Share = Field(0.0, description="Share of MUAs on port 25 that log in "
                                    "by POP3 just before they send (POP-before-SMTP: relay "
                                    "where the ISP has it in force); the rest of those on 25 "
                                    "send without either.")
    pop3_check_interval_s: float = Field(600, gt=0, description="How often a user's MUA checks "
                                         "mail (by POP3, or by IMAP: an IMAP client polls "
                                         "too) [s]. Assumed: every 10 minutes.")
    size_median_bytes: float = Field(12_000, gt=0, description="Median legitimate message "
                                     "size [bytes] (about 6–8× spam's 2 KB, docs/references.md).")
    size_sigma: float = Field(1.0, ge=0, description="Log-normal sigma of message sizes.")
    roaming_share: Share = Field(0.0, description="Share of users who are, at any moment, on "
                                 "a visited network (their MUA settings unchanged). Not "
                                 "published (docs/references.md): sweep it.")
    provider_share: Share = Field(0.0, description="Share of subscribers whose mail "
                                  "provider is not their access ISP (a company, a hosting "
                                  "provider: the scenario's providers): their mail clients "
                                  "submit to the provider's server, on 587 if set for it "
                                  "(mua_587_share) and offered, else on 25, always with AUTH; "
                                  "OP25B stops the latter. Their mailboxes stay at the access "
                                  "ISP in the model. Not published: sweep it.")
    home_mta_share: Share = Field(0.0, description="Share of subscribers who run their own "
                                  "mail server (MTA) on their dynamic address: it queues their "
                                  "mail and delivers it to each recipient's MX on 25 (OP25B and "
                                  "PBL-like blocklists stop it), or through a smarthost "
                                  "(home_mta_smarthost). Not published: sweep it.")
    home_mta_smarthost: Literal["none", "isp_25", "isp_587"] = Field(
        "none", description="How home MTAs send: none (direct to MX), isp_25 (through the "
        "access ISP's server on 25, relayed for its own networks: what ISPs told home-MTA "
        "users when they started OP25B), isp_587 (through it on 587 with AUTH); through a "
        "smarthost the MTA submits each message as a mail client on that port does.")
    mua_retries: int = Field(2, ge=0, description="Times a MUA retries a submission that got a "
                             "temporary failure before it reports the mail as not sent.")
    mua_retry_s: Seconds = Field(300, description="Delay between MUA retries [s]. Assumed.")

    @field_validator("recipients_pmf")
    @classmethod
    def _pmf(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(p < 0 for p in value) or abs(sum(value) - 1) > 1e-6:
            raise ValueError("must be non-negative probabilities that sum to 1")
        return value

    @model_validator(mode="after")
    def _shares(self) -> UsersConfig:
        if self.mistyped_user_share + self.mistyped_domain_share > 1:
            raise ValueError("mistyped_user_share + mistyped_domain_share exceed 1")
        if self.mua_25_auth_share + self.mua_25_pop_share > 1:
            raise ValueError("mua_25_auth_share + mua_25_pop_share exceed 1")
        if self.provider_share + self.home_mta_share > 1:
            raise ValueError("provider_share + home_mta_share exceed 1")
        return self


Strategy = Literal["direct", "isp_relay", "open_relay", "stolen_587"]


class BotnetConfig(Strict):
    """A botnet: infected subscriber hosts with heavy-tailed rates and a list of strategies."""

    name: str = Field(description="Short name.")
    share: Share = Field(description="Share of all infected hosts that belong to this botnet; "
                         "the shares of all botnets sum to 1.")
    strategies: list[Strategy] = Field(
        min_length=1, description="Ordered strategies: direct (the recipient's MX on 25), "
        "isp_relay (the bot's own ISP server on 25), open_relay, stolen_587 (a stolen "
        "credential on its owner's submission port).")
    adaptive: bool = Field(False, description="Move to the next strategy after repeated "
                           "failure; a bot with no strategy left stops, and the botnet gives "
                           "its work to the bots that still deliver.")
    failures_to_adapt: int = Field(5, ge=1, description="Consecutive failed sessions before "
                                   "an adaptive bot moves on [sessions]. Assumed.")
    rate_median_per_day: float = Field(
        300, ge=0, description="Median spam recipients a bot attempts a day [1/d]. Storm "
        "about 180/d, top-10 botnets 2009 about 27,000/d (docs/references.md).")
    rate_sigma: float = Field(2.1, ge=0, description="Log-normal sigma of per-bot rates: 2.1 "
                              "puts the 5th and 95th percentiles 1000× apart (docs/references.md: "
                              "three orders of magnitude).")
    recipients_per_session: float = Field(25, ge=1, description="Mean recipients per SMTP "
                                          "session (Pathak et al.: about 25).")
    retry_4xx: Share = Field(0.05, description="Probability a bot retries, once, the "
                             "recipients refused with a 4xx; bot engines often do not "
                             "(docs/references.md).")
    retry_delay_s: Seconds = Field(300, description="Delay of a bot's retry [s]. Assumed.")

    _name = field_validator("name")(_check_name)


class SpammerServerConfig(Strict):
    """Spammer-owned servers on a hosting network, sending direct to MX from static addresses."""

    network: str = Field(description="Name of the hosting network they live in.")
    count: int = Field(1, ge=0, description="Number of servers.")
    rate_per_day: float = Field(20_000, ge=0, description="Spam recipients each server "
                                "attempts a day [1/d]. Assumed.")
    recipients_per_session: float = Field(50, ge=1, description="Mean recipients per session. "
                                          "Assumed: twice a bot's (Pathak et al.: about 25).")
    retry_4xx: Share = Field(1.0, description="Probability a server retries, once, the "
                             "recipients refused with a 4xx. Assumed: spammer-owned servers run "
                             "ordinary MTA software, which retries (why greylisting stops bots "
                             "and not them).")
    retry_delay_s: Seconds = Field(300, description="Delay of that retry [s] (Postfix "
                                   "minimal_backoff_time 300 s).")


class OpenRelayConfig(Strict):
    """Misconfigured servers that relay mail for anyone."""

    network: str = Field(description="Network they live in: a hosting network, or an ISP's "
                         "dynamic pool written `<isp>.dynamic` (an insecure server at home).")
    count: int = Field(1, ge=0, description="Number of open relays.")


class SpamConfig(Strict):
    """Who sends spam and how."""

    botnets: list[BotnetConfig] = Field(default_factory=list, description="Botnets; "
                                        "infected hosts come from each ISP's bot_fraction.")
    spammer_servers: list[SpammerServerConfig] = Field(default_factory=list,
                                                       description="Spammer-owned servers.")
    open_relays: list[OpenRelayConfig] = Field(default_factory=list,
                                               description="Open relays.")
    invalid_recipient_share: Share = Field(
        0.2, description="Share of harvested addresses that do not exist (550 5.1.1). "
        "Assumed; only about 30 % of Cutwail's spam was accepted (Stone-Gross 2011).")
    size_median_bytes: float = Field(2_000, gt=0, description="Median spam size [bytes] "
                                     "(about 2 KB in 2008, docs/references.md).")
    size_sigma: float = Field(0.5, ge=0, description="Log-normal sigma of spam sizes.")
    compromised_share: Share = Field(0.0, description="Share of accounts whose password "
                                     "spammers hold from the start (phished, guessed).")
    bot_rates: Literal["stratified", "independent"] = Field(
        "stratified", description="How each botnet's per-bot rates are drawn from its "
        "log-normal: stratified (each of n bots gets the mean of one of n equally likely "
        "strata, in random order, so a botnet's total rate is its expected value in every "
        "replication: a variance reduction for heavy tails) or independent (n draws; the "
        "total swings with the largest few bots).")

    @model_validator(mode="after")
    def _shares(self) -> SpamConfig:
        if self.botnets and abs(sum(b.share for b in self.botnets) - 1) > 1e-6:
            raise ValueError("botnets: the shares must sum to 1")
        _unique([b.name for b in self.botnets], "botnet name")
        return self


class BlocklistConfig(Strict):
    """A DNS blocklist checked on inbound port 25: end-user address ranges (PBL-like) and,
    once seen, spammer servers and open relays (SBL-like)."""

    listed: dict[Literal["dynamic", "visited"], Share] = Field(
        {"dynamic": 1.0}, description="Kinds of networks the list covers, each with the "
        "share of its ranges listed (`{dynamic: 0.9, visited: 0.5}`); a list of kinds lists "
        "every range of each. Which ranges are listed is a keyed draw of each range. The "
        "PBL held over 1.4 billion IPv4 addresses, almost 40 % of routable space "
        "(spamhaus.org/pbl); its share of each kind of network is not published: Assumed 1, "
        "sweep it.")
    range_prefix: int = Field(24, ge=0, le=32, description="Prefix length of the ranges "
                              "listed as one: the PBL lists CIDR ranges, and dynamic-range "
                              "lists commonly add /24s; 32 decides address by address. "
                              "Assumed.")
    consulted_by: Share | list[str] = Field(
        1.0, description="Which ISPs' mail servers consult the list: a share (each server "
        "with that probability, one draw an ISP from its own stream; a larger share keeps "
        "the servers of a smaller one) or a list of ISP names. Assumed: every server.")
    list_seen_after_s: Seconds | None = Field(
        None, description="Spammer servers and open relays are listed this long after the "
        "first session they open for spam at any mail server [s]; null: never listed. "
        "Spam-trap lists add a source within minutes of a trap hit, Spamhaus's SBL after "
        "an investigator's review: Assumed, sweep it (e.g. 3600).")

    @field_validator("listed", mode="before")
    @classmethod
    def _kinds(cls, value: object) -> object:
        """A list of kinds lists every range of each (coverage 1)."""
        if isinstance(value, list):
            return dict.fromkeys(value, 1.0)
        return value


class GreylistingConfig(Strict):
    """Temporary refusal of unknown (client, sender, recipient) triplets."""

    delay_s: Seconds = Field(300, description="A retry is accepted after [s] (postgrey "
                             "default 300 s).")
    retry_window_s: Seconds = Field(172_800, description="A retry later than this starts "
                                    "over [s] (postgrey default 2 d).")


class ContentFilterConfig(Strict):
    """A content filter at the receiving server."""

    detection_rate: Share = Field(0.9, description="Share of spam caught. Assumed.")
    false_positive_rate: Share = Field(0.001, description="Share of other mail caught. "
                                       "Assumed.")
    action: Literal["reject", "junk"] = Field("junk", description="Refuse with 550 5.7.1, or "
                                              "deliver to the junk folder.")


class DefencesConfig(Strict):
    """Receiver defences, at every ISP's mail server; each off unless given."""

    blocklist: BlocklistConfig | None = Field(None, description="PBL-like blocklist.")
    greylisting: GreylistingConfig | None = Field(None, description="Greylisting.")
    content_filter: ContentFilterConfig | None = Field(None, description="Content filter.")

    _switches = field_validator("blocklist", "greylisting", "content_filter",
                                mode="before")(_switch)


class PolicyAdoption(Strict):
    """A preset adopted by a share of the ISPs, in the order they are listed."""

    preset: Literal["none", "op25b", "op25b+587"] = Field("op25b+587",
                                                          description="Preset name.")
    share: Share = Field(description="Share of ISPs that adopt it: the first "
                         "round(share × ISPs) in the scenario's order.")


class PresetApplication(Strict):
    """A policy preset applied to some ISPs."""

    preset: Literal["none", "op25b", "op25b+587"] = Field(description="Preset name.")
    isps: list[str] = Field(min_length=1, description="ISP names it applies to.")


class Scenario(Strict):
    """A whole world and how long to run it."""

    name: str = Field("scenario", description="Scenario name; results go to results/<name>/.")
    seed: int = Field(1, ge=0, description="Base seed of every random stream.")
    fidelity: Literal["command", "session", "flow"] = Field(
        "command", description="command: every SMTP/POP3 exchange is a simulated event; "
        "session: each session's dialogue runs through the same engines in one step and only "
        "its end is an event (about half the events; the same outcomes, except that mail "
        "delivered during a POP3 session waits for the next one); flow: users' mail and "
        "every outbound queue decided a minute at a time as arrays through the same "
        "policies, spam sessions decided by the servers' hooks without the engines' "
        "dialogue: the same outcomes, for studies and countries (docs/fidelity.md).")
    duration_s: float = Field(86_400, gt=0, description="Simulated time [s]; one day by default.")
    isps: list[ISPConfig] = Field(min_length=1, description="The ISPs.")
    links: list[LinkConfig] | None = Field(None, description="ISP graph given edge by edge.")
    topology: GeneratedTopology | None = Field(None, description="ISP graph generated instead "
                                               "of given; exactly one of links and topology.")
    visited_networks: list[VisitedNetworkConfig] = Field(
        default_factory=list, description="Shared networks (hotels, cafés) behind an ISP.")
    hosting_networks: list[HostingNetworkConfig] = Field(
        default_factory=list, description="Networks of rented static addresses.")
    providers: list[ProviderConfig] = Field(
        default_factory=list, description="Mail providers that are not access ISPs, for the "
        "users' provider_share.")
    dns: DNSConfig = Field(default_factory=DNSConfig, description="Resolver behaviour.")
    smtp: SMTPConfig = Field(default_factory=SMTPConfig, description="SMTP timing and queues.")
    users: UsersConfig = Field(default_factory=UsersConfig,
                               description="Legitimate mail users.")
    spam: SpamConfig = Field(default_factory=SpamConfig, description="Spam senders.")
    defences: DefencesConfig = Field(default_factory=DefencesConfig,
                                     description="Receiver defences.")
    policy: Literal["none", "op25b", "op25b+587"] | None = Field(
        None, description="A policy preset applied to every ISP (after policy_presets). It "
        "sets two fields of each ISP's policies and nothing else: none sets op25b off "
        "(submission as the ISP has it); op25b sets op25b on (drop, from the start) and "
        "submission off: the era before 587, what broke travellers; op25b+587 sets op25b "
        "on and submission on (587 with AUTH, from the start). No preset touches users' mail "
        "clients: a client set for 587 submits there only where and once its ISP offers "
        "587, and on 25 as the users' mua_25_* shares say otherwise (users.mua_587_share).")
    policy_presets: list[PresetApplication] = Field(
        default_factory=list, description="Presets applied to lists of ISPs, in order.")
    policy_adoption: PolicyAdoption | None = Field(
        None, description="A preset adopted by a share of the ISPs (applied after "
        "policy_presets, before policy); the adoption-sweep study varies its share.")

    @model_validator(mode="before")
    @classmethod
    def _apply_presets(cls, data: Any) -> Any:
        """Expand presets into each ISP's policies, so the resolved scenario shows them."""
        if not isinstance(data, dict) or not isinstance(data.get("isps"), list):
            return data
        applications: list[tuple[Any, Any]] = [
            (a.get("preset"), a.get("isps")) for a in data.get("policy_presets") or []
            if isinstance(a, dict)]
        adoption = data.get("policy_adoption")
        if isinstance(adoption, dict) and isinstance(adoption.get("share"), (int, float)):
            count = round(adoption["share"] * len(data["isps"]))
            adopters = [i.get("name") for i in data["isps"][:count] if isinstance(i, dict)]
            applications.append((adoption.get("preset", "op25b+587"), adopters))
        if data.get("policy") is not None:
            applications.append((data["policy"], None))
        if not applications:
            return data
        data = dict(data)
        isps = [dict(i) if isinstance(i, dict) else i for i in data["isps"]]
        for preset, names in applications:
            if preset not in PRESETS:
                continue   # field validation reports it
            for isp in isps:
                if isinstance(isp, dict) and (names is None or isp.get("name") in names):
                    policies = dict(isp.get("policies") or {})
                    policies.update(PRESETS[preset])
                    isp["policies"] = policies
        data["isps"] = isps
        return data

    _name = field_validator("name")(_check_name)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        names = [isp.name for isp in self.isps]
        _unique(names, "ISP name")
        _unique([isp.domain for isp in self.isps], "domain")
        extra = [n.name for n in self.visited_networks] + [n.name for n in self.hosting_networks]
        _unique(names + extra, "network name")
        attached: list[VisitedNetworkConfig | HostingNetworkConfig] = [
            *self.visited_networks, *self.hosting_networks]
        for net in attached:
            if net.upstream not in names:
                raise ValueError(f"network {net.name!r}: upstream ISP {net.upstream!r} does not "
                                 f"exist (ISPs: {', '.join(names)})")
        _disjoint(self)
        hosting = {n.name for n in self.hosting_networks}
        for i, server in enumerate(self.spam.spammer_servers):
            if server.network not in hosting:
                raise ValueError(f"spam.spammer_servers[{i}].network: {server.network!r} is not "
                                 f"a hosting network ({', '.join(sorted(hosting)) or 'none'})")
        for i, provider in enumerate(self.providers):
            if provider.network not in hosting:
                raise ValueError(f"providers[{i}].network: {provider.network!r} is not a "
                                 f"hosting network ({', '.join(sorted(hosting)) or 'none'})")
        _unique([p.name for p in self.providers], "provider name")
        _unique([isp.domain for isp in self.isps] + [p.domain for p in self.providers],
                "domain")
        if self.users.provider_share > 0 and not self.providers:
            raise ValueError("users.provider_share > 0 but no providers are given")
        pools = hosting | {f"{n}.dynamic" for n in names}
        for i, relay in enumerate(self.spam.open_relays):
            if relay.network not in pools:
                raise ValueError(f"spam.open_relays[{i}].network: {relay.network!r} is neither "
                                 f"a hosting network nor <isp>.dynamic")
        blocklist = self.defences.blocklist
        if blocklist is not None and isinstance(blocklist.consulted_by, list):
            for name in blocklist.consulted_by:
                if name not in names:
                    raise ValueError(f"defences.blocklist.consulted_by: ISP {name!r} does "
                                     "not exist")
        for i, application in enumerate(self.policy_presets):
            for name in application.isps:
                if name not in names:
                    raise ValueError(f"policy_presets[{i}].isps: ISP {name!r} does not exist")
        if any(isp.bot_fraction > 0 for isp in self.isps) and not self.spam.botnets:
            raise ValueError("some ISP has bot_fraction > 0 but spam.botnets is empty")
        if (self.links is None) == (self.topology is None) and len(self.isps) > 1:
            raise ValueError("give exactly one of 'links' and 'topology'")
        if self.links is not None:
            graph = nx.Graph()
            graph.add_nodes_from(names)
            for i, link in enumerate(self.links):
                for end in (link.a, link.b):
                    if end not in names:
                        raise ValueError(f"links[{i}]: ISP {end!r} does not exist")
                if link.a == link.b:
                    raise ValueError(f"links[{i}]: a link needs two different ISPs")
                graph.add_edge(link.a, link.b)
            if not nx.is_connected(graph):
                parts = [sorted(c) for c in nx.connected_components(graph)]
                raise ValueError(f"the ISP graph is not connected: {parts}")
        return self


def _unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} appears twice")
        seen.add(value)


def _disjoint(scenario: Scenario) -> None:
    prefixes: list[tuple[str, ipaddress.IPv4Network]] = []
    for isp in scenario.isps:
        prefixes += [(f"{isp.name}.dynamic_pool", isp.dynamic_pool),
                     (f"{isp.name}.server_network", isp.server_network)]
    prefixes += [(n.name, n.prefix) for n in scenario.visited_networks]
    prefixes += [(n.name, n.prefix) for n in scenario.hosting_networks]
    for i, (name_a, a) in enumerate(prefixes):
        for name_b, b in prefixes[i + 1:]:
            if a.overlaps(b):
                raise ValueError(f"prefixes overlap: {name_a} {a} and {name_b} {b}")

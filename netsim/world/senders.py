"""What every mail sender that runs through SimPy (users' mail clients, spam senders) reads
of the world; ``netsim.world.build.World`` is one."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Protocol

import simpy

from netsim.mail import Ledger, MailServer, Tracer
from netsim.mail.outbox import Outbox
from netsim.net import AddressPlan, Network, Subnet
from netsim.scenario import Scenario
from netsim.world.credentials import CredentialPool
from netsim.world.streams import Streams

Process = Generator[simpy.Event, Any, None]


class SendersWorld(Protocol):
    """What mail senders read of the world: its clock, scenario, servers, network, where
    recipients are recorded and held, the trace, stolen credentials and random streams."""

    @property
    def env(self) -> simpy.Environment: ...
    @property
    def scenario(self) -> Scenario: ...
    @property
    def servers(self) -> list[MailServer]: ...
    @property
    def plan(self) -> AddressPlan: ...
    @property
    def network(self) -> Network: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def tracer(self) -> Tracer | None: ...
    @property
    def credentials(self) -> CredentialPool: ...
    @property
    def streams(self) -> Streams: ...

    def dynamic_pool(self, isp: int) -> Subnet: ...

    def next_id(self) -> int: ...

"""The live lab: the scenario's mail servers on real sockets, for real mail clients.

A second adapter (asyncio) around the same sans-I/O SMTP, POP3 and IMAP engines the
simulation drives, with the world's policies, accounts, filters and DNS data. ``netsim serve``
runs it (``--pcap``: and records its sessions as a packet capture); ``netsim send`` and
``netsim fetch`` are small clients for it. See ``docs/lab.md``.
"""

from netsim.lab.addresses import AddressMap
from netsim.lab.background import BackgroundLab
from netsim.lab.layout import LabLayout, PortMap
from netsim.lab.relay import RelaySettings
from netsim.lab.server import Lab, LabSettings

__all__ = ["AddressMap", "BackgroundLab", "Lab", "LabLayout", "LabSettings", "PortMap",
           "RelaySettings"]

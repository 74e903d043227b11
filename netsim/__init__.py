"""netsim: a discrete-event simulation of Internet mail abuse and defence."""

__version__ = "0.1.0"

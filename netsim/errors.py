"""Errors the command line reports in one line, without a traceback: a user's mistake
(status 2), and a run whose recipients do not add up (status 1; nothing is written).

Kept apart from the layers that raise them, so that the command line reads them without
loading the simulator."""


class UserError(Exception):
    """Something the user asked for cannot be done; the message says what and where."""


class ConservationError(AssertionError):
    """Recipients were lost or counted twice: the run's figures cannot be trusted."""

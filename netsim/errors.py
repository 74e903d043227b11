"""Errors that mean "the user asked for something that cannot be done": the command line
prints them without a traceback and exits with status 2."""


class UserError(Exception):
    """Something the user asked for cannot be done; the message says what and where."""

"""Verification: the simulator against theory, against itself, and against its own history.

Each check runs a small seeded scenario, measures one figure and compares it with a bound
derived from a closed form (or an exact schedule). ``netsim check`` prints one line a check;
the test suite asserts each.
"""

from netsim.verify.checks import CHECKS, Check, run_checks

__all__ = ["CHECKS", "Check", "run_checks"]

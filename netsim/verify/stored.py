"""Stored reference values (fingerprint, headline figures): print them, or update them."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def print_or_update(compute: Callable[[], Any], what: str, description: str | None) -> None:
    """Compute the value, print it, and with ``--update FILE`` write it there: the stored
    values of the regression tests change on purpose only."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--update", metavar="FILE", help=f"write the {what} to FILE")
    args = parser.parse_args()
    value = compute()
    text = json.dumps(value, indent=2)
    print(text)
    if args.update:
        Path(args.update).write_text(text + "\n")

"""Mail on disk (``netsim serve --spool DIR``): what a lab server accepted survives a crash.

Each copy in a maildrop is a file ``DIR/maildrops/<domain>/<user>/<uid>``, and each group of
recipients waiting in the relay a pair ``DIR/queue/<key>.json`` (sender, domain, recipients
still pending) and ``<key>.eml`` (the message). Every file is written to a temporary name,
flushed to disk (fsync), renamed into place and its folder synced, all before the server
answers 250: a SIGKILL after a 250 loses nothing. A copy goes when a POP3 session deletes it
(QUIT) or an IMAP session expunges it, a queue entry when its last recipient is delivered or
bounced; its pending list is rewritten after every attempt, so a restart retries only what
no server has taken yet (a kill between a receiving server's 250 and that rewrite would
send those recipients again, the duplicate RFC 5321 §6.1 prefers to a loss). A restarted
lab loads every copy into its maildrops and resumes every queue entry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["Spool"]


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` durably: a temporary file, fsync, rename, fsync of the
    folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    if path.parent.exists():
        _sync_folder(path.parent)


class Spool:
    """The lab's mail on disk, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.maildrops = root / "maildrops"
        self.queue = root / "queue"
        for folder in (self.maildrops, self.queue):
            folder.mkdir(parents=True, exist_ok=True)

    # -- maildrops ---------------------------------------------------------------------
    def _copy(self, domain: str, user: int, uid: str) -> Path:
        return self.maildrops / domain / str(user) / uid

    def store(self, domain: str, user: int, uid: str, payload: bytes) -> None:
        """Keep a maildrop copy (before the 250)."""
        _write(self._copy(domain, user, uid), payload)

    def delete(self, domain: str, user: int, uids: set[str]) -> None:
        """Forget copies a POP3 session deleted or an IMAP session expunged."""
        for uid in uids:
            _remove(self._copy(domain, user, uid))

    def stored(self) -> Iterator[tuple[str, int, str, bytes]]:
        """Every copy kept: (domain, user, uid, message), oldest first within a maildrop."""
        for domain in sorted(p.name for p in self.maildrops.iterdir() if p.is_dir()):
            for folder in sorted((self.maildrops / domain).iterdir(), key=lambda p: p.name):
                copies = [p for p in folder.iterdir() if not p.name.startswith(".")]
                for path in sorted(copies, key=lambda p: (p.stat().st_mtime_ns, p.name)):
                    yield domain, int(folder.name), path.name, path.read_bytes()

    # -- the relay's queue -------------------------------------------------------------
    def enqueue(self, key: str, entry: dict[str, Any], payload: bytes) -> None:
        """Keep a queue entry (before the 250): the message first, then its entry."""
        _write(self.queue / f"{key}.eml", payload)
        _write(self.queue / f"{key}.json", json.dumps(entry).encode())

    def update(self, key: str, entry: dict[str, Any]) -> None:
        """Rewrite an entry after an attempt (its recipients still pending)."""
        _write(self.queue / f"{key}.json", json.dumps(entry).encode())

    def dequeue(self, key: str) -> None:
        """Forget an entry whose recipients are all delivered or bounced."""
        _remove(self.queue / f"{key}.json")
        _remove(self.queue / f"{key}.eml")

    def queued(self) -> Iterator[tuple[str, dict[str, Any], bytes]]:
        """Every entry kept: (key, entry, message)."""
        for path in sorted(self.queue.glob("*.json")):
            message = path.with_suffix(".eml")
            if message.exists():
                yield path.stem, json.loads(path.read_text()), message.read_bytes()

    def last_sequence(self) -> int:
        """The largest message number in the spool (uids are ``<n>.<isp>``), so a restarted
        lab numbers new messages after it."""
        numbers = [int(name.split(".", 1)[0]) for name in
                   [*(p.name for p in self.maildrops.glob("*/*/*")),
                    *(p.stem for p in self.queue.glob("*.json"))]
                   if name.split(".", 1)[0].isdigit()]
        return max(numbers, default=0)

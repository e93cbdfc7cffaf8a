"""A process memo of catalogue reads, each entry stored with the catalogue version it was read
under (`tracks.selectors.catalogue_version`), so a publish, a retirement or an admin edit — which
bump the version — is never served stale. Entries also expire, which bounds staleness where a
bump cannot arrive: a process-local cache (no Redis) while another process publishes, or a crash
between a commit and its bump. Values must be immutable: every caller gets the same object."""

from __future__ import annotations

import threading
import time


class CatalogueMemo[Value]:
    def __init__(self, *, seconds: float = 60, max_entries: int = 64) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[int, float, Value]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, version: int | None) -> Value | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != version or entry[1] <= time.monotonic():
            return None
        return entry[2]

    def put(self, key: str, version: int, value: Value) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (version, time.monotonic() + self.seconds, value)

"""A live server's memory as Linux reports it in /proc/<pid>/status, for the memory rules of security.md."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of /proc/<pid>/status (VmRSS: resident now, VmHWM: peak resident), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


class PeakRss:
    """The largest resident set of a process while the block runs.

    VmHWM is reset through /proc/<pid>/clear_refs (our own child process) so that it covers this block
    alone; sampling every 10 ms backs it up where the reset is not allowed.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = 0
        self.peak = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __enter__(self) -> PeakRss:
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.before = rss_bytes(self.pid)
        self.peak = self.before
        self._sampler.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._sampler.join()
        self.peak = max(self.peak, rss_bytes(self.pid, "VmHWM"))

    @property
    def growth(self) -> int:
        return self.peak - self.before

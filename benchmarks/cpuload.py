"""How much of the machine other work took while a run was being timed.

On a small shared machine a neighbour's job can slow a run tenfold; this makes that
visible instead of silently folding it into the figures. Linux only (/proc/stat);
elsewhere the share is None.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

STAT = Path("/proc/stat")
MIN_SPAN = 0.2  # seconds: /proc/stat counts in 10 ms ticks, too coarse for shorter spans


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent not idle (steal included) since boot."""
    try:
        fields = STAT.read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """Context manager: .share is the fraction of all CPUs' time, over the span, that
    went to anything but this process (other processes, the kernel, the hypervisor);
    None for spans under MIN_SPAN."""

    def __enter__(self):
        self.share = None
        self._start = busy_cpu_seconds(), time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        busy0, own0, wall0 = self._start
        busy1, own1, wall1 = busy_cpu_seconds(), time.process_time(), time.perf_counter()
        if busy0 is None or busy1 is None or wall1 - wall0 < MIN_SPAN:
            return
        others = (busy1 - busy0) - (own1 - own0)
        self.share = max(0.0, others / ((wall1 - wall0) * (os.cpu_count() or 1)))


def wait_until_quiet(patience: float, threshold: float = 0.05, sample: float = 0.5) -> float:
    """Wait, at most patience seconds, until other work takes under threshold of the
    CPUs over a sample; returns the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < patience:
        with OtherLoad() as load:
            time.sleep(max(sample, MIN_SPAN))
        if load.share is None or load.share < threshold:
            break
    return time.perf_counter() - start

"""Shared logic of the multilingual embedding study; the top-level scripts stay thin.

One module a concern: config, data, embedders, artifacts, probes, metrics, plots, report.
"""
import os
import signal
import sys
import time


def _cores_taken_by_others(sample_s: float = 0.2) -> bool:
    """Is something else keeping at least half of this process's cores busy right now? (/proc/stat)"""
    def snapshot():
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        return values[3] + values[4], sum(values)   # idle + iowait, total
    try:
        idle0, total0 = snapshot()
        time.sleep(sample_s)
        idle1, total1 = snapshot()
    except (OSError, ValueError, IndexError):
        return False
    busy_cores = (1 - (idle1 - idle0) / max(total1 - total0, 1)) * (os.cpu_count() or 1)
    mine = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return busy_cores >= 0.5 * mine


# OpenMP threads (LightGBM, torch) spin while they wait for work. Alone on its cores that is the
# fastest (LightGBM 13 s against 25 s waiting passively), but beside another busy process spinning
# threads slow both down many times over; so when the cores are busy at start-up, threads wait
# passively. Decided before any OpenMP runtime loads; an OMP_WAIT_POLICY already set is kept.
if "OMP_WAIT_POLICY" not in os.environ and _cores_taken_by_others():
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def _interrupted_at_start(signum, frame):
    print("interrupted while starting: nothing was written", file=sys.stderr)
    sys.exit(130)


# Ctrl-C while the heavy libraries import ends quietly; study.cli.run takes over once main() runs.
if "pytest" not in sys.modules and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_at_start)

from study.errors import StudyError  # noqa: E402

__all__ = ["StudyError"]

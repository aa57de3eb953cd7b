"""Shared logic of the multilingual embedding study; the top-level scripts stay thin.

One module a concern: config, data, embedders, artifacts, probes, metrics, plots, report.
"""
import os
import signal
import sys

# OpenMP threads (LightGBM, torch) wait passively: busy-waiting threads that share the cores with
# another process slow both down many times over. Set before any OpenMP runtime is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")



def _interrupted_at_start(signum, frame):
    print("interrupted while starting: nothing was written", file=sys.stderr)
    sys.exit(130)


# Ctrl-C while the heavy libraries import ends quietly; study.cli.run takes over once main() runs.
if "pytest" not in sys.modules and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_at_start)

from study.errors import StudyError  # noqa: E402

__all__ = ["StudyError"]

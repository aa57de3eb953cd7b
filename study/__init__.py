"""Shared logic of the multilingual embedding study; the top-level scripts stay thin.

One module a concern:
- inputs: config (config.yaml schema, variants), tasks (scores vs yes/no, declared once), languages (which
  languages a model reads; controls), data (splits, validation), demo (the synthetic demo datasets);
- embedding: embedders (loading, tokenizing, the encode loop), embedding (phase 1 as one function returning each
  cache it made or reused), cache (fingerprinted .npz caches), backends (the encoder in onnxruntime or OpenVINO on
  a CPU);
- probes and numbers: probes (the estimators and their portable bundles), metrics, screening, evaluation
  (phase 3's steps), phase3 (phase 3 as one function returning its typed record), results (choices on validation), error_analysis, benchmark;
- the results contract: schemas (one typed model per JSON artifact and its reader), artifacts (atomic,
  checksummed files), paths (every artifact's name), provenance;
- what the researcher reads: findings, decision (page 1), report (sections) into document (one model,
  rendered to Word by docx_writer and to markdown), formats (numbers), comparison (charts), plots, summary;
- the command line: cli (arguments, the one-line error contract), errors, runner (run_all's phases), estimate
  (the time a run will take: a cost model per phase).

Importing the package samples /proc/stat once (0.2 s) before torch or LightGBM load: see below.
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


# Why /proc/stat at import: OpenMP reads OMP_WAIT_POLICY once, when its runtime loads (with torch or
# LightGBM), so the choice must be made before any heavy import, i.e. here.
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

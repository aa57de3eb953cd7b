"""A signal sent to run_all.py's PID alone reaches its running phase, and run_all.py waits for the phase
before it says what was kept (real processes: a driver running study.runner, a phase that writes late)."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import REPO

PHASE = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from study import cli
    out = Path(sys.argv[1])

    def main():
        (out / "started").write_text(str(os.getpid()))
        for _ in range(200):            # 20 s of work, then the write a kill must prevent
            time.sleep(0.1)
        (out / "late.pkl").write_text("written after the kill")

    cli.run(main)
""")

DRIVER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from study import cli
    from study.runner import run_phases

    out = Path(sys.argv[1])
    def main():
        run_phases([("PHASE", [str(out)]), ("LATER", [str(out)])], dict(os.environ), out / "run.log", say=lambda s: None)
    cli.run(main)
""")


def _wait_for(path, seconds=60):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_to_run_all_stops_its_phase_first(tmp_path, signum):
    phase = tmp_path / "phase.py"
    phase.write_text(PHASE)
    # run_phases joins the script's name to the repository: an absolute name stands for itself
    later = tmp_path / "later.py"
    later.write_text("import sys; open(sys.argv[1] + '/later_ran', 'w').write('x')")
    driver = DRIVER.replace('"PHASE"', repr(str(phase))).replace('"LATER"', repr(str(later)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", driver, str(tmp_path)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(tmp_path / "started")
        child = int((tmp_path / "started").read_text())
        os.kill(proc.pid, signum)          # the driver's PID alone, as `kill -INT PID` does
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not _alive(child)               # the phase had stopped when the driver ended
    assert not (tmp_path / "late.pkl").exists()
    assert not (tmp_path / "later_ran").exists()   # and no later phase started
    assert proc.returncode == 128 + signum, err
    lines = err.strip().splitlines()
    name = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
    assert lines[-1] == (f"interrupted{name} (the running phase, pid {child}, stopped first): artifacts already "
                         "written are complete, nothing half-written was kept"), err
    assert "Traceback" not in err
    assert f"interrupted by {signal.Signals(signum).name}; stopped" in (tmp_path / "run.log").read_text()
    # the phase itself ended in order, with its own line
    assert any(line.startswith("interrupted") and "pid" not in line for line in lines[:-1]), err

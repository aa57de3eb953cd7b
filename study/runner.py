"""run_all.py's engine: each phase as its own process, its output streamed to the console as it
comes (never a line glued to a progress bar) and into a log file where progress bars become one
line every ~10%; the phases' recorded wall times, for the next run's plan."""
from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from study.errors import Interrupted

BAR = re.compile(r"(\d{1,3})%\|")   # a tqdm progress line


class LogFilter:
    """Text of a phase's output for the log: a progress bar's redraws become a line per 10% step."""

    def __init__(self, fh):
        self.fh, self.pending, self.buckets, self.last_error = fh, "", {}, None

    def feed(self, text: str) -> None:
        parts = re.split(r"[\r\n]", self.pending + text)
        self.pending = parts.pop()
        for segment in parts:
            self._line(segment)

    def close(self) -> None:
        if self.pending:
            self._line(self.pending)
        self.pending = ""

    def _line(self, segment: str) -> None:
        if not segment.strip():
            return
        bar = BAR.search(segment)
        if bar:
            key, bucket = segment[:bar.start()].split(":")[0], int(bar.group(1)) // 10
            if bucket <= self.buckets.get(key, -1):
                return
            self.buckets[key] = bucket
        elif segment.startswith("error: "):
            self.last_error = segment
        self.fh.write(segment.rstrip() + "\n")


class Console:
    """The run's terminal, shared by a phase's stdout and stderr: each chunk is written as it comes, except that a
    chunk of one stream arriving while the other was left mid-line (a progress bar on stderr, whose redraws end
    without a newline) first ends that line, so no result line is glued to a bar."""

    def __init__(self):
        self.open = None   # the stream whose last line is unfinished (what is visible on it after its last \r)

    def write(self, out, chunk: bytes) -> None:
        text = chunk.decode("utf-8", "replace")
        if self.open is not None and self.open is not out and text and not text.startswith(("\r", "\n")):
            self._raw(self.open, b"\n")
            self.open = None
        self._raw(out, chunk)
        ended = "\n" in text
        tail = text.rsplit("\n", 1)[-1]   # what this chunk leaves on the current line
        if "\r" in tail:   # a redraw: what follows the last carriage return is what shows
            unfinished = bool(tail.rsplit("\r", 1)[1])
        else:
            unfinished = bool(tail) or (not ended and self.open is out)
        self.open = out if unfinished else None

    @staticmethod
    def _raw(out, chunk: bytes) -> None:
        out.buffer.write(chunk) if hasattr(out, "buffer") else out.write(chunk.decode("utf-8", "replace"))
        out.flush()


FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)   # SIGHUP: the ssh session closed


@contextlib.contextmanager
def forwarding(proc: subprocess.Popen):
    """While `proc` runs, SIGINT, SIGTERM and SIGHUP sent to this process go to it; the block ends when it does,
    and the first such signal is then raised here (errors.Interrupted): nothing is said about what was kept
    before the phase has stopped. The phase runs in its own process group, so a Ctrl-C in the terminal
    reaches it once, through here."""
    got: list[int] = []

    def forward(signum, frame):
        got.append(signum)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if got:
        raise Interrupted(got[0], f" (the running phase, pid {proc.pid}, stopped first)")


def run_phase(command: list[str], env: dict, log) -> tuple[int, float, str | None]:
    """Run one phase; (exit code, seconds, its last `error:` line or None). SIGINT / SIGTERM: see `forwarding`."""
    t0 = time.perf_counter()
    env = {**env, "PYTHONUNBUFFERED": "1"}   # a phase's result lines come when printed, not at its exit
    proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, process_group=0)
    try:
        with forwarding(proc):
            return _stream(proc, log, t0)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            if proc.poll() is None:   # an error of our own while it runs: it must not go on alone
                proc.terminate()
                proc.wait()
        raise


def _stream(proc: subprocess.Popen, log, t0: float) -> tuple[int, float, str | None]:
    streams = {proc.stdout.fileno(): sys.stdout, proc.stderr.fileno(): sys.stderr}
    filters = {fd: LogFilter(log) for fd in streams}
    sel = selectors.DefaultSelector()
    for fd in streams:
        sel.register(fd, selectors.EVENT_READ)
    open_fds = set(streams)
    console = Console()
    while open_fds:
        for key, _ in sel.select():
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fd)
                open_fds.discard(key.fd)
                continue
            console.write(streams[key.fd], chunk)
            filters[key.fd].feed(chunk.decode("utf-8", "replace"))
    code = proc.wait()
    if console.open is not None:   # a bar left unfinished by a phase that died
        console._raw(console.open, b"\n")
    for f in filters.values():
        f.close()
    log.flush()
    return code, time.perf_counter() - t0, filters[proc.stderr.fileno()].last_error


# the study's phase of each script, numbered as the README numbers them (evaluate and compare are both phase 3)
STUDY_PHASE = {"embed_articles.py": 1, "train_probes.py": 2, "finetune_encoder.py": 2, "evaluate.py": 3, "compare_results.py": 3,
               "benchmark_speed.py": 4, "analyze_error_distribution.py": 5, "generate_report.py": 6}


def run_phases(todo: list[tuple[str, list[str]]], env: dict, log_path: Path, say=print,
               timings: dict[str, float] | None = None) -> tuple[str, int, str | None] | None:
    """Run (script, arguments) pairs in order into one log; None, or (script, exit code, error line) of the
    first failure (the phases after it are not run). `timings`: each finished script's wall seconds added to it."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    times = []
    with open(log_path, "a", encoding="utf-8") as log:
        for i, (script, arguments) in enumerate(todo, 1):
            command = [sys.executable, str(Path(__file__).resolve().parent.parent / script), *arguments]
            head = (f"=== phase {STUDY_PHASE.get(script, '?')} of 6, step {i}/{len(todo)} of this run: {script} "
                    f"{' '.join(command[2:])}")
            say(f"\n{head}")
            log.write(f"\n{head}\n")
            log.flush()
            try:
                code, seconds, error = run_phase(command, env, log)
            except Interrupted as exc:
                log.write(f"=== {script} interrupted by {signal.Signals(exc.signum).name}; stopped\n")
                raise
            times.append((script, seconds))
            if timings is not None:
                timings[script] = timings.get(script, 0.0) + seconds
            if code != 0:
                tail = f"=== {script} failed with exit code {code} after {seconds:.1f}s; stopped " \
                       f"(not run: {', '.join(s for s, _ in todo[i:]) or 'none'})"
                print(f"\n{tail}", file=sys.stderr, flush=True)
                log.write(f"{tail}\n")
                return script, code, error
            say(f"=== {script} done in {seconds:.1f}s")
            log.write(f"=== {script} done in {seconds:.1f}s\n")
        lines = ["", "wall-clock time per phase:"] + [f"  {s:32s} {t:8.1f}s" for s, t in times] \
            + [f"  {'total':32s} {sum(t for _, t in times):8.1f}s"]
        say("\n".join(lines))
        log.write("\n".join(lines) + "\n")
    return None


DONE = re.compile(r"^=== (\S+) done in ([0-9.]+)s$", re.M)


def recorded_times(log_dir: Path, dataset: str, script: str) -> tuple[Path, dict[str, float]] | None:
    """The wall times ({script: seconds}) of the latest run log in `log_dir` that timed `script`, preferring the
    logs of `dataset`; None when no log did. Logs are named `<UTC start>_<dataset>.log`, so their names sort by time."""
    logs = sorted(Path(log_dir).glob("*.log"), key=lambda p: p.name, reverse=True) if Path(log_dir).is_dir() else []
    for candidates in ([p for p in logs if p.name.split("_", 1)[-1] == f"{dataset}.log"], logs):
        for log in candidates:
            times: dict[str, float] = {}
            try:
                text = log.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for name, seconds in DONE.findall(text):
                times[name] = times.get(name, 0.0) + float(seconds)
            if script in times:
                return log, times
    return None

"""run_all.py's engine: each phase as its own process, its output streamed to the console
unchanged and into a log file where progress bars become one line every ~10%."""
from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time
from pathlib import Path

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


def run_phase(command: list[str], env: dict, log) -> tuple[int, float, str | None]:
    """Run one phase; (exit code, seconds, its last `error:` line or None)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    streams = {proc.stdout.fileno(): sys.stdout, proc.stderr.fileno(): sys.stderr}
    filters = {fd: LogFilter(log) for fd in streams}
    sel = selectors.DefaultSelector()
    for fd in streams:
        sel.register(fd, selectors.EVENT_READ)
    open_fds = set(streams)
    while open_fds:
        for key, _ in sel.select():
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fd)
                open_fds.discard(key.fd)
                continue
            out = streams[key.fd]
            out.buffer.write(chunk) if hasattr(out, "buffer") else out.write(chunk.decode("utf-8", "replace"))
            out.flush()
            filters[key.fd].feed(chunk.decode("utf-8", "replace"))
    code = proc.wait()
    for f in filters.values():
        f.close()
    log.flush()
    return code, time.perf_counter() - t0, filters[proc.stderr.fileno()].last_error


def run_phases(todo: list[tuple[str, list[str]]], env: dict, log_path: Path, say=print) -> tuple[str, int, str | None] | None:
    """Run (script, arguments) pairs in order into one log; None, or (script, exit code, error line) of the
    first failure (the phases after it are not run)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    times = []
    with open(log_path, "a", encoding="utf-8") as log:
        for i, (script, arguments) in enumerate(todo, 1):
            command = [sys.executable, str(Path(__file__).resolve().parent.parent / script), *arguments]
            head = f"=== phase {i}/{len(todo)}: {script} {' '.join(command[2:])}"
            say(f"\n{head}")
            log.write(f"\n{head}\n")
            log.flush()
            code, seconds, error = run_phase(command, env, log)
            times.append((script, seconds))
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

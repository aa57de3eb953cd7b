"""run_all's console: the plan said up front (with the benchmark's share of a run), and no result line glued to a
progress bar when a phase's stdout and stderr share one terminal."""
from __future__ import annotations

import sys
import textwrap
from types import SimpleNamespace

import pytest

from conftest import call, write_config
from study import runner

import run_all


class Terminal:
    """One screen behind both sys.stdout and sys.stderr, as in a shell."""

    def __init__(self):
        self.text = ""

    def stream(self):
        term = self

        class Stream:
            def write(self, s):
                term.text += s

            def flush(self):
                pass
        return Stream()

    def lines(self) -> list[str]:
        """What each line shows: a carriage return redraws the line from its start."""
        return [line.rsplit("\r", 1)[-1] for line in self.text.split("\n")]


CHILD = textwrap.dedent("""
    import sys, time
    sys.stderr.write("\\rprobes:  33%|###       | 1/3"); sys.stderr.flush()
    time.sleep(0.3)
    print("[m] ridge: val MAE 1.1307")          # no flush: the phase's stdout is a pipe
    time.sleep(0.5)
    sys.stderr.write("\\rprobes:  67%|######    | 2/3"); sys.stderr.flush()
    time.sleep(0.3)
    print("[m] mlp: val MAE 1.0155")
    time.sleep(0.5)
    sys.stderr.write("\\rprobes: 100%|##########| 3/3\\n"); sys.stderr.flush()
    sys.stderr.write("\\rtail bar 10%|#")     # left unfinished by a phase that ends
""")


@pytest.mark.slow
def test_result_lines_are_never_glued_to_a_progress_bar_and_come_when_printed(tmp_path, monkeypatch):
    term = Terminal()
    monkeypatch.setattr(sys, "stdout", term.stream())
    monkeypatch.setattr(sys, "stderr", term.stream())
    script = tmp_path / "phase.py"
    script.write_text(CHILD)
    with open(tmp_path / "log", "w") as log:
        code, _, _ = runner.run_phase([sys.executable, str(script)], {}, log)
    assert code == 0
    lines = term.lines()
    # each result on a line of its own, not after (or over) a bar
    assert "[m] ridge: val MAE 1.1307" in lines and "[m] mlp: val MAE 1.0155" in lines
    # in the order the phase printed them: results between the bars, not all at its exit
    order = [next(i for i, line in enumerate(lines) if line.startswith(prefix))
             for prefix in ("[m] ridge", "[m] mlp", "probes: 100%")]
    assert order == sorted(order)
    assert term.text.endswith("tail bar 10%|#\n")   # the phase's last bar line is ended for what comes next
    assert "[m] ridge: val MAE 1.1307\n" in (tmp_path / "log").read_text()


def test_console_ends_a_bar_line_only_when_the_other_stream_writes():
    term = Terminal()
    out, err = term.stream(), term.stream()
    console = runner.Console()
    console.write(err, b"\rbar 50%")
    console.write(err, b"\rbar 60%")                 # a redraw of the same stream: no newline
    assert term.text == "\rbar 50%\rbar 60%"
    console.write(out, b"result\n")
    assert term.lines() == ["bar 60%", "result", ""]
    console.write(err, b"\r" + b" " * 7 + b"\r")     # tqdm clearing its bar: the line is empty again
    console.write(out, b"next\n")
    assert term.text.endswith("\r       \rnext\n")


def log_with(path, times: dict[str, float]):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"\n=== phase ? {s} ...\n=== {s} done in {t:.1f}s\n" for s, t in times.items()))


def test_the_plan_gives_the_benchmarks_share_of_the_last_run_that_timed_it(tmp_path):
    cfg = SimpleNamespace(results_path=tmp_path / "results")
    logs = cfg.results_path / "logs"
    everything = list(run_all.PHASES)
    plan = run_all.run_plan(cfg, everything, ["finetune"], ["news"], False)   # main() skips the arm unless asked
    assert "1 embed, 2 train, 3 evaluate, 3 compare, 4 benchmark, 5 errors, 6 report" in plan[0]
    assert "not run" not in plan[0]   # the fine-tuned arm is asked for (--finetune), never listed as skipped
    assert "usually the longest phase" in plan[1] and "--skip benchmark" in plan[1]   # nothing recorded yet
    log_with(logs / "20260101T000000Z_news.log", {"embed_articles.py": 40.0, "benchmark_speed.py": 264.0,
                                                  "generate_report.py": 26.0})
    log_with(logs / "20260102T000000Z_news.log", {"embed_articles.py": 30.0})   # later, but no benchmark
    log_with(logs / "20260103T000000Z_other.log", {"benchmark_speed.py": 5.0, "train_probes.py": 5.0})
    plan = run_all.run_plan(cfg, everything, [], ["news", "other"], False)
    assert "4 benchmark (first dataset only)" in plan[0]
    assert "took 4.4 min of 5.5 min (80%)" in plan[1] and "20260101T000000Z_news.log" in plan[1]
    assert "--skip benchmark" in plan[1]
    # another dataset, never benchmarked: the latest log of any dataset that timed it
    assert "took 5 s of 10 s (50%)" in run_all.run_plan(cfg, everything, [], ["third"], False)[1]
    skipped = run_all.run_plan(cfg, everything[everything.index("evaluate"):], ["benchmark"], ["news"], False)
    assert skipped == ["plan: 1 dataset (news); phases 3 evaluate, 3 compare, 5 errors, 6 report; "
                       "not run: 1 embed, 2 train, 4 benchmark"]


def test_run_all_prints_its_plan_before_the_first_phase(tmp_path, capsys, phases_in_process):
    cfg = write_config(tmp_path, {"m": {"source": "sentence-transformers", "model_name": str(tmp_path / "no_model"),
                                        "dimensions": 8, "max_tokens": 16}})
    code = call("run_all", "--config", cfg, "--data-dir", tmp_path / "no_such_folder", "--skip", "train")
    out = capsys.readouterr().out
    assert code == 2   # phase 1 finds no data
    plan = out.index("plan: 1 dataset (no_such_folder); phases 1 embed, 3 evaluate")
    assert "not run: 2 train" in out and "leave it out with --skip benchmark" in out
    assert plan < out.index("=== phase 1 of 6")

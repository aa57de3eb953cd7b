"""Derive a yes/no (classification) dataset from a scored one: yes = article score >= --min-score.

    python derive_yes_no.py --data-dir ../shared/data/sustainability_real --min-score 4.5 \
        --out /tmp/classify-data/sustainability_yes_no

The article score is the equal-weight mean of the article's dimension scores. Each split
(train/val/test.jsonl) is rewritten line for line with `labels: [0|1]` and
`dimension_names: [--name]` (default "yes"); id, title, content, url and language are kept.
The output folder also gets `dataset.yaml` (`task: classification`, the rule, optionally
`baseline_f1`), which is how a folder given by --data-dir declares a yes/no dataset
(README, "Yes/no datasets"). Write the folder outside the repository: the article texts
belong to their publishers.
"""
import json
from pathlib import Path

import yaml

from study import cli
from study.artifacts import atomic_path, staged_writes
from study.config import load_config
from study.data import DATASET_FILE, SPLITS, Dataset, table_safe, dataset_spec, load_split
from study.errors import StudyError


def describe(name: str, data_dir: Path, min_score: float) -> str:
    return f"{name} = 1 where the mean of the {data_dir.name} dimension scores is >= {min_score:g}"


def check_out(out: Path, data_dir: Path, name: str) -> None:
    """--out must be new, empty, or this script's earlier output from the same source (rewritten then)."""
    held = [f for f in (*(f"{s}.jsonl" for s in SPLITS), DATASET_FILE) if (out / f).exists()]
    if not held:
        return
    spec = dataset_spec(out) if (out / DATASET_FILE).is_file() else None
    prefix = describe(name, data_dir, 0).rsplit(">=", 1)[0]
    if spec is None or spec.task != "classification" or not spec.description.startswith(prefix):
        raise StudyError(f"--out {out} already holds {', '.join(held)} of another dataset (not derived from "
                         f"{data_dir.name} by this script): give a new or empty folder")


def derive(data_dir: Path, out: Path, min_score: float, name: str, baseline_f1: float | None,
           score_range=(0.0, 10.0)) -> dict:
    """Write the derived splits and dataset.yaml; returns {split: (articles, positives)}. Every split is
    checked as phase 1 checks it (study.data.load_split) before anything is written, and the files land
    together."""
    source_set = Dataset(name=data_dir.name, path=data_dir, baseline_mae=None)
    for split in SPLITS:
        load_split(source_set, split, score_range)   # one `error:` line naming file, line and field
    counts = {}
    with staged_writes():
        for split in SPLITS:
            source = data_dir / f"{split}.jsonl"
            lines, positives = [], 0
            with open(source, encoding="utf-8-sig") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    rec = json.loads(line)
                    labels = [float(v) for v in rec["labels"]]
                    yes = int(sum(labels) / len(labels) >= min_score)
                    positives += yes
                    rec.update(labels=[yes], dimension_names=[name])
                    lines.append(json.dumps(rec, ensure_ascii=False))
            with atomic_path(out / f"{split}.jsonl", "w") as fh:
                fh.write("\n".join(lines) + "\n")
            counts[split] = (len(lines), positives)
        spec = {"task": "classification", "description": describe(name, data_dir, min_score)}
        if baseline_f1 is not None:
            spec["baseline_f1"] = baseline_f1
        with atomic_path(out / DATASET_FILE, "w") as fh:
            yaml.safe_dump(spec, fh, sort_keys=False)
    return counts


def main():
    p = cli.bare_parser(__doc__)
    p.add_argument("--config", default=None, help="config file, for score_range (default: config.yaml beside the scripts)")
    p.add_argument("--data-dir", required=True, help="scored dataset folder (train/val/test.jsonl)")
    p.add_argument("--out", required=True, help="output folder (outside the repository; its name names the dataset)")
    p.add_argument("--min-score", type=cli.finite_float, required=True, help="yes where the article score is >= this")
    p.add_argument("--name", default="yes", help="the single dimension name (default: yes)")
    p.add_argument("--baseline-f1", type=cli.unit_float, help="a known F1 of a fine-tuned classifier, for dataset.yaml")
    args = p.parse_args()
    data_dir, out = Path(args.data_dir).expanduser().resolve(), Path(args.out).expanduser().resolve()
    if out == data_dir:
        raise StudyError("--out must differ from --data-dir")
    if not table_safe(args.name):
        raise StudyError(f"--name {args.name!r} would break the report's tables ('|' or a control character)")
    check_out(out, data_dir, args.name)
    score_range = load_config(args.config).score_range
    for split, (n, pos) in derive(data_dir, out, args.min_score, args.name, args.baseline_f1, score_range).items():
        print(f"{split}: {n} articles, {pos} yes ({pos / n:.1%})")
    print(f"-> {out} (dataset.yaml: task classification)")


if __name__ == "__main__":
    cli.run(main)

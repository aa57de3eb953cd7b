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
import argparse
import json
import math
from pathlib import Path

import yaml

from study import cli
from study.artifacts import atomic_path
from study.data import DATASET_FILE, SPLITS
from study.errors import StudyError


def derive(data_dir: Path, out: Path, min_score: float, name: str, baseline_f1: float | None) -> dict:
    """Write the derived splits and dataset.yaml; returns {split: (articles, positives)}."""
    counts = {}
    for split in SPLITS:
        source = data_dir / f"{split}.jsonl"
        if not source.is_file():
            raise StudyError(f"split '{split}' missing: {source} does not exist")
        lines, positives = [], 0
        with open(source, encoding="utf-8-sig") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    labels = [float(v) for v in rec["labels"]]
                except (ValueError, KeyError, TypeError) as exc:
                    raise StudyError(f"{source}:{lineno}: cannot read 'labels' ({exc})") from None
                if not labels or not all(math.isfinite(v) for v in labels):
                    raise StudyError(f"{source}:{lineno}: field 'labels' must be a non-empty list of finite numbers")
                yes = int(sum(labels) / len(labels) >= min_score)
                positives += yes
                rec.update(labels=[yes], dimension_names=[name])
                lines.append(json.dumps(rec, ensure_ascii=False))
        with atomic_path(out / f"{split}.jsonl", "w") as fh:
            fh.write("\n".join(lines) + "\n")
        counts[split] = (len(lines), positives)
    spec = {"task": "classification",
            "description": f"{name} = 1 where the mean of the {data_dir.name} dimension scores is >= {min_score:g}"}
    if baseline_f1 is not None:
        spec["baseline_f1"] = baseline_f1
    with atomic_path(out / DATASET_FILE, "w") as fh:
        yaml.safe_dump(spec, fh, sort_keys=False)
    return counts


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="scored dataset folder (train/val/test.jsonl)")
    p.add_argument("--out", required=True, help="output folder (outside the repository; its name names the dataset)")
    p.add_argument("--min-score", type=float, required=True, help="yes where the article score is >= this")
    p.add_argument("--name", default="yes", help="the single dimension name (default: yes)")
    p.add_argument("--baseline-f1", type=float, help="a known F1 of a fine-tuned classifier, for dataset.yaml")
    args = p.parse_args()
    data_dir, out = Path(args.data_dir).expanduser().resolve(), Path(args.out).expanduser().resolve()
    if out == data_dir:
        raise StudyError("--out must differ from --data-dir")
    if args.baseline_f1 is not None and not 0 < args.baseline_f1 <= 1:
        raise StudyError(f"--baseline-f1 must lie in (0, 1], found {args.baseline_f1}")
    for split, (n, pos) in derive(data_dir, out, args.min_score, args.name, args.baseline_f1).items():
        print(f"{split}: {n} articles, {pos} yes ({pos / n:.1%})")
    print(f"-> {out} (dataset.yaml: task classification)")


if __name__ == "__main__":
    cli.run(main)

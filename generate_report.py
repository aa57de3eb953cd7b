"""Phase 6: build the Word report from the JSON results of phases 2-5.

    python generate_report.py --dataset uplifting_v5
    python generate_report.py --dataset uplifting_v5 --output results/Multilingual_Embedding_Research_Report.docx
    python generate_report.py --data-dir ../shared/data/sustainability_real

Reads results/<dataset>_evaluation_results.json (required: run evaluate.py first) and, when
present, results/<dataset>_training_summary.json, results/benchmarks/<dataset>_benchmarks.json,
results/analysis/<dataset>_error_summary.json and results/<dataset>_comparison.json, with the
figures those two record by name.
A section whose input is missing says so in the document. Writes results/<dataset>_report.docx
(or --output) atomically, and the quality-vs-speed chart beside it in <report name>_figures/.
Every number in the document comes from those files; the data folder itself is not read.
A yes/no dataset (task: classification) gets the yes/no report: F1, precision, recall and ROC
AUC at the validation threshold, per language, confusion counts and false positives/negatives,
without the score-only sections (MAE, bands, truncation MAE, screening, speed).
"""
from pathlib import Path

from study import cli, paths
from study.config import load_config
from study.data import dataset_name
from study.errors import StudyError
from study.report import write_report


def main():
    parser = cli.parser(__doc__)
    parser.add_argument("--output", help="the .docx to write (default: <results_dir>/<dataset>_report.docx)")
    parser.add_argument("--benchmarks-of", metavar="DATASET",
                        help="take the speed benchmark measured on this dataset (run_all.py measures once per run)")
    args = parser.parse_args()

    cfg = load_config(args.config)
    cli.hold_results(cfg)   # one run at a time in a results folder
    dataset = dataset_name(args.dataset, args.data_dir)
    out = Path(args.output) if args.output else paths.report(cfg, dataset)
    if out.suffix.lower() != ".docx":
        raise StudyError(f"--output must end in .docx, found {out}")

    done = write_report(cfg, dataset, out.resolve(), benchmarks_of=args.benchmarks_of)
    print(f"sections: {'; '.join(done.sections)}")
    print(f"{done.tables} tables, {done.figures} figures"
          + (f"; unavailable: {', '.join(done.missing)}" if done.missing else ""))
    print(f"report: {done.path}")


if __name__ == "__main__":
    cli.run(main)

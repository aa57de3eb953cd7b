"""Phase 3b: the evaluation results as a markdown report and charts.

    python compare_results.py --dataset demo
    python compare_results.py --data-dir ../shared/data/sustainability_real

Reads results/<dataset>_evaluation_results.json (run evaluate.py first). Writes
results/<dataset>_comparison_report.md: the same document as phase 6's Word report (page 1's
decision table, every model and probe with its paired comparisons, the answers to the study's
questions, the annex), from what exists when it runs, so its tables are the Word report's cell
for cell; sections whose inputs come later (speed, error analysis) say which phase makes them.
Draws results/figures/<dataset>_{mae_by_model,dimension_mae_heatmap,screening_curve,learning_curve}.png
(the last two when their results exist; a yes/no dataset: <dataset>_f1_by_model.png) and writes
results/<dataset>_comparison.json, which records them by name for the report.
"""
from study import cli, paths
from study.artifacts import atomic_path, staged_writes
from study.comparison import draw_figures
from study.config import load_config
from study.data import dataset_name
from study.provenance import record
from study.report import comparison_markdown
from study.results import best_line, evaluation_sha256, read_evaluation
from study.schemas import ComparisonRecord, write_record


def main():
    args = cli.parser(__doc__).parse_args()

    cfg = load_config(args.config)
    cli.hold_results(cfg)   # one run at a time in a results folder
    name = dataset_name(args.dataset, args.data_dir)
    results = read_evaluation(cfg, name)
    report = paths.comparison_markdown(cfg, name)

    binary = results.task == "classification"
    with staged_writes():   # the charts, the markdown and the record land together, or (on an error) none of them
        figures = draw_figures(cfg, results)
        text = comparison_markdown(cfg, name, figures, report)
        with atomic_path(report, "wb") as fh:
            fh.write(text.encode("utf-8"))
        write_record(paths.comparison_record(cfg, name), ComparisonRecord, {
            "dataset": name, "report": paths.relative(cfg, report), "evaluation_sha256": evaluation_sha256(cfg, name),
            "figures": {n: paths.relative(cfg, p) for n, p in figures.items()}, "provenance": record()})

    best = results.best
    if binary:
        f1 = "n/a" if best.test_f1 is None else f"{best.test_f1:.4f}"
        print(f"best on validation: {best.model} + {best.probe}, test F1 {f1} at threshold {best.threshold:.3f}")
    else:
        print(best_line(results))
    print(f"report: {report}")
    print("charts: " + "\n        ".join(str(p) for p in figures.values()))


if __name__ == "__main__":
    cli.run(main)

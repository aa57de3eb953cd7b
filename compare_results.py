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
from study import cli, decision
from study.artifacts import staged_writes
from study.config import load_config
from study.data import dataset_name
from study.report import compare
from study.results import best_line


def main():
    args = cli.parser(__doc__).parse_args()

    cfg = load_config(args.config)
    cli.hold_results(cfg)   # one run at a time in a results folder
    name = dataset_name(args.dataset, args.data_dir)
    with staged_writes():   # the charts, the markdown and the record land together, or (on an error) none of them
        done = compare(cfg, name)

    ev = done.evaluation
    best = ev.best
    if ev.task == "classification":
        f1 = "n/a" if best.test_f1 is None else f"{best.test_f1:.4f}"
        print(f"best on validation: {best.model} + {best.probe}, test F1 {f1} at threshold {best.threshold:.3f}")
    else:
        print(best_line(ev))
        for line in decision.language_lines(ev):
            print(line)
    print(f"report: {done.path}")
    print("charts: " + "\n        ".join(str(p) for p in done.figures.values()))


if __name__ == "__main__":
    cli.run(main)

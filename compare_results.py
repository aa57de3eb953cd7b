"""Phase 3b: turn the evaluation results into a markdown comparison report and charts.

    python compare_results.py --dataset uplifting_v5
    python compare_results.py --data-dir ../shared/data/sustainability_real

Reads results/<dataset>_evaluation_results.json (run evaluate.py first). Writes
results/<dataset>_comparison_report.md (overall MAE / RMSE / Spearman with 95% CIs per
model x probe, the best model chosen on validation against the fine-tuned baseline and its
band, per-dimension, per-language, truncation and screening tables, chunked against truncated
and models side by side when those were evaluated, and the learning curve
when train_probes.py ran with --train-fractions), the charts
results/figures/<dataset>_{mae_by_model,dimension_mae_heatmap,screening_curve,learning_curve}.png
(the last two when their results exist), and results/<dataset>_comparison.json, which records
them by name for the report.
A yes/no dataset gets F1 / precision / recall / ROC AUC with CIs and the validation threshold
per probe, F1 per language and for truncated articles, and the chart
results/figures/<dataset>_f1_by_model.png instead.
"""
from study import cli, paths
from study.artifacts import atomic_path
from study.comparison import (BINARY_FIGURES, FIGURES, binary_markdown, comparison_markdown, draw_binary_figures,
                              draw_figures)
from study.config import load_config
from study.data import dataset_name
from study.provenance import record
from study.results import evaluation_sha256, read_evaluation
from study.schemas import ComparisonRecord, legacy_dict, write_record


def main():
    args = cli.parser(__doc__).parse_args()

    cfg = load_config(args.config)
    name = dataset_name(args.dataset, args.data_dir)
    results = read_evaluation(cfg, name)
    report = paths.comparison_markdown(cfg, name)

    binary = results.task == "classification"
    figures = (draw_binary_figures if binary else draw_figures)(cfg, legacy_dict(results))
    captions = BINARY_FIGURES if binary else FIGURES
    links = {captions[n]: p.resolve().relative_to(report.parent.resolve()).as_posix() for n, p in figures.items()}
    with atomic_path(report, "wb") as fh:
        fh.write((binary_markdown if binary else comparison_markdown)(legacy_dict(results), links).encode("utf-8"))
    write_record(paths.comparison_record(cfg, name), ComparisonRecord, {
        "dataset": name, "report": paths.relative(cfg, report), "evaluation_sha256": evaluation_sha256(cfg, name),
        "figures": {n: paths.relative(cfg, p) for n, p in figures.items()}, "provenance": record()})

    best = results.best
    if binary:
        f1 = "n/a" if best.test_f1 is None else f"{best.test_f1:.4f}"
        print(f"best on validation: {best.model} + {best.probe}, test F1 {f1} at threshold {best.threshold:.3f}")
    else:
        print(f"best on validation: {best.model} + {best.probe}, test MAE {best.test_mae:.4f}"
              + (f" ({best.band})" if best.band else ""))
    print(f"report: {report}")
    print("charts: " + "\n        ".join(str(p) for p in figures.values()))


if __name__ == "__main__":
    cli.run(main)

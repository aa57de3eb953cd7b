"""Phase 3b: turn the evaluation results into a markdown comparison report and charts.

    python compare_results.py --dataset uplifting_v5
    python compare_results.py --data-dir ../shared/data/sustainability_real

Reads results/<dataset>_evaluation_results.json (run evaluate.py first). Writes
results/<dataset>_comparison_report.md (overall MAE / RMSE / Spearman with 95% CIs per
model x probe, the best model chosen on validation against the fine-tuned baseline and its
band, per-dimension, per-language and truncation tables) and the charts
results/figures/<dataset>_mae_by_model.png and results/figures/<dataset>_dimension_mae_heatmap.png.
"""
import argparse

from study import cli, plots
from study.analysis import comparison_markdown, comparison_rows, dimension_matrix
from study.artifacts import atomic_path, read_json
from study.config import load_config
from study.data import dataset_name


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common(parser, models=False)
    args = parser.parse_args()

    cfg = load_config(args.config)
    name = dataset_name(args.dataset, args.data_dir)
    results = read_json(cfg.results_path / f"{name}_evaluation_results.json",
                        "evaluation results (run evaluate.py first)")
    figures_dir = cfg.results_path / "figures"
    report = cfg.results_path / f"{name}_comparison_report.md"

    bars = plots.mae_bars(comparison_rows(results), results.get("baseline_mae"),
                          figures_dir / f"{name}_mae_by_model.png",
                          baseline_source=results.get("baseline_source", ""),
                          mean_mae=(results.get("mean_predictor") or {}).get("overall_mae"))
    matrix, rows, dims = dimension_matrix(results)
    heatmap = plots.dimension_heatmap(matrix, rows, dims, figures_dir / f"{name}_dimension_mae_heatmap.png",
                                      title=f"Test MAE per dimension ({name})")
    figures = {"Test MAE by model and probe with 95% CIs": bars.relative_to(report.parent),
               "Test MAE per dimension": heatmap.relative_to(report.parent)}
    with atomic_path(report, "wb") as fh:
        fh.write(comparison_markdown(results, {c: p.as_posix() for c, p in figures.items()}).encode("utf-8"))

    best = results["best"]
    print(f"best on validation: {best['model']} + {best['probe']}, test MAE {best['test_mae']:.4f}"
          + (f" ({best['band']})" if "band" in best else ""))
    print(f"report: {report}")
    print(f"charts: {bars}\n        {heatmap}")


if __name__ == "__main__":
    cli.run(main)

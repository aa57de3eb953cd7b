"""Phase 5: where and how the probes err, from the test predictions written by evaluate.py.

    python analyze_error_distribution.py --dataset uplifting_v5 --models multilingual-MiniLM-L12-v2 bge-m3 --probe mlp
    python analyze_error_distribution.py --data-dir ../shared/data/sustainability_real --probe ridge

Reads results/predictions/<dataset>_<model>_<probe>_test.npz (default models: every one in
results/<dataset>_evaluation_results.json). Writes under results/analysis/ the figures
<dataset>_<probe>_*.png (error histograms and violins, predicted vs true, MAE per dimension,
error vs token count with each model's truncation point, error per language, bias per
true-score bin) and <dataset>_error_summary.json with their numbers and the 20 worst-scored
test articles. Runs on CPU only.
"""
import argparse

from study import cli, plots
from study.analysis import error_summary, load_predictions
from study.artifacts import read_json, write_json
from study.cache import predictions_path
from study.config import load_config
from study.data import dataset_name
from study.errors import StudyError
from study.metrics import article_mae
from study.probes import PROBES


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common(parser, models=False)
    parser.add_argument("--models", nargs="+", help="model variants (default: every one in the evaluation results)")
    parser.add_argument("--probe", default="mlp", choices=PROBES, help="whose predictions to analyse (default mlp)")
    parser.add_argument("--device", default="cpu", help="accepted like the other phases; the analysis runs on CPU")
    args = parser.parse_args()

    cfg = load_config(args.config)
    name = dataset_name(args.dataset, args.data_dir)
    variants = args.models or list(read_json(cfg.results_path / f"{name}_evaluation_results.json",
                                             "evaluation results (run evaluate.py first)")["models"])
    preds = {v: load_predictions(predictions_path(cfg, name, v, args.probe)) for v in variants}
    dims = preds[variants[0]]["dimension_names"]
    for v, p in preds.items():
        if p["dimension_names"] != dims:
            raise StudyError(f"predictions of {v} score dimensions {p['dimension_names']}, those of {variants[0]} {dims}")

    summary = error_summary(name, args.probe, preds, cfg.score_range)
    stats = summary["models"]
    out_dir, tag = cfg.results_path / "analysis", f"{name}, {args.probe} probe"
    png = {name: out_dir / f"{name}_{args.probe}_{name}.png" for name in
           ("error_histograms", "error_violins", "pred_vs_true", "dimension_mae", "error_vs_tokens",
            "error_by_language", "bias_by_score_bin")}
    mae = {v: article_mae(p["y_true"], p["y_pred"]) for v, p in preds.items()}
    plots.error_histograms({v: p["y_pred"] - p["y_true"] for v, p in preds.items()}, png["error_histograms"],
                           title=f"Distribution of errors ({tag})")
    plots.error_violins(mae, png["error_violins"], title=f"Per-article MAE by model ({tag})")
    plots.pred_vs_true({v: (p["y_true"], p["y_pred"]) for v, p in preds.items()}, dims, png["pred_vs_true"],
                       score_range=cfg.score_range, title=f"Predicted against true scores ({tag})")
    plots.dimension_heatmap([[stats[v]["per_dimension_mae"][d] for d in dims] for v in variants], variants, dims,
                            png["dimension_mae"], title=f"Test MAE per dimension ({tag})", ylabel="model")
    plots.error_vs_tokens({v: {"token_counts": p["token_counts"], "mae": mae[v], "max_tokens": p["max_tokens"]}
                           for v, p in preds.items()}, png["error_vs_tokens"],
                          title=f"Error against article length ({tag})")
    plots.error_by_language({v: stats[v]["per_language"] for v in variants}, png["error_by_language"],
                            title=f"Test MAE by language ({tag})")
    plots.bias_by_score_bin({v: stats[v]["score_bins"] for v in variants}, png["bias_by_score_bin"],
                            title=f"Bias by true score: do probes pull extremes toward the mean? ({tag})")
    summary["figures"] = {name: path.relative_to(cfg.results_path).as_posix() for name, path in png.items()}
    out = out_dir / f"{name}_error_summary.json"
    write_json(out, summary)

    print(f"{'model':32s} {'MAE':>7s} {'bias':>7s} {'p90':>6s} {'MAE cut (n)':>14s} {'MAE whole (n)':>14s}")
    for v, s in stats.items():
        cut, whole = s["truncated"], s["not_truncated"]
        print(f"{v:32s} {s['overall_mae']:7.4f} {s['bias']:+7.3f} {s['abs_error_quantiles']['p90']:6.3f} "
              + " ".join(f"{'n/a' if g['mae'] is None else format(g['mae'], '.4f'):>8s} ({g['n']:>3d})" for g in (cut, whole)))
    print(f"figures: {out_dir}/{name}_{args.probe}_*.png ({len(png)})")
    print(f"summary: {out}")


if __name__ == "__main__":
    cli.run(main)

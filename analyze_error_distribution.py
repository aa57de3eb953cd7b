"""Phase 5: where and how the probes err, from the test predictions written by evaluate.py.

    python analyze_error_distribution.py --dataset uplifting_v5
    python analyze_error_distribution.py --dataset uplifting_v5 --models multilingual-MiniLM-L12-v2 bge-m3 --probe ridge
    python analyze_error_distribution.py --data-dir ../shared/data/sustainability_real

Reads results/predictions/<dataset>_<variant>_<probe>_test.npz of the --probe (default: the
probe of the best model chosen on validation, from results/<dataset>_evaluation_results.json)
for every evaluated model (or --models / --max-tokens). Writes under results/analysis/ the
figures <dataset>_<probe>_<figure>.png (error histograms and violins, predicted vs true, MAE
per dimension, error vs token count with each model's truncation point, error per language,
bias per true-score bin) and <dataset>_error_summary.json with their numbers, the figures
by name and the 20 worst-scored test articles. Runs on CPU only.

A yes/no dataset gets instead, per model at its threshold chosen on validation: the
confusion counts (figure <dataset>_<probe>_confusion.png), false positives and negatives per
language, and the 10 most confident false positives and false negatives.
"""
from study import cli, paths
from study.config import PROBES, load_config
from study.data import dataset_name
from study.error_analysis import (binary_error_summary, draw_binary_figures, draw_figures, error_summary,
                                  load_predictions)
from study.errors import StudyError
from study.provenance import record
from study.results import evaluation_sha256, read_evaluation
from study.schemas import ErrorSummary, YesNoErrorSummary, write_record


def main():
    parser = cli.parser(__doc__)
    cli.add_models(parser, "every model in the evaluation results")
    parser.add_argument("--probe", choices=PROBES,
                        help="whose predictions to analyse (default: the best model's probe, chosen on validation)")
    args = parser.parse_args()

    cfg = load_config(args.config)
    cli.hold_results(cfg)   # one run at a time in a results folder
    name = dataset_name(args.dataset, args.data_dir)
    evaluation = read_evaluation(cfg, name)
    probe = args.probe or evaluation.best.probe
    variants = [v.name for v in cfg.select_variants(args.models, args.max_tokens, available=list(evaluation.models))]
    if not variants:
        raise StudyError(f"no evaluated model at --max-tokens {args.max_tokens} in {paths.evaluation(cfg, name)}")
    preds = {v: load_predictions(paths.predictions(cfg, name, v, probe), name) for v in variants}
    dims = preds[variants[0]]["dimension_names"]
    for v, p in preds.items():
        if p["dimension_names"] != dims:
            raise StudyError(f"predictions of {v} score dimensions {p['dimension_names']}, those of {variants[0]} {dims}")

    if evaluation.task == "classification":
        return binary_errors(cfg, name, probe, evaluation, preds)
    summary = error_summary(name, probe, preds, cfg.score_range)
    figures = draw_figures(cfg, summary, preds)
    out = save_summary(cfg, name, ErrorSummary, summary, figures)

    print(f"{probe} probe")
    print(f"{'model':32s} {'MAE':>7s} {'bias':>7s} {'p90':>6s} {'MAE cut (n)':>14s} {'MAE whole (n)':>14s}")
    for v, s in summary["models"].items():
        cut, whole = s["truncated"], s["not_truncated"]
        print(f"{v:32s} {s['overall_mae']:7.4f} {s['bias']:+7.3f} {s['abs_error_quantiles']['p90']:6.3f} "
              + " ".join(f"{'n/a' if g['mae'] is None else format(g['mae'], '.4f'):>8s} ({g['n']:>3d})" for g in (cut, whole)))
    print("figures: " + "\n         ".join(str(p) for p in figures.values()))
    print(f"summary: {out}")


def binary_errors(cfg, name, probe, evaluation, preds):
    """A yes/no dataset: confusion counts, errors per language and the most confident false positives and
    negatives at each model's threshold chosen on validation (the regression figures do not apply)."""
    thresholds = {}
    for v in preds:
        m = evaluation.models[v].probes.get(probe) if v in evaluation.models else None
        if not m:
            raise StudyError(f"the evaluation results hold no {probe} probe for {v}; rerun evaluate.py")
        thresholds[v] = m.threshold
    summary = binary_error_summary(name, probe, preds, thresholds)
    figures = draw_binary_figures(cfg, summary)
    out = save_summary(cfg, name, YesNoErrorSummary, summary, figures)
    print(f"{probe} probe (yes/no labels: error histograms, score bins and MAE figures do not apply)")
    print(f"{'model':32s} {'threshold':>9s} {'TP':>5s} {'FP':>5s} {'FN':>5s} {'TN':>5s}")
    for v, s in summary["models"].items():
        c = s["confusion"]
        print(f"{v:32s} {s['threshold']:9.3f} {c['tp']:5d} {c['fp']:5d} {c['fn']:5d} {c['tn']:5d}")
    print("figures: " + "\n         ".join(str(p) for p in figures.values()))
    print(f"summary: {out}")


def save_summary(cfg, name, model, summary: dict, figures: dict):
    """The error summary with its figures (by name), provenance and the evaluation it was made from; its path."""
    summary.update(figures={n: paths.relative(cfg, p) for n, p in figures.items()}, provenance=record(),
                   evaluation_sha256=evaluation_sha256(cfg, name))
    out = paths.error_summary(cfg, name)
    write_record(out, model, summary)
    return out


if __name__ == "__main__":
    cli.run(main)

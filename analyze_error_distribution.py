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
from study import cli
from study.config import PROBES, load_config
from study.data import dataset_name
from study.error_analysis import Options, analyze
from study.schemas import ErrorSummary


def main():
    parser = cli.parser(__doc__)
    cli.add_models(parser, "every model in the evaluation results")
    parser.add_argument("--probe", choices=PROBES,
                        help="whose predictions to analyse (default: the best model's probe, chosen on validation)")
    args = parser.parse_args()

    cfg = load_config(args.config)
    cli.hold_results(cfg)   # one run at a time in a results folder
    options = Options(models=tuple(args.models) if args.models else None,
                      max_tokens=tuple(args.max_tokens) if args.max_tokens else None, probe=args.probe)
    done = analyze(cfg, dataset_name(args.dataset, args.data_dir), options)
    (said_scores if isinstance(done.record, ErrorSummary) else said_yes_no)(done.record)
    print("figures: " + "\n         ".join(str(p) for p in done.figures.values()))
    print(f"summary: {done.path}")


def said_scores(summary) -> None:
    """Each model's MAE, bias, 90th percentile of |error| and MAE of truncated vs whole articles."""
    print(f"{summary.probe} probe")
    print(f"{'model':32s} {'MAE':>7s} {'bias':>7s} {'p90':>6s} {'MAE cut (n)':>14s} {'MAE whole (n)':>14s}")
    for v, s in summary.models.items():
        print(f"{v:32s} {s.overall_mae:7.4f} {s.bias:+7.3f} {s.abs_error_quantiles.p90:6.3f} "
              + " ".join(f"{'n/a' if g.mae is None else format(g.mae, '.4f'):>8s} ({g.n:>3d})"
                         for g in (s.truncated, s.not_truncated)))


def said_yes_no(summary) -> None:
    """Each model's threshold chosen on validation and its confusion counts on test."""
    print(f"{summary.probe} probe (yes/no labels: error histograms, score bins and MAE figures do not apply)")
    print(f"{'model':32s} {'threshold':>9s} {'TP':>5s} {'FP':>5s} {'FN':>5s} {'TN':>5s}")
    for v, s in summary.models.items():
        c = s.confusion
        print(f"{v:32s} {s.threshold:9.3f} {c.tp:5d} {c.fp:5d} {c.fn:5d} {c.tn:5d}")


if __name__ == "__main__":
    cli.run(main)

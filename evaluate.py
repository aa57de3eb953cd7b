"""Phase 3: score every trained probe on the test split and compare with the fine-tuned model.

    python evaluate.py --dataset uplifting_v5
    python evaluate.py --dataset uplifting_v5 --models bge-m3 --max-tokens 512 8192 --probes ridge mlp
    python evaluate.py --dataset uplifting_v5 --baseline-predictions filters/uplifting/v5/benchmarks/test_set_predictions.json
    python evaluate.py --data-dir ../shared/data/sustainability_real --baseline-mae 0.71
    python evaluate.py --data-dir /tmp/classify-data/sustainability_yes_no --baseline-f1 0.978   # yes/no labels

Reads the probes listed in results/<dataset>_training_summary.json and the test embeddings.
Writes results/<dataset>_evaluation_results.json (layout: study/results.py; MAE, RMSE,
Spearman overall and per dimension, MAE per language and for truncated vs whole articles,
95% bootstrap CIs, each model's probe chosen on validation, the best model + probe chosen
on validation and its success band) and each probe's test predictions under
results/predictions/ for the error analysis. Paired on the same test articles, same probe:
each max-tokens variant against the model's longest (truncation sweep), each chunked
variant <model>-c<N> against <model> truncated at N tokens, and each concatenation a+b
against its parts, where those were evaluated too. Each probe records its `seeds`: the
test MAE (yes/no: F1) of each seed's member alone beside its validation score, with mean, sd and
range; the probe scored is their ensemble. A probe trained with
train_probes.py --train-fractions also gets its `learning_curve`: the test MAE of each subset
probe the training summary records, then the full-data probe's, by training articles. A fine-tuned encoder
(finetune_encoder.py) is scored from its own predictions as the probe kind `finetuned` of its variant, with
the same rules, but never as a frozen model's chosen probe.

Yes/no datasets (probes trained with task classification): F1, precision and recall at each
probe's threshold chosen on validation and ROC AUC, each with a 95% bootstrap CI, per
language and for truncated vs whole articles, the always-yes reference, each model's probe
and the best chosen on validation log-loss, every other probe's paired test F1 difference with the
model's chosen one (`vs_chosen`), and the gap to the fine-tuned classifier's F1
(config / dataset.yaml baseline_f1, or --baseline-f1).
"""
from study import cli, decision, paths
from study.artifacts import staged_writes
from study.config import load_config
from study.data import resolve_dataset
from study.evaluation import BaselineOptions
from study.phase3 import Options, evaluate as evaluate_dataset
from study.results import best_line
from study.tasks import SCORES


def main():
    with staged_writes():   # the predictions and the JSON land together, or (on an error) none of them
        evaluate()


def evaluate():
    parser = cli.parser(__doc__)
    cli.add_models(parser, "every variant in the training summary")
    cli.add_probes(parser)
    parser.add_argument("--baseline-predictions", help="the fine-tuned model's test_set_predictions.json")
    cli.add_teacher(parser)
    parser.add_argument("--baseline-mae", type=cli.positive_float, help="the fine-tuned model's test MAE when config has none")
    parser.add_argument("--baseline-f1", type=cli.unit_float,
                        help="yes/no datasets: the fine-tuned classifier's test F1 when config has none")
    parser.add_argument("--holm", action="store_true",
                        help="record which verdicts Holm's adjustment over every comparison made would change "
                             "(config holm); the verdict words stay the rule's")
    parser.add_argument("--baseline-n", type=cli.positive_int,
                        help="the test articles the single baseline MAE (F1) was measured on (config baseline_n): "
                             "the reading against it then carries both uncertainties; without it, it is descriptive")
    parser.add_argument("--resplits", type=cli.non_negative_int, metavar="K",
                        help="score datasets: fit each probe again on K folds of all labelled articles (train + val + "
                             "test pooled; study/resplits.py), whose pooled paired differences carry the verdicts "
                             "(0: off; default: config resplits, auto: 5 folds below 500 labelled articles)")
    args = parser.parse_args()

    cfg = load_config(args.config)
    cli.hold_results(cfg)   # one run at a time in a results folder
    dataset = resolve_dataset(cfg, args.dataset, args.data_dir, need_folder=False)
    options = Options(models=tuple(args.models) if args.models else None,
                      max_tokens=tuple(args.max_tokens) if args.max_tokens else None,
                      probes=tuple(args.probes) if args.probes else None,
                      baseline=BaselineOptions(mae=args.baseline_mae, predictions=args.baseline_predictions,
                                               n=args.baseline_n, f1=args.baseline_f1),
                      teacher_predictions=args.teacher_predictions, holm=args.holm, resplits=args.resplits)
    done = evaluate_dataset(cfg, dataset, options)
    (said_scores if done.record.task == SCORES.name else said_yes_no)(cfg, done.record)
    print(f"results: {done.path}; Stage 1 bundles (probe + thresholds, for score_articles.py --stage1): "
          f"{len(done.stage1)}, {paths.stage1(cfg, dataset.name, '<variant>', '<probe>').name}")


def said_scores(cfg, ev) -> None:
    """The console's summary of a score evaluation: the constant reference, the best and its verdicts."""
    b = ev.best
    print(f"train-mean predictor MAE {ev.mean_predictor.overall_mae:.4f}")
    print(best_line(ev))
    v = b.verdicts
    print(f"against the train-mean predictor (paired, margin ±{cfg.equivalence_margin:g}): {v.vs_mean_predictor}"
          + (f" — {v.null_result}" if v.null_result else "")
          + (f"; against the fine-tuned baseline ({'paired' if v.vs_baseline.paired else 'unpaired'}): "
             f"{v.vs_baseline.verdict}; band of the 95% CI: {v.band_reading}" if v.vs_baseline else "")
          + f"; chosen on validation among {v.candidates} model + probe pairs")
    for line in decision.language_lines(ev):
        print(line)


def said_yes_no(cfg, ev) -> None:
    """The console's summary of a yes/no evaluation: saying yes to every article, the best and its verdicts."""
    b, ref = ev.best, ev.always_yes
    f = lambda x: "n/a" if x is None else f"{x:.4f}"   # noqa: E731 (F1 is undefined without any yes)
    print(f"yes rate on test {ev.positive_rate:.1%}; saying yes to every article: F1 {f(ref.f1)}")
    print(f"best on validation: {b.model} + {b.probe}: test F1 {f(b.test_f1)} "
          f"[{f(b.f1_ci95[0])}, {f(b.f1_ci95[1])}] at threshold {b.threshold:.3f}"
          + (f"; fine-tuned baseline F1 {ev.baseline_f1:.3f} ({ev.baseline_source}): "
             f"{b.against_baseline}" if b.against_baseline else
             "; no fine-tuned baseline F1 known (config baseline_f1, dataset.yaml or --baseline-f1)"))
    v = b.verdicts
    print(f"against saying yes to every article (paired F1, margin ±{cfg.equivalence_margin_f1:g}): "
          f"{v.vs_always_yes}" + (f" — {v.null_result}" if v.null_result else "")
          + (f"; against the fine-tuned F1 (unpaired): {v.vs_baseline.verdict}" if v.vs_baseline else "")
          + f"; chosen on validation among {v.candidates} model + probe pairs")


if __name__ == "__main__":
    cli.run(main)

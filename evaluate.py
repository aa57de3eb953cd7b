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
from datetime import datetime, timezone

import numpy as np

from study import cli, paths
from study.artifacts import staged_writes
from study.cache import load_checked
from study.config import load_config, task_probes, with_teacher_twins
from study.data import resolve_dataset
from study.errors import StudyError
from study.tasks import ARM, SCORES
from study.tasks import task as task_of
from study.evaluation import (BaselineOptions, add_chunk_differences, add_layer_differences, add_model_differences,
                              add_part_differences, add_probe_differences, add_sweep_differences, add_teacher_differences,
                              add_transfers, teacher_scores,
                              best_verdicts, binary_header, current_data, fine_tuned_baseline, mean_predictor,
                              multiplicity, score_variant, screening_setup, train_mean_predictions,
                              train_median_predictions, trained_task)
from study.provenance import record
from study.results import best_line, best_summary, best_summary_binary
from study.schemas import ScoreEvaluation, TrainingSummary, YesNoEvaluation, read_record, write_record
from study.resplits import add_resplits, resplits_asked
from study.scoring import write_stage1_bundles


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
    summary_path = paths.training_summary(cfg, dataset.name)
    trained = read_record(summary_path, TrainingSummary, "training summary", "run train_probes.py first").models
    variants = with_teacher_twins(cfg.select_variants(args.models, args.max_tokens, available=list(trained)),
                                  trained.__contains__)   # each variant's teacher twin where one was trained
    task = task_of(trained_task(dataset, trained, summary_path))
    probes = task_probes(task.name, args.probes)
    for v in variants:
        if not set(probes) & set(trained.get(v.name, {})):
            raise StudyError(f"no {'/'.join(probes)} probe trained for '{v.name}' in {summary_path} "
                             f"(trained: {', '.join(trained) or 'none'})")
    if not variants:
        raise StudyError(f"no trained variant at --max-tokens {args.max_tokens} in {summary_path}")

    first_test = load_checked(cfg, dataset, variants[0], "test")
    opts = BaselineOptions(mae=args.baseline_mae, predictions=args.baseline_predictions, n=args.baseline_n,
                           f1=args.baseline_f1)
    results = {"dataset": dataset.name, "random_seed": cfg.random_seed, "bootstrap_samples": cfg.bootstrap_samples}
    context = {"test_ids": first_test["ids"], "trained": trained, "data_sha256": current_data(cfg, dataset, variants[0])}
    if task is SCORES:   # the references a score dataset is read against: constants, the fine-tuned model, tiers
        if args.baseline_f1 is not None:
            raise StudyError("--baseline-f1 is for yes/no datasets (task: classification); this one has scores")
        results.update(task=task.name, success_bands=dataset.settings.bands,
                       **mean_predictor(cfg, dataset, variants[0], first_test))
        baseline = fine_tuned_baseline(cfg, dataset, opts, variants[0])
        results.update(baseline["header"])
        results["screening_setup"] = screening_setup(cfg, dataset, results["dimension_names"])
        mean_predictions, train_labels = train_mean_predictions(cfg, dataset, variants[0], first_test)
        context.update(baseline=baseline, teacher=teacher_scores(cfg, dataset, variants[0], args.teacher_predictions), mean_predictions=mean_predictions,
                       median_predictions=train_median_predictions(train_labels, first_test["labels"]),
                       screening_setup=results["screening_setup"],
                       weights=np.array([results["screening_setup"]["weights"][d] for d in results["dimension_names"]]))
    else:                # a yes/no dataset: saying yes to every article, the fine-tuned classifier's F1
        resplits_asked(cfg.resplits, args.resplits, 0, "classification")   # asked for on yes/no labels: a note
        results.update(binary_header(cfg, dataset, variants[0], first_test, opts))
    context["language_counts"] = results["language_counts"]
    arm = [ARM]   # the fine-tuned encoder (finetune_encoder.py) wherever it was trained; --probes picks frozen ones
    results["models"] = {v.name: score_variant(cfg, dataset, v, [p for p in probes + arm if p in trained[v.name]],
                                               context, task) for v in variants}
    if task.has("sweeps"):
        add_sweep_differences(cfg, dataset, results["models"])
        add_layer_differences(cfg, dataset, results["models"])
    add_probe_differences(cfg, dataset, results["models"], task.name)
    if task.has("chunking"):
        add_chunk_differences(cfg, dataset, results["models"])
    if task.has("pairs"):
        add_part_differences(cfg, dataset, results["models"])
    if task is SCORES:
        add_teacher_differences(cfg, dataset, results["models"], trained)
        results["resplits"] = add_resplits(cfg, dataset, variants, results["models"], args.resplits)
        results["best"] = best_summary(results["models"], results["baseline_mae"], dataset.settings.bands)
        add_model_differences(cfg, dataset, results["models"], (results["best"]["model"], results["best"]["probe"]),
                              first_test["languages"])
        add_transfers(cfg, dataset, results["models"], context)
    else:
        results["best"] = best_summary_binary(results["models"], results["baseline_f1"])
    results["best"]["verdicts"] = best_verdicts(cfg, results)
    results["multiplicity"] = multiplicity(results, args.holm or cfg.holm)
    out, ev, stage1 = write_evaluation(cfg, dataset, results, ScoreEvaluation if task is SCORES else YesNoEvaluation)
    (said_scores if task is SCORES else said_yes_no)(cfg, ev)
    print(f"results: {out}; Stage 1 bundles (probe + thresholds, for score_articles.py --stage1): "
          f"{len(stage1)}, {paths.stage1(cfg, dataset.name, '<variant>', '<probe>').name}")


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


def write_evaluation(cfg, dataset, results: dict, model):
    """Stamp the results (time, provenance, the configuration they ran with), write them as `model` and each
    probe's Stage 1 bundle; (path, typed record, bundles)."""
    results["evaluated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results.update(provenance=record(), config=run_config(cfg, dataset))
    out = paths.evaluation(cfg, dataset.name)
    ev = write_record(out, model, results)
    return out, ev, write_stage1_bundles(cfg, ev)


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


def run_config(cfg, dataset) -> dict:
    """The configuration this evaluation ran with: config.yaml's, `probe_seeds` being the seeds this dataset's
    MLP and LightGBM were fitted with (`demo.probe_seeds` for the demo's datasets)."""
    return {**cfg.model_dump(), "probe_seeds": cfg.seeds_for(dataset.path)}


if __name__ == "__main__":
    cli.run(main)

"""Phase 3 as one function: `evaluate(cfg, dataset, options)` scores every trained probe and returns the typed
evaluation record it wrote (study/schemas.py `ScoreEvaluation` / `YesNoEvaluation`) with each probe's Stage 1
bundle. evaluate.py parses its command line into `Options`, calls it inside `staged_writes` and prints; tests call
it directly. The steps are study/evaluation.py's (and study/resplits.py's for the re-splits); their order here is
the evaluation's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from study import paths
from study.cache import load_checked
from study.config import task_probes, with_teacher_twins
from study.errors import StudyError
from study.evaluation import (BaselineOptions, add_chunk_differences, add_layer_differences, add_model_differences,
                              add_part_differences, add_probe_differences, add_sweep_differences,
                              add_teacher_differences, add_transfers, best_verdicts, binary_header, current_data,
                              fine_tuned_baseline, mean_predictor, multiplicity, score_variant, screening_setup,
                              teacher_scores, train_mean_predictions, train_median_predictions, trained_task)
from study.provenance import record
from study.resplits import add_resplits, resplits_asked
from study.results import best_summary, best_summary_binary
from study.schemas import ScoreEvaluation, TrainingSummary, YesNoEvaluation, read_record, write_record
from study.scoring import write_stage1_bundles
from study.tasks import ARM, SCORES
from study.tasks import task as task_of


@dataclass(frozen=True)
class Options:
    """What evaluate.py's command line chooses (None: the default it documents)."""
    models: tuple[str, ...] | None = None       # --models: variants (default: every trained one)
    max_tokens: tuple[int, ...] | None = None   # --max-tokens
    probes: tuple[str, ...] | None = None       # --probes (default: the task's)
    baseline: BaselineOptions = field(default_factory=BaselineOptions)
    teacher_predictions: str | None = None      # --teacher-predictions
    holm: bool = False                          # --holm (or config holm)
    resplits: int | None = None                 # --resplits K (default: config resplits)


@dataclass(frozen=True)
class Evaluated:
    """What phase 3 wrote: the evaluation JSON's path, its typed record, the Stage 1 bundles."""
    path: Path
    record: ScoreEvaluation | YesNoEvaluation
    stage1: list[Path]


def evaluate(cfg, dataset, options: Options = Options()) -> Evaluated:
    """Phase 3 of one dataset: every trained probe scored on the test split and compared by the study's rules,
    written as the evaluation JSON (and predictions, Stage 1 bundles); the caller stages the writes."""
    summary_path = paths.training_summary(cfg, dataset.name)
    trained = read_record(summary_path, TrainingSummary, "training summary", "run train_probes.py first").models
    variants = with_teacher_twins(cfg.select_variants(options.models, options.max_tokens,
                                                      available=list(trained)),
                                  trained.__contains__)   # each variant's teacher twin where one was trained
    task = task_of(trained_task(dataset, trained, summary_path))
    probes = task_probes(task.name, list(options.probes) if options.probes else None)
    for v in variants:
        if not set(probes) & set(trained.get(v.name, {})):
            raise StudyError(f"no {'/'.join(probes)} probe trained for '{v.name}' in {summary_path} "
                             f"(trained: {', '.join(trained) or 'none'})")
    if not variants:
        raise StudyError(f"no trained variant at --max-tokens {' '.join(map(str, options.max_tokens or ()))} in {summary_path}")

    first_test = load_checked(cfg, dataset, variants[0], "test")
    results = {"dataset": dataset.name, "random_seed": cfg.random_seed, "bootstrap_samples": cfg.bootstrap_samples}
    context = {"test_ids": first_test["ids"], "trained": trained, "data_sha256": current_data(cfg, dataset, variants[0])}
    if task is SCORES:   # the references a score dataset is read against: constants, the fine-tuned model, tiers
        if options.baseline.f1 is not None:
            raise StudyError("--baseline-f1 is for yes/no datasets (task: classification); this one has scores")
        results.update(task=task.name, success_bands=dataset.settings.bands,
                       **mean_predictor(cfg, dataset, variants[0], first_test))
        baseline = fine_tuned_baseline(cfg, dataset, options.baseline, variants[0])
        results.update(baseline["header"])
        results["screening_setup"] = setup = screening_setup(cfg, dataset, results["dimension_names"])
        mean_predictions, train_labels = train_mean_predictions(cfg, dataset, variants[0], first_test)
        context.update(baseline=baseline, teacher=teacher_scores(cfg, dataset, variants[0], options.teacher_predictions),
                       mean_predictions=mean_predictions,
                       median_predictions=train_median_predictions(train_labels, first_test["labels"]),
                       screening_setup=setup,
                       weights=np.array([setup["weights"][d] for d in results["dimension_names"]]))
    else:                # a yes/no dataset: saying yes to every article, the fine-tuned classifier's F1
        resplits_asked(cfg.resplits, options.resplits, 0, "classification")   # asked for on yes/no labels: a note
        results.update(binary_header(cfg, dataset, variants[0], first_test, options.baseline))
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
        results["resplits"] = add_resplits(cfg, dataset, variants, results["models"], options.resplits)
        results["best"] = best_summary(results["models"], results["baseline_mae"], dataset.settings.bands)
        add_model_differences(cfg, dataset, results["models"], (results["best"]["model"], results["best"]["probe"]),
                              first_test["languages"])
        add_transfers(cfg, dataset, results["models"], context)
    else:
        results["best"] = best_summary_binary(results["models"], results["baseline_f1"])
    results["best"]["verdicts"] = best_verdicts(cfg, results)
    results["multiplicity"] = multiplicity(results, options.holm or cfg.holm)
    return _written(cfg, dataset, results, ScoreEvaluation if task is SCORES else YesNoEvaluation)


def _written(cfg, dataset, results: dict, model) -> Evaluated:
    """Stamp the results (time, provenance, the configuration they ran with), write them as `model` and each
    probe's Stage 1 bundle."""
    results["evaluated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results.update(provenance=record(), config=run_config(cfg, dataset))
    out = paths.evaluation(cfg, dataset.name)
    ev = write_record(out, model, results)
    return Evaluated(out, ev, write_stage1_bundles(cfg, ev))


def run_config(cfg, dataset) -> dict:
    """The configuration this evaluation ran with: config.yaml's, `probe_seeds` being the seeds this dataset's
    MLP and LightGBM were fitted with (`demo.probe_seeds` for the demo's datasets)."""
    return {**cfg.model_dump(), "probe_seeds": cfg.seeds_for(dataset.path)}

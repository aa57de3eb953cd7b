"""The task axis, declared once: what differs between score datasets and yes/no datasets.

A dataset's `task` (config.yaml or its dataset.yaml) is `regression` (0-10 scores on several
dimensions) or `classification` (one yes/no label). Everything that follows from it is declared
here and looked up by the phases: its probes, the validation score that chooses, the headline
metric, which analyses apply and which command-line options make sense. Only the mathematics
stays separate (the metric functions in study/metrics.py, the probe classes in study/probes.py).
"""
from __future__ import annotations

from dataclasses import dataclass

# the probe kind of the fine-tuned encoder arm (finetune_encoder.py): scored like a probe, never a frozen choice
ARM = "finetuned"

# every analysis a task may have (a task lists those that apply to it)
ANALYSES = ("bands", "tiers", "screening", "sweeps", "chunking", "pairs", "learning_curve", "error_figures",
            "confusion")


@dataclass(frozen=True)
class Metric:
    name: str              # as printed: "test MAE", "test F1"
    field: str             # the probe record's attribute (study/schemas.py)
    ci_field: str          # its 95% CI
    lower_is_better: bool


@dataclass(frozen=True)
class Reference:
    """The constant a task's probe must beat to have learned anything."""
    field: str             # the probe record's paired comparison with it, and the verdict's name in `best.verdicts`
    words: str             # in words (study/verdicts.py CONSTANT, ALWAYS_YES)


@dataclass(frozen=True)
class Task:
    name: str                       # the `task` value in config.yaml and in the results
    label: str                      # in words
    probes: tuple[str, ...]         # in tie-break order
    validation_field: str           # what chooses on validation (lower is better for both tasks)
    validation_label: str
    validation_fields: tuple[str, ...]     # what a probe record carries from validation (the first chooses)
    headline: Metric
    reference: Reference
    margin_setting: str                    # the config setting of its equivalence margin
    baseline_field: str                    # the evaluation's fine-tuned baseline figure (of the headline metric)
    analyses: frozenset[str]
    options: tuple[tuple[str, str], ...]   # run_all options that only this task takes: (option, attribute)
    report_sections: tuple[str, ...]       # the report's sections in order (methods of study/report.py Report)

    def has(self, analysis: str) -> bool:
        if analysis not in ANALYSES:
            raise ValueError(f"unknown analysis {analysis!r}; known: {', '.join(ANALYSES)}")
        return analysis in self.analyses

    @property
    def better(self) -> str:
        """Which way the headline metric is better, as study/verdicts.py reads a difference: 'lower' or 'higher'."""
        return "lower" if self.headline.lower_is_better else "higher"


SCORES = Task(name="regression", label="scores", probes=("ridge", "mlp", "lightgbm"),
              validation_field="val_mae", validation_label="validation MAE", validation_fields=("val_mae",),
              headline=Metric("test MAE", "overall_mae", "mae_ci95", lower_is_better=True),
              reference=Reference("vs_median_predictor", "a constant (the training median)"),
              margin_setting="equivalence_margin", baseline_field="baseline_mae",
              analyses=frozenset({"bands", "tiers", "screening", "sweeps", "chunking", "pairs", "learning_curve",
                                  "error_figures"}),
              options=(("--train-fractions", "train_fractions"), ("--baseline-mae", "baseline_mae"),
                       ("--baseline-predictions", "baseline_predictions"),
                       ("--teacher-predictions", "teacher_predictions")),
              report_sections=("decision", "leaderboard", "q_languages", "q_bge", "q_truncation", "q_probes", "q_speed",
                               "q_screening", "q_pairs", "q_learning_curve", "limitations", "annex"))

YES_NO = Task(name="classification", label="yes/no labels", probes=("logistic", "mlp", "lightgbm"),
              validation_field="val_log_loss", validation_label="validation log-loss",
              validation_fields=("val_log_loss", "val_f1"),
              headline=Metric("test F1", "f1", "f1_ci95", lower_is_better=False),
              reference=Reference("vs_always_yes", "saying yes to every article"),
              margin_setting="equivalence_margin_f1", baseline_field="baseline_f1",
              analyses=frozenset({"confusion"}),
              options=(("--baseline-f1", "baseline_f1"),),
              report_sections=("decision", "leaderboard", "q_probes", "q_speed", "limitations", "annex"))

TASKS = {t.name: t for t in (SCORES, YES_NO)}


def task(name: str | None) -> Task:
    """The Task of a `task` value (None, as in older records, means regression)."""
    return TASKS[name or "regression"]

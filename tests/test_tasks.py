"""The task axis (study/tasks.py) is the one place the phases learn what a task takes."""
import pytest

import run_all
from study.config import PROBES, ProbeMethods, task_probes
from study.errors import StudyError
from study.tasks import ANALYSES, TASKS, task


def test_every_task_declares_known_probes_analyses_and_real_options():
    # each task's probes in tie-break order, every probe name in one task or both, each with its config section
    assert TASKS["regression"].probes == ("ridge", "mlp", "lightgbm")
    assert TASKS["classification"].probes == ("logistic", "mlp", "lightgbm")
    assert set(PROBES) == {p for t in TASKS.values() for p in t.probes} == set(ProbeMethods.model_fields)
    for t in TASKS.values():
        assert task_probes(t.name) == list(t.probes) and task_probes(t.name, ["mlp"]) == ["mlp"]
        assert t.analyses <= set(ANALYSES)
    with pytest.raises(StudyError, match="probe ridge does not fit a classification dataset; its probes: logistic"):
        task_probes("classification", ["mlp", "ridge"])
    # run_all drops exactly the options the other task declares
    assert {(o, a, t) for o, a, t in run_all.TASK_OPTIONS} == {
        ("--train-fractions", "train_fractions", "regression"), ("--baseline-mae", "baseline_mae", "regression"),
        ("--baseline-predictions", "baseline_predictions", "regression"),
        ("--teacher-predictions", "teacher_predictions", "regression"),
        ("--baseline-f1", "baseline_f1", "classification")}


def test_scores_and_yes_no_differ_where_the_mathematics_does():
    scores, yes_no = task("regression"), task("classification")
    assert task(None) is scores
    assert scores.headline.lower_is_better and not yes_no.headline.lower_is_better
    assert scores.has("screening") and not yes_no.has("screening")
    assert scores.has("learning_curve") and not yes_no.has("learning_curve")
    with pytest.raises(ValueError, match="unknown analysis"):
        scores.has("screenning")

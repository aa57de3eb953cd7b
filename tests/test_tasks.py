"""The task axis (study/tasks.py) is the one place the phases learn what a task takes."""
import pytest

import run_all
from study.config import PROBES, TASK_PROBES
from study.tasks import ANALYSES, TASKS, task


def test_every_task_declares_known_probes_analyses_and_real_options():
    for t in TASKS.values():
        assert TASK_PROBES[t.name] == t.probes and set(t.probes) <= set(PROBES)
        assert t.analyses <= set(ANALYSES)
    # run_all drops exactly the options the other task declares
    assert {(o, a, t) for o, a, t in run_all.TASK_OPTIONS} == {
        ("--train-fractions", "train_fractions", "regression"), ("--baseline-mae", "baseline_mae", "regression"),
        ("--baseline-predictions", "baseline_predictions", "regression"),
        ("--baseline-f1", "baseline_f1", "classification")}


def test_scores_and_yes_no_differ_where_the_mathematics_does():
    scores, yes_no = task("regression"), task("classification")
    assert task(None) is scores
    assert scores.headline.lower_is_better and not yes_no.headline.lower_is_better
    assert scores.has("screening") and not yes_no.has("screening")
    assert scores.has("learning_curve") and not yes_no.has("learning_curve")
    with pytest.raises(ValueError, match="unknown analysis"):
        scores.has("screenning")

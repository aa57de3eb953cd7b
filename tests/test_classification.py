"""Yes/no labels (task: classification): probes, metrics, validation and the phase chain."""
import json
import pickle

import numpy as np
import pytest
import yaml
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from conftest import TINY, call, write_config
from study import paths
from study.artifacts import load_pickle
from study.config import load_config
from study.data import load_split, resolve_dataset
from study.demo import write_demo_yes_no
from study.metrics import binary_scores, bootstrap_ci, bootstrap_statistic, score_binary
from study.probes import (LightGBMClassifierProbe, LogisticProbe, MLPClassifierProbe, best_f1_threshold,
                          probe_from_bundle)


def separable(n=400, d=12, seed=0, rate=0.3):
    """(X, y): y = 1 where a noisy linear score is in its top `rate` share."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    s = X[:, 0] + 0.5 * X[:, 1] + 0.6 * rng.normal(size=n)
    return X, (s >= np.quantile(s, 1 - rate)).astype(int)


def test_threshold_maximises_f1_on_validation_by_brute_force():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p = np.round(np.clip(0.35 * y + rng.random(200) * 0.7, 0, 1), 2)   # ties on purpose
    threshold, f1 = best_f1_threshold(y, p)
    brute = max(f1_score(y, p >= t) for t in np.unique(p))
    assert f1 == pytest.approx(brute) and f1_score(y, p >= threshold) == pytest.approx(brute)
    assert best_f1_threshold([0, 1, 1, 0], [0.1, 0.9, 0.6, 0.6]) == (pytest.approx(0.35), pytest.approx(0.8))


@pytest.mark.parametrize("make", [lambda: LogisticProbe(Cs=(0.01, 0.1, 1.0)),
                                  lambda: MLPClassifierProbe(hidden_sizes=(32,), epochs=30, patience=5),
                                  lambda: LightGBMClassifierProbe(params={"n_estimators": 100, "n_jobs": 1,
                                                                           "min_child_samples": 5})],
                         ids=["logistic", "mlp", "lightgbm"])
def test_classifier_probes_choose_on_validation_reload_and_repeat(make):
    X, y = separable()
    Xtr, ytr, Xv, yv, Xte = X[:250], y[:250], X[250:330], y[250:330], X[330:]
    probe = make().fit(Xtr, ytr, Xv, yv)
    # the threshold is the one that maximises F1 on the validation rows, computed independently
    pv = probe.predict_proba(Xv)[:, 1]
    assert probe.val_f1_ == pytest.approx(max(f1_score(yv, pv >= t) for t in np.unique(pv)))
    assert f1_score(yv, pv >= probe.threshold_) == pytest.approx(probe.val_f1_)
    assert np.array_equal(probe.predict(Xte), (probe.predict_proba(Xte)[:, 1] >= probe.threshold_).astype(int))
    assert probe.val_f1_ > 0.6
    # the bundle holds plain objects only and predicts the same
    from study.artifacts import PICKLE_MAX_NODES, _PlainUnpickler, _plain   # what load_pickle does, minus the file
    import io
    bundle = _plain(_PlainUnpickler(io.BytesIO(pickle.dumps(probe.to_bundle({"dataset": "x"})))).load(),
                    [PICKLE_MAX_NODES])
    assert bundle["threshold"] == probe.threshold_ and bundle["metadata"]["task"] == "classification"
    again = probe_from_bundle(bundle)
    assert np.array_equal(again.predict_proba(Xte), probe.predict_proba(Xte))
    # the same seed gives the same probe, bit for bit
    assert np.array_equal(make().fit(Xtr, ytr, Xv, yv).predict_proba(Xte), probe.predict_proba(Xte))


def test_logistic_picks_C_by_validation_log_loss():
    X, y = separable(seed=1)
    probe = LogisticProbe(Cs=(1e-4, 0.1, 100.0)).fit(X[:250], y[:250], X[250:], y[250:])
    losses = probe.val_log_loss_by_C_
    assert probe.C_ == min(losses, key=losses.get) and probe.val_log_loss_ == pytest.approx(losses[probe.C_])


def test_binary_scores_match_sklearn_on_a_hand_made_case():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 1])
    p = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.4, 0.6, 0.6, 0.5])
    s = binary_scores(y, p, 0.5)
    yhat = p >= 0.5   # tp 4 (0.9 0.8 0.6 0.5), fp 2 (0.7 0.6), fn 1 (0.3)
    assert s["confusion"] == {"tp": 4, "fp": 2, "fn": 1, "tn": 3}
    assert s["f1"] == pytest.approx(f1_score(y, yhat)) == pytest.approx(8 / 11)
    assert s["precision"] == pytest.approx(precision_score(y, yhat)) == pytest.approx(4 / 6)
    assert s["recall"] == pytest.approx(recall_score(y, yhat)) == pytest.approx(4 / 5)
    assert s["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert np.isnan(binary_scores([1, 1], [0.2, 0.9], 0.5)["roc_auc"])
    # nothing to find and nothing predicted: F1 is undefined (n/a), not the 0 of sklearn's zero_division
    assert np.isnan(binary_scores([0, 0], [0.1, 0.2], 0.5)["f1"])
    out = score_binary(y, p, 0.5, languages=np.array(["en"] * 8 + ["af"] * 2), token_counts=np.zeros(10),
                       max_tokens=5, n_boot=50, seed=0)
    assert out["per_language"]["af"] == {"n": 2, "positives": 1, "f1": pytest.approx(f1_score(y[8:], yhat[8:])),
                                         "precision": pytest.approx(precision_score(y[8:], yhat[8:])),
                                         "recall": pytest.approx(recall_score(y[8:], yhat[8:]))}
    assert out["truncation"]["truncated"] == {"n": 0, "positives": 0, "f1": None}


def test_bootstrap_cis_resample_articles_like_the_mae_ci():
    rng = np.random.default_rng(5)
    v = rng.random(80)
    assert bootstrap_statistic(lambda i: v[i].mean(), 80, 200, 9) == bootstrap_ci(v, 200, 9)
    y = rng.integers(0, 2, 150)
    p = np.clip(0.3 * y + rng.random(150) * 0.7, 0, 1)
    out = score_binary(y, p, 0.5, languages=np.array(["en"] * 100 + ["nl"] * 50), token_counts=np.arange(150),
                       max_tokens=120, n_boot=300, seed=4)
    draws = np.random.default_rng(4)
    f1s = [f1_score(y[i], p[i] >= 0.5) for i in (draws.integers(0, 150, 150) for _ in range(300))]
    assert out["f1_ci95"] == pytest.approx([np.quantile(f1s, 0.025), np.quantile(f1s, 0.975)])
    assert out["per_language"]["nl"]["f1"] == pytest.approx(f1_score(y[100:], p[100:] >= 0.5))
    assert out["truncation"]["truncated"]["n"] == 29


def test_labels_not_0_or_1_are_rejected_with_file_line_and_field(tmp_path, tiny_config):
    folder = write_demo_yes_no(tmp_path / "yn", n_train=20, n_val=10, n_test=10)
    lines = (folder / "val.jsonl").read_text().splitlines()
    bad = json.loads(lines[3])
    bad["labels"] = [0.5]
    lines[3] = json.dumps(bad)
    (folder / "val.jsonl").write_text("\n".join(lines) + "\n")
    cfg = load_config(tiny_config)
    dataset = resolve_dataset(cfg, None, str(folder))
    assert dataset.task == "classification"
    with pytest.raises(Exception) as exc:
        load_split(dataset, "val", cfg.score_range)
    assert f"{folder / 'val.jsonl'}:4: field 'labels' must be [0] or [1]" in str(exc.value)


def test_config_schema_says_what_a_classification_dataset_needs(tmp_path, tiny_model):
    model = {"tiny": {"source": "sentence-transformers", "model_name": str(tiny_model), "dimensions": 32,
                      "max_tokens": 64}}
    good = {"yn": {"path": "yn", "dimensions": 1, "task": "classification", "baseline_f1": 0.978}}
    cfg = load_config(write_config(tmp_path / "a", model, datasets=good))
    assert cfg.datasets["yn"].task == "classification" and cfg.datasets["yn"].baseline_mae is None
    for entry, says in [({"baseline_mae": 0.5}, "baseline_mae has no meaning"), ({"dimensions": 3}, "dimensions must be 1"),
                        ({"baseline_f1": None}, "baseline_f1 (the fine-tuned classifier's test F1")]:
        bad = {"yn": {**good["yn"], **entry}}
        with pytest.raises(Exception, match=r"(?s)" + says.replace("(", r"\(")):
            load_config(write_config(tmp_path / "b", model, datasets=bad))
    with pytest.raises(Exception, match="baseline_mae is required for a regression dataset"):
        load_config(write_config(tmp_path / "c", model, datasets={"r": {"path": "r", "dimensions": 2}}))




def docx_text(path) -> str:
    import docx

    doc = docx.Document(str(path))
    cells = [c.text for t in doc.tables for row in t.rows for c in row.cells]
    return "\n".join([p.text for p in doc.paragraphs] + cells)


@pytest.mark.slow   # whole phases in a chain
def test_the_phase_chain_on_a_yes_no_dataset_reports_classification_only(yes_no_study_copy, tmp_path):
    cfg_path, data, _ = yes_no_study_copy   # phases 1-3 of the session's yes/no study, evaluated again here
    cfg = load_config(cfg_path)
    common = ["--config", cfg_path, "--data-dir", data]
    for script, extra in [("evaluate", ["--baseline-f1", "0.9"]), ("compare_results", []),
                          ("analyze_error_distribution", []), ("generate_report", ["--output", tmp_path / "r.docx"])]:
        assert call(script, *common, *extra) == 0, script
    ev = json.loads(paths.evaluation(cfg, "demo_yes_no").read_text())
    assert ev["task"] == "classification" and set(ev["models"]["tiny"]["probes"]) == {"logistic", "mlp", "lightgbm"}
    assert "screening_setup" not in ev and "mean_predictor" not in ev
    # the evaluation's numbers are the ones sklearn gives on the saved test probabilities, at the saved threshold
    for kind, m in ev["models"]["tiny"]["probes"].items():
        pred = np.load(paths.predictions(cfg, "demo_yes_no", "tiny", kind))
        y, p = pred["y_true"].ravel(), pred["y_pred"].ravel()
        assert float(pred["threshold"]) == m["threshold"]
        assert m["f1"] == pytest.approx(f1_score(y, p >= m["threshold"]))
        assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
        bundle = load_pickle(paths.probe(cfg, "demo_yes_no", "tiny", kind))
        assert bundle["threshold"] == m["threshold"] and bundle["metadata"]["task"] == "classification"
    best = ev["best"]
    assert best["chosen_by"] == "validation log-loss"
    assert best["test_f1"] == ev["models"][best["model"]]["probes"][best["probe"]]["f1"]
    assert best["gap_to_baseline"] == pytest.approx(best["test_f1"] - 0.9)
    md = paths.comparison_markdown(cfg, "demo_yes_no").read_text()
    assert "F1 [95% CI]" in md and "Threshold" in md and "MAE" not in md
    errors = json.loads(paths.error_summary(cfg, "demo_yes_no").read_text())
    assert set(errors["figures"]) == {"confusion"}
    text = docx_text(tmp_path / "r.docx")
    assert "one 0/1 label" in text and "ROC AUC" in text and "Confusion counts" in text
    # the yes/no MLP is trained on binary cross-entropy: its settings say so, not the score MLP's loss
    assert "loss binary cross-entropy" in text and "loss l1" not in text
    for regression_only in ("Can a probe screen", "Success bands", "Does bge-m3", "train-mean", "Tier confusion",
                            "Test MAE", "screening_recall", "alphas"):
        assert regression_only not in text, regression_only
    # with a speed benchmark the yes/no report answers the speed row too (and draws no MAE chart)
    from records import benchmark_record, stage1_cost, timed_model
    bench = benchmark_record({"tiny": timed_model(50.0, "float32", 16, 500.0)},
                             {"tiny": {p: stage1_cost(2.0) for p in ev["models"]["tiny"]["probes"]}}, dataset="demo_yes_no",
                             device="cuda", fine_tuned_ms_per_article=[20.0, 50.0])
    paths.benchmark(cfg, "demo_yes_no").parent.mkdir(parents=True, exist_ok=True)
    paths.benchmark(cfg, "demo_yes_no").write_text(json.dumps(bench))
    assert call("generate_report", *common, "--output", tmp_path / "r2.docx") == 0
    text = docx_text(tmp_path / "r2.docx")
    assert "Speed comparison unavailable" not in text and "10–25 times faster" in text
    # a regression probe name on a yes/no dataset is a one-line error
    assert call("train_probes", *common, "--probes", "ridge") == 2


def test_a_yes_no_run_is_reproducible_with_the_seed(tmp_path, tiny_model, yes_no_study):
    """Phases 1-3 again from scratch on the same data with the same seed give the session study's numbers."""
    data = write_demo_yes_no(tmp_path / "demo_yes_no", n_train=120, n_val=50, n_test=60)
    out = []
    for cfg_path in (yes_no_study[0], write_config(tmp_path, {"tiny": {**TINY, "model_name": str(tiny_model)}})):
        if cfg_path != yes_no_study[0]:
            for script in ("embed_articles", "train_probes", "evaluate"):
                assert call(script, "--config", cfg_path, "--data-dir", data) == 0
        ev = json.loads(paths.evaluation(load_config(cfg_path), "demo_yes_no").read_text())
        out.append({p: {k: m[k] for k in ("f1", "f1_ci95", "roc_auc", "threshold", "val_log_loss")}
                    for p, m in ev["models"]["tiny"]["probes"].items()})
    assert out[0] == out[1] and len(out[0]) == 3


def test_derive_yes_no_labels_by_the_mean_score_and_declares_the_task(tmp_path, tiny_config):
    from study.demo import write_demo_dataset

    scored = write_demo_dataset(tmp_path / "scored", n_train=30, n_val=10, n_test=10)
    out = tmp_path / "derived" / "yn"
    assert call("derive_yes_no", "--data-dir", scored, "--min-score", "4.5", "--baseline-f1", "0.978",
                "--out", out) == 0
    for split in ("train", "val", "test"):
        src = [json.loads(line) for line in (scored / f"{split}.jsonl").read_text().splitlines()]
        got = [json.loads(line) for line in (out / f"{split}.jsonl").read_text().splitlines()]
        assert [g["labels"] for g in got] == [[int(np.mean(s["labels"]) >= 4.5)] for s in src]
        assert all(g["dimension_names"] == ["yes"] and g["content"] == s["content"] for g, s in zip(got, src))
    spec = yaml.safe_load((out / "dataset.yaml").read_text())
    assert spec["task"] == "classification" and spec["baseline_f1"] == 0.978
    dataset = resolve_dataset(load_config(tiny_config), None, str(out))
    assert (dataset.task, dataset.baseline_f1, dataset.name) == ("classification", 0.978, "yn")


def test_a_bad_dataset_yaml_is_a_one_line_error(tmp_path, tiny_config, capsys):
    folder = write_demo_yes_no(tmp_path / "yn", n_train=20, n_val=10, n_test=10)
    (folder / "dataset.yaml").write_text("task: yesno\n")
    assert call("embed_articles", "--config", tiny_config, "--data-dir", folder) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {folder / 'dataset.yaml'}: key 'task'")

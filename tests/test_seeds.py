"""Seeds through the phases: the saved MLP / LightGBM is the seed ensemble, the evaluation JSON holds each
member's scores and their spread, yes/no probes are compared with the chosen one on paired F1, and degenerate
fits warn on the console and in the training summary."""
import json

import numpy as np
import pytest
import yaml

from conftest import TINY, call, write_config
from study import paths
from study.artifacts import load_pickle
from study.config import load_config
from study.demo import write_demo_yes_no
from study.metrics import binary_scores, bootstrap_statistic
from study.probes import best_f1_threshold, probe_from_bundle
from study.verdicts import verdict



def _cache(cfg, ds, split):
    return np.load(paths.embedding_cache(cfg, ds, "tiny", split))


def _member_outputs(cfg, ds, kind, split):
    probe = probe_from_bundle(load_pickle(paths.probe(cfg, ds, "tiny", kind)))
    return probe.member_outputs(_cache(cfg, ds, split)["embeddings"])


def _check_spread(rec):
    test = np.array(rec["test"], dtype=float)
    assert rec["test_spread"]["mean"] == pytest.approx(test.mean())
    assert rec["test_spread"]["sd"] == pytest.approx(np.std(test, ddof=1))
    assert (rec["test_spread"]["min"], rec["test_spread"]["max"]) == (test.min(), test.max())
    assert rec["val_spread"]["sd"] == pytest.approx(np.std(rec["val"], ddof=1))


def test_score_probes_are_seed_ensembles_with_each_members_test_mae(tmp_path, tiny_model, demo_dir, capsys):
    cfg_path = write_config(tmp_path, {"tiny": {**TINY, "model_name": str(tiny_model)}}, probe_seeds=2)
    cfg = load_config(cfg_path)
    common = ["--config", cfg_path, "--data-dir", demo_dir]
    for script in ("embed_articles", "train_probes", "evaluate"):
        assert call(script, *common) == 0, script
    out = capsys.readouterr().out
    assert "ensemble of 2 seeds; each seed alone" in out and "2 seeds, each alone: test MAE" in out
    ev = json.loads(paths.evaluation(cfg, "demo_ds").read_text())
    assert ev["config"]["probe_seeds"] == 2
    summary = json.loads(paths.training_summary(cfg, "demo_ds").read_text())["models"]["tiny"]
    test = _cache(cfg, "demo_ds", "test")
    Y = test["labels"]
    for kind, m in ev["models"]["tiny"]["probes"].items():
        rec = m["seeds"]
        assert rec["val"] == summary[kind]["seeds"]["val"] and rec["test_metric"] == "test MAE"
        if kind == "ridge":
            assert rec["stochastic"] is False and rec["n"] == 1 and rec["test"] == [m["overall_mae"]]
            assert rec["test_spread"]["sd"] is None
            continue
        assert rec["stochastic"] and rec["n"] == 2 and rec["seeds"] == [42, 43]
        members = _member_outputs(cfg, "demo_ds", kind, "test")
        assert rec["test"] == pytest.approx([np.abs(Y - P).mean() for P in members], rel=1e-6)
        # the probe scored on test is the ensemble: its MAE is that of the members' mean
        assert m["overall_mae"] == pytest.approx(np.abs(Y - np.mean(members, axis=0)).mean(), rel=1e-6)
        assert rec["test"][0] != rec["test"][1]
        _check_spread(rec)
        assert len(m["selected"]["members"]) == 2


def test_yes_no_probes_carry_seeds_and_a_paired_f1_comparison_with_the_chosen_one(tmp_path, tiny_model):
    data = write_demo_yes_no(tmp_path / "yn", n_train=140, n_val=60, n_test=80)
    cfg_path = write_config(tmp_path, {"tiny": {**TINY, "model_name": str(tiny_model)}}, probe_seeds=2)
    cfg = load_config(cfg_path)
    for script in ("embed_articles", "train_probes", "evaluate"):
        assert call(script, "--config", cfg_path, "--data-dir", data) == 0, script
    ev = json.loads(paths.evaluation(cfg, "yn").read_text())
    entry = ev["models"]["tiny"]
    chosen = entry["chosen_probe"]
    val, test = _cache(cfg, "yn", "val"), _cache(cfg, "yn", "test")
    y = test["labels"].ravel().astype(bool)

    predictions = {}   # each probe's file read once (the bootstrap below asks for it 2 x 200 times)
    for kind in entry["probes"]:
        with np.load(paths.predictions(cfg, "yn", "tiny", kind)) as pred:
            predictions[kind] = pred["y_pred"].ravel(), float(pred["threshold"])

    def f1_of(kind, idx):
        p, threshold = predictions[kind]
        return binary_scores(y[idx], p[idx], threshold)["f1"]

    assert "vs_chosen" not in entry["probes"][chosen]
    for kind, m in entry["probes"].items():
        if kind != chosen:   # this probe's test F1 minus the chosen one's, on the same resamples
            vs = m["vs_chosen"]
            every = np.arange(len(y))
            assert vs["chosen"] == chosen and vs["better"] == "higher" and vs["paired"] is True
            assert vs["difference"] == pytest.approx(f1_of(kind, every) - f1_of(chosen, every))
            ci = bootstrap_statistic(lambda i: f1_of(kind, i) - f1_of(chosen, i), len(y), cfg.bootstrap_samples,
                                     cfg.random_seed)
            assert vs["ci95"] == pytest.approx(list(ci))
            assert vs["verdict"] == verdict(ci, cfg.equivalence_margin_f1, "higher")
        rec = m["seeds"]
        assert rec["test_metric"] == "test F1" and rec["val_metric"] == "validation log-loss"
        if kind == "logistic":
            assert rec["stochastic"] is False and rec["test"] == [pytest.approx(m["f1"])]
            continue
        assert rec["n"] == 2 and rec["seeds"] == [42, 43]
        # each member alone: F1 at the threshold that maximises its own validation F1
        thresholds = [best_f1_threshold(val["labels"], p)[0] for p in _member_outputs(cfg, "yn", kind, "val")]
        expected = [binary_scores(y, p, t)["f1"] for p, t in zip(_member_outputs(cfg, "yn", kind, "test"), thresholds)]
        assert rec["test"] == pytest.approx(expected)
        _check_spread(rec)


def test_degenerate_fits_warn_on_their_own_line_and_in_the_training_summary(tmp_path, tiny_model, demo_dir, capsys):
    rows = [json.loads(line) for line in (demo_dir / "train.jsonl").read_text().splitlines()]
    for r in rows:   # nothing to learn on the second dimension
        r["labels"][1] = 5.0
    (demo_dir / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg_path = write_config(tmp_path, {"tiny": {**TINY, "model_name": str(tiny_model)}})
    raw = yaml.safe_load(cfg_path.read_text())
    raw["probe_methods"]["ridge"]["alphas"] = [1e5, 1e6]   # so strong that the lowest value wins: a grid edge
    cfg_path.write_text(yaml.safe_dump(raw))
    cfg = load_config(cfg_path)
    assert call("embed_articles", "--config", cfg_path, "--data-dir", demo_dir) == 0
    assert call("train_probes", "--config", cfg_path, "--data-dir", demo_dir, "--probes", "ridge", "lightgbm") == 0
    lines = capsys.readouterr().out.splitlines()
    warned = [line for line in lines if line.startswith("warning: ")]
    assert any("ridge: alpha 100000 chosen on validation is the lowest value of its grid" in w and
               "widen probe_methods.ridge.alphas in config.yaml" in w for w in warned), lines
    assert any("lightgbm: dimension technical_depth stopped after 1 boosting round" in w for w in warned), lines
    summary = json.loads(paths.training_summary(cfg, "demo_ds").read_text())["models"]["tiny"]
    assert [w for w in warned if "ridge:" in w] == [f"warning: [tiny] {w}" for w in summary["ridge"]["warnings"]]
    assert [w for w in warned if "lightgbm:" in w] == [f"warning: [tiny] {w}" for w in summary["lightgbm"]["warnings"]]

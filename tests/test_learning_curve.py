"""Would more labels help? train_probes.py --train-fractions, the learning curve in evaluate.py, its reading,
chart and report section."""
import json
import pickle
import types
from pathlib import Path

import docx
import numpy as np
import pytest

from conftest import call
from records import as_model, model_entry, paired, score_evaluation, score_probe
from study import findings
from study.cache import read_embeddings
from study.probes import ids_sha256, nested_subsets, probe_from_bundle

FRACTIONS = ["0.1", "0.25", "0.5", "1.0"]


def test_nested_subsets_are_nested_seeded_and_leave_out_the_full_split():
    subsets = nested_subsets(120, [1.0, 0.5, 0.1, 0.25], seed=42)
    assert [s["n_train"] for s in subsets] == [12, 30, 60]      # ceil(f * 120)
    assert [s["fraction"] for s in subsets] == [0.1, 0.25, 0.5]  # 1.0 is the normal probe, not trained twice
    for small, big in zip(subsets, subsets[1:]):
        assert set(small["rows"]) < set(big["rows"])
    order = np.random.default_rng(42).permutation(120)           # the rule, re-derived
    for s in subsets:
        np.testing.assert_array_equal(s["rows"], np.sort(order[:s["n_train"]]))
        assert len(np.unique(s["rows"])) == s["n_train"]
    again = nested_subsets(120, [0.1, 0.25, 0.5, 1.0], seed=42)
    assert all(np.array_equal(a["rows"], b["rows"]) for a, b in zip(subsets, again))
    other = nested_subsets(120, [0.1], seed=7)
    assert not np.array_equal(other[0]["rows"], subsets[0]["rows"])
    assert [s["n_train"] for s in nested_subsets(10, [0.33, 0.3, 0.999], seed=0)] == [3, 4]   # 0.999 -> all 10
    assert nested_subsets(100, [0.07], seed=0)[0]["n_train"] == 7   # 0.07 * 100 = 7.000000000000001 in floats


@pytest.mark.parametrize("value", ["0", "1.5", "-0.1", "nan", "x"])
def test_train_fractions_out_of_range_are_refused_in_one_line(value, workspace, capsys):
    cfg, demo = workspace
    for script in ("train_probes", "run_all"):
        assert call(script, "--config", cfg, "--data-dir", demo, "--train-fractions", "0.5", value) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: argument --train-fractions: "), err
        assert "(0, 1]" in err[0]


def test_run_all_passes_train_fractions_to_train_probes_only():
    import run_all

    args = types.SimpleNamespace(config=None, models=None, max_tokens=None, probes=["ridge"], device=None,
                                 baseline_mae=None, baseline_f1=None, baseline_predictions=None, output=None, bench_each=False,
                                 probe=None, train_fractions=[0.1, 0.5, 1.0], train_languages=None)
    cfg = types.SimpleNamespace(results_path=Path("/tmp/r"))
    arguments = run_all.phase_arguments(args, cfg, "toy", "d", [], "toy")
    assert arguments["train"][-4:] == ["--train-fractions", "0.1", "0.5", "1.0"]
    args.train_languages = ["en"]   # --train-languages goes to train_probes.py only, too
    arguments = run_all.phase_arguments(args, cfg, "toy", "d", [], "toy")
    assert arguments["train"][-2:] == ["--train-languages", "en"]
    assert all("--train-languages" not in a for phase, a in arguments.items() if phase != "train")
    args.train_languages = None
    assert all("--train-fractions" not in a for phase, a in arguments.items() if phase != "train")
    args.train_fractions = None
    assert "--train-fractions" not in run_all.phase_arguments(args, cfg, "toy", "d", [], "toy")["train"]


@pytest.mark.slow   # whole phases in a chain
def test_learning_curve_end_to_end(workspace, tmp_path):
    cfg, demo = workspace
    common = ["--config", cfg, "--data-dir", demo]
    res = tmp_path / "results"
    assert call("train_probes", *common, "--probes", "ridge", "mlp", "--train-fractions", *FRACTIONS) == 0

    # the training summary records each subset probe; the full-data probe keeps its name
    summary = json.loads((res / "demo_ds_training_summary.json").read_text())
    n = summary["models"]["tiny"]["ridge"]["n_train"]
    assert n == 120 and summary["models"]["tiny"]["ridge"]["file"] == "demo_ds_tiny_ridge.pkl"
    for kind in ("ridge", "mlp"):
        records = summary["models"]["tiny"][kind]["train_subsets"]
        assert [(r["fraction"], r["n_train"]) for r in records] == [(0.1, 12), (0.25, 30), (0.5, 60)]
        for r in records:
            assert r["file"] == f"demo_ds_tiny_{kind}_n{r['n_train']}.pkl" and (res / r["file"]).is_file()
            with open(res / r["file"], "rb") as fh:
                bundle = pickle.load(fh)
            assert bundle["metadata"]["n_train"] == r["n_train"]
            assert bundle["metadata"]["train_subset"]["ids_sha256"] == r["ids_sha256"]
    # the subset really is the seeded rows: its ids re-derived from the permutation
    cache = read_embeddings(tmp_path / "embeddings" / "demo_ds_tiny_train.npz")
    rows = np.sort(np.random.default_rng(42).permutation(120)[:30])
    assert summary["models"]["tiny"]["ridge"]["train_subsets"][1]["ids_sha256"] == ids_sha256(cache["ids"][rows])

    assert call("evaluate", *common, "--baseline-mae", "0.7") == 0
    ev = json.loads((res / "demo_ds_evaluation_results.json").read_text())
    test = read_embeddings(tmp_path / "embeddings" / "demo_ds_tiny_test.npz")
    for kind in ("ridge", "mlp"):
        m = ev["models"]["tiny"]["probes"][kind]
        curve = m["learning_curve"]
        ns = [p["n_train"] for p in curve]
        assert ns == [12, 30, 60, 120] and all(a < b for a, b in zip(ns, ns[1:]))
        assert curve[-1]["fraction"] == 1.0 and curve[-1]["test_mae"] == m["overall_mae"]
        assert curve[-1]["mae_ci95"] == m["mae_ci95"] and curve[-1]["val_mae"] == m["val_mae"]
        errors = []
        for p in curve:   # each point re-derived: the probe file on the test embeddings, numpy MAE
            with open(res / p["file"], "rb") as fh:
                probe = probe_from_bundle(pickle.load(fh))
            err = np.abs(probe.predict(test["embeddings"]).astype(float) - test["labels"]).mean(axis=1)
            assert p["test_mae"] == pytest.approx(err.mean(), abs=1e-6)
            assert p["mae_ci95"][0] <= p["test_mae"] <= p["mae_ci95"][1]
            errors.append(err)
        assert "vs_previous" not in curve[0]
        for i in range(1, 4):
            step = curve[i]["vs_previous"]
            assert step["n_train"] == ns[i - 1] and step["n_articles"] == 60
            assert step["mae_difference"] == pytest.approx((errors[i] - errors[i - 1]).mean(), abs=1e-6)
        # the reading read again under 10 other bootstrap seeds (43...52), re-derived with numpy percentiles
        d = curve[-1]["vs_doubling"]
        diff = errors[3] - errors[2]
        again = []
        for seed in range(43, 53):
            rng = np.random.default_rng(seed)
            means = [diff[rng.integers(0, 60, 60)].mean() for _ in range(200)]
            lo, hi = np.quantile(means, [0.025, 0.975])
            again.append("still falling" if hi < -0.02 else "rising" if lo > 0.02 else
                         "flat" if -0.02 <= lo and hi <= 0.02 else "inconclusive")   # one doubling: 60 -> 120
        assert d["bootstrap_agreement"] == pytest.approx(np.mean([r == d["reading"] for r in again]))
        assert d["seed_readings"] is None and "seed_spread" not in curve[-1]   # probe_seeds 1: no seed ensemble
    assert ev["models"]["tiny"]["probes"]["ridge"]["learning_curve"][0]["test_mae"] > \
        ev["models"]["tiny"]["probes"]["ridge"]["learning_curve"][-1]["test_mae"]   # 12 articles are too few

    # phase 3b draws and records the chart; the report shows the section with the JSON's numbers
    assert call("compare_results", *common) == 0
    record = json.loads((res / "demo_ds_comparison.json").read_text())
    assert record["figures"]["learning_curve"] == "figures/demo_ds_learning_curve.png"
    assert (res / record["figures"]["learning_curve"]).stat().st_size > 1000
    markdown = (res / "demo_ds_comparison_report.md").read_text()
    assert "### 2.9 Would more labels help?" in markdown
    assert "learning_curve.png" in markdown   # the curve is a figure (its points are the chart's, not a table's)
    assert call("generate_report", *common) == 0
    doc = docx.Document(str(res / "demo_ds_report.docx"))
    headings = [p.text for p in doc.paragraphs if p.style.name.startswith("Heading")]
    assert "2.9 Would more labels help?" in headings
    text = "\n".join(p.text for p in doc.paragraphs)
    typed = as_model(ev)
    reading = findings.learning_curve_readings(typed)
    assert len(reading) == 2 and all(findings.curve_sentence(r) in text for r in reading)
    assert "each curve is read over its last doubling" in text and f"{findings.CURVE_RULE}." in markdown
    for r in reading:   # the reading is the one evaluate.py recorded on the curve's last point (vs_doubling)
        assert r["reading"].reading == ev["models"]["tiny"]["probes"][r["probe"]]["learning_curve"][-1][
            "vs_doubling"]["reading"]
    files = [c.text for t in doc.tables if [c.text for c in t.rows[0].cells][2:3] == ["File"] for r in t.rows
             for c in r.cells]
    assert "demo_ds_tiny_ridge_n12.pkl" in files and "demo_ds_tiny_mlp_n60.pkl" in files   # the appendix lists them

    # retraining without --train-fractions empties the record: no stale curve
    assert call("train_probes", *common, "--probes", "ridge") == 0
    summary = json.loads((res / "demo_ds_training_summary.json").read_text())
    assert summary["models"]["tiny"]["ridge"]["train_subsets"] == []
    assert len(summary["models"]["tiny"]["mlp"]["train_subsets"]) == 3


def test_report_without_a_curve_has_one_line_hint(workspace, tmp_path):
    cfg, demo = workspace
    common = ["--config", cfg, "--data-dir", demo]
    assert call("evaluate", *common) == 0
    ev = json.loads((tmp_path / "results" / "demo_ds_evaluation_results.json").read_text())
    assert "learning_curve" not in ev["models"]["tiny"]["probes"]["ridge"]
    assert call("generate_report", *common) == 0
    doc = docx.Document(str(tmp_path / "results" / "demo_ds_report.docx"))
    headings = [p.text for p in doc.paragraphs if p.style.name.startswith("Heading")]
    assert not any("more labels" in h for h in headings)
    hints = [p.text for p in doc.paragraphs if "Would more labels help?" in p.text]
    assert len(hints) == 1 and "--train-fractions 0.1 0.25 0.5 1.0" in hints[0] and "evaluate.py" in hints[0]


def _curve(per_doubling_ci, reading):
    """A learning curve of 4 points whose last point carries the reading evaluate.py records."""
    points = []
    for i, (n, mae) in enumerate(zip((100, 250, 500, 1000), (1.0, 0.9, 0.85, 0.82))):
        p = {"fraction": n / 1000, "n_train": n, "test_mae": mae, "mae_ci95": [mae - 0.05, mae + 0.05], "val_mae": mae,
             "file": f"x_n{n}.pkl"}
        points.append(p)
    points[-1]["vs_doubling"] = {**paired(-0.03, [2 * x for x in per_doubling_ci], "better"), "n_reference": 500,
                                 "n_last": 1000, "doublings": 1.0, "per_doubling": -0.03,
                                 "per_doubling_ci95": per_doubling_ci, "margin": 0.02, "reading": reading}
    return points


@pytest.mark.parametrize("ci, reading", [([-0.05, -0.025], "still falling"), ([-0.01, 0.01], "flat"),
                                         ([-0.05, 0.01], "inconclusive")])
def test_curve_sentence_and_answer_quote_the_recorded_reading(ci, reading):
    curve = _curve(ci, reading)
    ev = as_model(score_evaluation({"m": model_entry("m", {"ridge": score_probe(learning_curve=curve),
                                                           "mlp": score_probe(overall_mae=2.0)})}))
    answer, = [r for r in findings.learning_curve_readings(ev) if r["probe"] == "ridge"]
    assert answer["reading"].reading == reading and answer["last"].n_train == 1000 and answer["chosen"]
    sentence = findings.curve_sentence(answer)
    assert f"Reading: {reading}." in sentence and "500 to 1,000 articles" in sentence
    assert f"95% CI {ci[0]:+.3f} to {ci[1]:+.3f}" in sentence
    single = as_model(score_evaluation({"m": model_entry("m", {"mlp": score_probe()})}))
    assert findings.learning_curve_readings(single) == []


def test_a_curve_reading_is_read_again_per_seed_and_bootstrap_seed():
    """curve_stability on constructed errors: each seed's probe alone read by the same rule (one member falls, one
    does not), the bootstrap agreement a share of ten."""
    from study.evaluation import curve_stability
    from study.verdicts import curve_reading
    from study.metrics import paired_difference

    cfg = types.SimpleNamespace(bootstrap_samples=300, random_seed=1, equivalence_margin=0.02, bca_below=0)
    rng = np.random.default_rng(0)
    first = rng.gamma(2.0, 0.4, 400)
    falls, flat = first - 0.2 + rng.normal(0, 0.05, 400), first + rng.normal(0, 0.05, 400)
    out = curve_stability(cfg, 200, 400, (first, (falls + flat) / 2), ([first, first], [falls, flat]))
    assert out["seed_readings"] == ["still falling", "flat"]
    own = [curve_reading(200, 400, d["mae_difference"], d["difference_ci95"], 0.02)["reading"] for d in
           (paired_difference((falls + flat) / 2, first, 300, s) for s in range(2, 12))]
    assert out["bootstrap_agreement"] == np.mean([r == "still falling" for r in own]) == 1.0
    assert curve_stability(cfg, 200, 400, (first, first), (None, None))["seed_readings"] is None

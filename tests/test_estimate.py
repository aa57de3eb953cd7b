"""The time estimate (study/estimate.py): the cost model's arithmetic redone by hand on constructed plans, what a
plan reads from a dataset, and the lines run_all.py prints before and after a run."""
import argparse
import json
import math

import numpy as np
import pytest

import run_all
from study import estimate as est
from study.config import load_config
from study.estimate import Encoding, Plan, Shape

SHAPE = Shape(params=1_000_000, layers=4, hidden=256, total_params=5_000_000)
SCRIPTS = ["embed_articles.py", "train_probes.py", "evaluate.py", "compare_results.py", "benchmark_speed.py",
           "analyze_error_distribution.py", "generate_report.py"]


def plan(n_train=100, seeds=2, tokens=(10.0, 20.0), cached=False, **kw) -> Plan:
    seqs = {} if cached else {"train": np.array(tokens * (n_train // len(tokens))), "val": np.array(tokens),
                              "test": np.array(tokens)}
    enc = Encoding("m", SHAPE, 64, seqs, ("train", "val", "test") if cached else ())
    return Plan(n={"train": n_train, "val": 2, "test": 2}, dimensions=3, encodings=[enc], variants=[("m", 64)],
                probes=["ridge", "mlp", "lightgbm"], seeds=seeds, alphas=8, bootstrap=100, device="cpu", cores=2,
                **kw)


def test_each_phase_is_its_fixed_cost_plus_the_work_counted_by_hand():
    p = plan(n_train=4)
    got = est.estimate(p, SCRIPTS)
    # forward pass: 2 x params per token + 4 x layers x hidden x tokens^2 per article, at 130 GFLOP/s (hidden < 768)
    flops = sum(2 * 1_000_000 * t + 4 * 4 * 256 * t * t for t in [10, 20, 10, 20] + [10, 20] * 2)
    load = 1.0 + 4 * 5_000_000 / 400e6
    assert got["embed_articles.py"] == pytest.approx(2.2 + 3.5 + load + flops / 130e9)
    ridge = 0.05 + 1e-9 * 4 * 64 * 64 * 8
    mlp = 1.4 + 2.5e-9 * 2 * 4 * (64 * 256 + 256 * 128 + 128 * 3)
    lgbm = 1.2e-6 * 2 * 3 * 64 * (4 + 700)
    assert got["train_probes.py"] == pytest.approx(3.7 + ridge + mlp + lgbm)
    assert got["evaluate.py"] == pytest.approx(4.5 + 3 * (0.45 + 5.6e-7 * 100 * 2 * 3))   # resamples x test x dims
    assert got["benchmark_speed.py"] == pytest.approx(6.0 + ridge + mlp + lgbm + 3 * 0.5)   # no timing asked
    assert got["generate_report.py"] == pytest.approx(1.8 + 0.4)
    timed = est.estimate(plan(n_train=4, bench={"runs": 3, "reference": True, "tokens": {"m": np.array([50.0])}}),
                         ["benchmark_speed.py"])["benchmark_speed.py"]
    # two loads, then a warm-up and 3 timed runs in the benchmark's setting and again in the reference setting
    bench = 2 * load + 4 * 2 * (2 * 1_000_000 * 50 + 4 * 4 * 256 * 50 ** 2) / 130e9
    assert timed == pytest.approx(got["benchmark_speed.py"] + bench)


def test_more_articles_or_seeds_cost_more_and_valid_caches_nothing():
    base = est.estimate(plan(), SCRIPTS)
    more = est.estimate(plan(n_train=1000), SCRIPTS)
    seeds = est.estimate(plan(seeds=5), SCRIPTS)
    assert more["embed_articles.py"] > base["embed_articles.py"] and more["train_probes.py"] > base["train_probes.py"]
    assert seeds["train_probes.py"] > base["train_probes.py"] and seeds["benchmark_speed.py"] > base["benchmark_speed.py"]
    assert seeds["embed_articles.py"] == base["embed_articles.py"]   # seeds are the probes' business
    cached = est.estimate(plan(cached=True), SCRIPTS)
    assert cached["embed_articles.py"] == est.FIXED_S["embed_articles.py"]
    longer = est.estimate(plan(tokens=(100.0, 200.0)), SCRIPTS)
    assert longer["embed_articles.py"] > base["embed_articles.py"] and longer["train_probes.py"] == base["train_probes.py"]
    four = est.estimate(Plan(**{**plan().__dict__, "cores": 4}), SCRIPTS)
    assert four["embed_articles.py"] < base["embed_articles.py"]
    # a learning curve and a language subset fit every probe again on their share of the articles
    curve = est.estimate(plan(fits_per_probe=1.75), SCRIPTS)
    assert curve["train_probes.py"] - 3.7 == pytest.approx(1.75 * (base["train_probes.py"] - 3.7))


def test_sequences_are_cut_at_max_tokens_or_windowed():
    np.testing.assert_array_equal(est.sequence_tokens([10, 300], 128), [10, 128])
    # windows of 16 overlapping by 4 (a step of 12): 40 tokens -> ceil(36 / 12) = 3 windows, the last 40 - 24 = 16
    np.testing.assert_array_equal(est.sequence_tokens([40, 5], 16, chunked=True, overlap=4, max_windows=3),
                                  [16, 16, 16, 5])
    np.testing.assert_array_equal(est.sequence_tokens([1000], 16, chunked=True, overlap=4, max_windows=2), [16, 16])
    np.testing.assert_array_equal(est.text_tokens([0, 1, 8, 9]), [2, 3, 4, 5])


def test_the_lines_before_and_after_a_run():
    p, labels = plan(), {s: s.split("_")[0] for s in SCRIPTS}
    got = est.estimate(p, ["embed_articles.py", "train_probes.py"])
    line = est.estimate_line("news", got, labels, p)
    assert line.startswith(f"estimate for news: embed {got['embed_articles.py']:.0f} s, train ")
    assert f"total {sum(got.values()):.0f} s (cost model: study/estimate.py, cpu, 2 cores)" in line
    lines = est.off_lines("news", got, {"embed_articles.py": 2 * got["embed_articles.py"], "train_probes.py": 1.0},
                          labels)
    assert lines[0] == "time against the estimate for news (measured / estimated):"
    assert lines[1].split()[-1] == "x2.00" and lines[2].split()[-1] == f"x{1.0 / got['train_probes.py']:.2f}"
    total = 2 * got["embed_articles.py"] + 1.0
    assert lines[3].split()[-1] == f"x{total / sum(got.values()):.2f}"
    assert est.duration(89) == "89 s" and est.duration(600) == "10.0 min" and est.duration(7200) == "2.0 h"


def test_a_plan_reads_the_dataset_and_the_model_and_sees_valid_caches(workspace):
    cfg_path, data = workspace   # the demo dataset embedded by the tiny model (a ridge probe trained)
    cfg = load_config(cfg_path)
    p = est.plan_for(cfg, None, str(data), models=["tiny"], max_tokens=None, probes=None, device="cpu")
    rows = {s: [json.loads(line) for line in (data / f"{s}.jsonl").read_text().splitlines()] for s in est.SPLITS}
    assert p.n == {s: len(r) for s, r in rows.items()} and p.dimensions == len(rows["train"][0]["labels"])
    assert p.probes == ["ridge", "mlp", "lightgbm"] and p.variants == [("tiny", 32)]
    assert p.seeds == cfg.probe_seeds and p.fits_per_probe == 1.0
    # the tiny model's config.json: 2 layers of hidden 32, FFN 64 (weights only: 2 x (4 x 32^2 + 2 x 32 x 64))
    assert (p.encodings[0].shape.layers, p.encodings[0].shape.hidden, p.encodings[0].shape.params) == (2, 32, 16384)
    assert p.encodings[0].cached == ("train", "val", "test") and p.encodings[0].tokens == {}
    fresh = est.plan_for(cfg, "other_name", str(data), models=["tiny-t16"], max_tokens=None, probes=["ridge"],
                         device="cpu", train_fractions=[0.5, 1.0])
    chars = [len((r.get("title") or "") + ("\n\n" if r.get("title") and r.get("content") else "")
                 + (r.get("content") or "")) for r in rows["test"]]
    want = [min(16, math.ceil(c / 4) + 2) for c in chars]
    np.testing.assert_array_equal(fresh.encodings[0].tokens["test"], want)
    assert fresh.encodings[0].cached == () and fresh.probes == ["ridge"] and fresh.fits_per_probe == 1.5


def test_run_all_prints_the_estimate_before_the_run(workspace, capsys):
    cfg_path, data = workspace
    cfg = load_config(cfg_path)
    args = argparse.Namespace(models=["tiny"], max_tokens=None, probes=None, device="cpu", train_fractions=None,
                              train_languages=None, finetune=None, skip=["finetune", "benchmark"], bench_each=False)
    out = run_all.say_estimates(args, cfg, [("demo_ds", str(data)), ("gone", str(data / "nowhere"))],
                                list(run_all.PHASES), [])
    printed = capsys.readouterr().out.splitlines()
    assert list(out) == ["demo_ds"] and list(out["demo_ds"]) == ["embed_articles.py", "train_probes.py",
                                                                 "evaluate.py", "compare_results.py",
                                                                 "analyze_error_distribution.py", "generate_report.py"]
    assert printed[0].startswith("estimate for demo_ds: embed 2 s, train ")
    assert printed[1].startswith("estimate for gone: not made (dataset folder not found")

"""study/verdicts.py and the exact intervals, each rule re-derived independently with numpy / scipy."""
import numpy as np
import pytest
from scipy.stats import beta, binomtest

from study.metrics import band_limits, bootstrap_ci, clopper_pearson, success_band
from study.verdicts import (CONSTANT, articles_needed, band_phrase, bands_spanned, comparison_phrase, curve_reading,
                            doubling_reference, null_result, paired_reading, too_few_to_judge, unpaired_reading,
                            verdict)

MARGINS = {"closes_gap": 0.07, "partial": 0.17}


def _paired_case(shift: float, noise: float, n: int = 2000, seed: int = 0):
    """Per-article errors of two predictors on the same articles, the first `shift` worse on average."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 0.4, n)
    return base + shift + rng.normal(0, noise, n), base


def _reference_verdict(diff: np.ndarray, margin: float, sign: float) -> str:
    """The rule from its definition: a 95% percentile bootstrap of the mean difference, by hand."""
    rng = np.random.default_rng(1)
    means = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(1000)]) * sign
    lo, hi = np.quantile(means, [0.025, 0.975])
    return ("better" if hi < -margin else "worse" if lo > margin else
            "equivalent" if lo >= -margin and hi <= margin else "inconclusive")


@pytest.mark.parametrize("shift, noise, expected", [(-0.10, 0.2, "better"), (0.10, 0.2, "worse"),
                                                    (0.0, 0.2, "equivalent"), (0.02, 0.6, "inconclusive")])
def test_the_paired_rule_on_constructed_cases_of_each_outcome(shift, noise, expected):
    mine, theirs = _paired_case(shift, noise)
    diff = mine - theirs
    ci = bootstrap_ci(diff, 1000, 1)
    assert verdict(ci, 0.02) == expected == _reference_verdict(diff, 0.02, 1.0)
    r = paired_reading(float(diff.mean()), ci, 0.02)
    assert r["paired"] is True and r["verdict"] == expected and r["margin"] == 0.02


def test_higher_is_better_turns_the_rule_around_for_f1():
    for ci, lower, higher in [((0.03, 0.08), "worse", "better"), ((-0.08, -0.03), "better", "worse"),
                              ((-0.01, 0.015), "equivalent", "equivalent"), ((-0.01, 0.05), "inconclusive",
                                                                            "inconclusive")]:
        assert verdict(ci, 0.02, "lower") == lower and verdict(ci, 0.02, "higher") == higher


def test_edges_of_the_rule():
    assert verdict((-0.05, -0.0201), 0.02) == "better"
    assert verdict((-0.05, -0.02), 0.02) == "inconclusive"       # touching the margin is not wholly below it
    assert verdict((-0.02, 0.02), 0.02) == "equivalent"          # the margin itself is inside
    assert verdict((-0.001, 0.001), 0.0) == "inconclusive"       # no margin: nothing is equivalent ...
    assert verdict((-0.03, -0.001), 0.0) == "better"             # ... and excluding zero decides
    assert verdict((None, None), 0.02) == verdict((float("nan"), 0.1), 0.02) == "inconclusive"
    with pytest.raises(ValueError, match="lower' or 'higher"):
        verdict((0, 1), 0.02, "up")
    with pytest.raises(ValueError, match="margin"):
        verdict((0, 1), -0.1)


def test_unpaired_reads_the_ci_against_the_single_number():
    r = unpaired_reading(0.794, (0.764, 0.825), 0.71, 0.02)
    assert r["paired"] is False and r["reference"] == 0.71 and r["verdict"] == "worse"
    assert r["ci95"] == pytest.approx([0.054, 0.115]) and r["difference"] == pytest.approx(0.084)
    assert unpaired_reading(0.72, (0.70, 0.74), 0.71, 0.02)["verdict"] == "inconclusive"
    assert unpaired_reading(0.71, (0.70, 0.72), 0.71, 0.02)["verdict"] == "equivalent"
    assert unpaired_reading(0.90, (0.88, 0.93), 0.85, 0.02, "higher")["verdict"] == "better"   # F1


def test_bands_follow_the_whole_ci():
    closes, partial = band_limits(0.71, MARGINS)                  # 0.78, 0.88
    assert bands_spanned((0.764, 0.825), 0.71, MARGINS) == ["closes the gap", "partial"]
    assert band_phrase(bands_spanned((0.764, 0.825), 0.71, MARGINS)) == "partial, possibly closes the gap"
    assert bands_spanned((0.70, 0.77), 0.71, MARGINS) == ["closes the gap"]
    assert bands_spanned((0.70, 0.95), 0.71, MARGINS) == ["closes the gap", "partial", "no improvement"]
    assert band_phrase(["closes the gap", "partial", "no improvement"]) == \
        "no improvement, possibly partial or closes the gap"
    for lo, hi in [(0.6, 0.65), (0.79, 0.87), (0.9, 1.2), (0.75, 0.9)]:   # the ends' bands are the point rule's
        spanned = bands_spanned((lo, hi), 0.71, MARGINS)
        assert spanned[0] == success_band(lo, 0.71, MARGINS) and spanned[-1] == success_band(hi, 0.71, MARGINS)
    assert closes == pytest.approx(0.78) and partial == pytest.approx(0.88)


def test_a_null_result_is_named_unless_better_than_the_constant():
    assert null_result("better") is None
    assert null_result("equivalent", margin=0.02) == "no better than a constant (the training median) (equivalent " \
                                                      "within ±0.02)"
    assert null_result("worse") == "worse than a constant (the training median) (no better than it)"
    assert CONSTANT == "a constant (the training median)"
    # ai-engineering-practice_real's shape: 1.38 against 1.395, a small gain on 52 articles: not shown to beat it,
    # never "no better than"
    mine, theirs = _paired_case(-0.015, 0.3, n=52, seed=3)
    ci = bootstrap_ci(mine - theirs, 1000, 0)
    said = null_result(verdict(ci, 0.02), ci=ci, n=52, margin=0.02)
    assert said.startswith("not shown to beat a constant (the training median) (inconclusive; a difference of ±0.02 "
                           "would need about ") and said.endswith("test articles to be told from none, here 52)")
    assert "no better than" not in said


def test_inconclusive_never_says_no_better_than():
    for v, start in [("better", "better than X"), ("worse", "worse than X (no better than it)"),
                     ("equivalent", "no better than X (equivalent within ±0.02)"),
                     ("inconclusive", "not shown to beat X (inconclusive")]:
        said = comparison_phrase(v, "X", margin=0.02, needed=400, n=52)
        assert said.startswith(start)
        assert ("no better than" in said) == (v in ("worse", "equivalent"))
    with pytest.raises(ValueError, match="verdict"):
        comparison_phrase("same", "X")


def test_articles_needed_is_the_textbook_power_figure_from_the_paired_sd():
    """n = ((z_.975 + z_.8) * SD / margin)^2 with the SD the CI of n articles implies; checked by simulation: at that
    size a true difference of the margin excludes zero in about 80% of test sets (normal-theory CIs)."""
    from scipy.stats import norm

    sd, n, margin = 0.25, 60, 0.02
    se = sd / np.sqrt(n)
    need = articles_needed((-1.959964 * se, 1.959964 * se), n, margin)
    expected = ((norm.ppf(0.975) + norm.ppf(0.8)) * sd / margin) ** 2      # 1226.4
    assert need == int(np.ceil(expected - 1e-6)) == 1227
    rng = np.random.default_rng(5)
    d = rng.normal(-margin, sd, (1000, need))
    upper = d.mean(axis=1) + norm.ppf(0.975) * d.std(axis=1, ddof=1) / np.sqrt(need)
    assert abs((upper < 0).mean() - 0.8) < 0.04                             # 3.2 Monte-Carlo SE
    # from a bootstrap CI of real-shaped differences it lands near the textbook figure of their SD
    diff = rng.gamma(2.0, 0.4, 200) - rng.gamma(2.0, 0.4, 200)
    ref = ((norm.ppf(0.975) + norm.ppf(0.8)) * diff.std(ddof=1) / margin) ** 2
    assert 0.8 * ref < articles_needed(bootstrap_ci(diff, 2000, 0), 200, margin) < 1.2 * ref
    assert articles_needed((None, None), 52, 0.02) is None and articles_needed((-0.1, 0.1), 52, 0.0) is None


def test_groups_below_the_minimums_are_too_few_to_judge():
    kw = {"min_articles": 30, "min_positives": 10}
    assert too_few_to_judge(29, **kw) and not too_few_to_judge(30, **kw)
    assert too_few_to_judge(500, 9, **kw) and not too_few_to_judge(500, 10, **kw)


@pytest.mark.parametrize("k, n", [(50, 50), (0, 50), (1, 7), (37, 52), (990, 1000), (0, 1)])
def test_clopper_pearson_against_scipy(k, n):
    lo, hi = clopper_pearson(k, n)
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert lo == pytest.approx(ref.low, abs=1e-9) and hi == pytest.approx(ref.high, abs=1e-9)
    assert hi - lo > 0                                              # never zero-width
    if 0 < k < n:   # the beta quantiles from their definition
        assert lo == pytest.approx(beta.ppf(0.025, k, n - k + 1)) and hi == pytest.approx(beta.ppf(0.975, k + 1, n - k))
    assert clopper_pearson(0, 0) == [None, None]


def test_fifty_of_fifty_is_not_a_point():
    lo, hi = clopper_pearson(50, 50)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 50)) and round(lo * 100, 1) == 92.9


def test_learning_curve_reading_per_doubling():
    assert doubling_reference([500, 1000, 2000, 4000]) == 2          # the last doubling: 2000 -> 4000
    assert doubling_reference([400, 3600, 4000]) == 0                # 3600 is not half of 4000: read from 400
    assert doubling_reference([3000, 4000]) == 0 and doubling_reference([4000]) is None
    r = curve_reading(1000, 4000, -0.10, (-0.14, -0.06), 0.02)      # two doublings
    assert r["doublings"] == pytest.approx(2) and r["per_doubling"] == pytest.approx(-0.05)
    assert r["per_doubling_ci95"] == pytest.approx([-0.07, -0.03]) and r["reading"] == "still falling"
    assert curve_reading(2000, 4000, -0.005, (-0.015, 0.005), 0.02)["reading"] == "flat"
    assert curve_reading(2000, 4000, 0.05, (0.03, 0.07), 0.02)["reading"] == "rising"
    # a short last step cannot resolve a slope: the same CI over a tenth of a doubling is inconclusive
    short = curve_reading(3700, 4000, -0.005, (-0.015, 0.005), 0.02)
    assert short["reading"] == "inconclusive" and short["per_doubling_ci95"][0] < -0.1
    with pytest.raises(ValueError):
        curve_reading(4000, 4000, 0.0, (0, 0), 0.02)


def test_the_evaluation_json_records_the_rule_s_answers(workspace, tmp_path):
    """evaluate.py on the demo workspace: every new verdict re-derived from the predictions files."""
    import json

    from conftest import call
    from study.cache import read_embeddings
    from study.screening import misses_allowed

    cfg, demo = workspace
    assert call("evaluate", "--config", cfg, "--data-dir", demo, "--baseline-mae", "0.7") == 0
    ev = json.loads((tmp_path / "results" / "demo_ds_evaluation_results.json").read_text())
    m = ev["models"]["tiny"]["probes"]["ridge"]
    test, val = (np.load(tmp_path / "results" / m["predictions_files"][s]) for s in ("test", "val"))
    train = read_embeddings(tmp_path / "embeddings" / "demo_ds_tiny_train.npz")["labels"]
    mine = np.abs(test["y_pred"].astype(float) - test["y_true"]).mean(axis=1)
    mean = np.abs(train.mean(axis=0) - test["y_true"]).mean(axis=1)
    median = np.abs(np.median(train, axis=0) - test["y_true"]).mean(axis=1)

    vs_mean = m["vs_mean_predictor"]
    assert vs_mean["mae_difference"] == pytest.approx((mine - mean).mean(), abs=1e-6)
    assert vs_mean["equivalence_margin"] == 0.02
    assert vs_mean["verdict"] == _reference_verdict(mine - mean, 0.02, 1.0)   # 1000 resamples, seed 42 vs 1:
    b = ev["best"]["verdicts"]                                                # the same side of the margin here
    assert b["candidates"] == 1 and b["vs_mean_predictor"] == vs_mean["verdict"]
    vs_median = m["vs_median_predictor"]
    assert vs_median["mae_difference"] == pytest.approx((mine - median).mean(), abs=1e-6)
    assert ev["median_predictor"]["overall_mae"] == pytest.approx(median.mean(), abs=1e-6)
    assert b["vs_median_predictor"] == vs_median["verdict"] == _reference_verdict(mine - median, 0.02, 1.0)
    assert b["null_result"] == null_result(vs_median["verdict"], ci=vs_median["difference_ci95"], n=len(mine),
                                           margin=0.02)
    assert ev["best"]["band"] == band_phrase(b["bands_spanned"]) == b["band_reading"]   # the whole CI, not the point
    # the comparisons counted: against the mean, against the median, the unpaired reading against 0.7
    assert ev["multiplicity"]["comparisons"] == 3 and ev["multiplicity"]["by_kind"] == {
        "vs_baseline": 1, "vs_mean_predictor": 1, "vs_median_predictor": 1}
    assert b["vs_baseline"]["descriptive"] is True   # no --baseline-n: not a test
    lo, hi = m["mae_ci95"]
    assert b["vs_baseline"]["paired"] is False and b["vs_baseline"]["ci95"] == pytest.approx([lo - 0.7, hi - 0.7])
    assert b["bands_spanned"][0] == success_band(lo, 0.7, ev["success_bands"])
    assert b["bands_spanned"][-1] == success_band(hi, 0.7, ev["success_bands"])

    w = np.array([ev["screening_setup"]["weights"][d] for d in ev["dimension_names"]])
    s_true, s_pred = val["y_true"] @ w, val["y_pred"].astype(float) @ w
    relevant = np.sort(s_pred[s_true >= 4.0])
    for entry in m["screening"]["thresholds"]:
        g, target = entry["guaranteed"], entry["target_recall"]
        assert entry["n_relevant_val"] == g["n_relevant"] == len(relevant)
        k = misses_allowed(len(relevant), target, 0.95)
        if k is None:
            assert g["threshold"] is None and g["note"].startswith(f"cannot be certified with {len(relevant)} articles")
        else:
            assert g["threshold"] == pytest.approx(relevant[k], abs=1e-5) and "test" in g
    assert ev["mean_predictor"]["majority_tier"]["tier"] in ("low", "medium", "high")


def test_shuffled_training_labels_are_no_better_than_a_constant_for_every_probe_kind():
    """Nothing to learn (training labels shuffled, skewed 0-10 scores): every probe kind, the MLP with its L1 loss
    included, reads "no better than a constant (the training median)". The MLP learns the median: against the
    training mean it would have read "better" (the audit's false "learns anything"). Re-derived with numpy: the
    median by np.median, the verdict by a bootstrap of its own."""
    from types import SimpleNamespace

    from study.evaluation import compared, train_median_predictions
    from study.metrics import article_mae
    from study.probes import LightGBMProbe, MLPProbe, RidgeProbe

    rng = np.random.default_rng(0)

    def split(n):
        return rng.normal(size=(n, 24)).astype(np.float32), np.clip(rng.gamma(1.2, 1.5, (n, 3)), 0, 10).astype(np.float32)

    (Xt, Yt), (Xv, Yv), (Xs, Ys) = split(400), split(150), split(1200)
    Yt = Yt[rng.permutation(len(Yt))]
    cfg = SimpleNamespace(bootstrap_samples=500, random_seed=0, equivalence_margin=0.02, min_group_articles=30,
                          bca_below=200)
    median = np.abs(Ys - np.median(Yt.astype(np.float64), axis=0)).mean(axis=1)
    assert np.allclose(article_mae(Ys, train_median_predictions(Yt, Ys)), median)
    mean = np.abs(Ys - Yt.astype(np.float64).mean(axis=0)).mean(axis=1)
    assert median.mean() < mean.mean() - 0.04                     # skewed: the median is the better constant
    for probe in (RidgeProbe(), MLPProbe(hidden_sizes=(32, 16), epochs=60, random_state=0, loss="l1"),
                  LightGBMProbe(params={"n_estimators": 200, "verbose": -1}, random_state=0)):
        errors = article_mae(Ys, probe.fit(Xt, Yt, Xv, Yv).predict(Xs))
        d = compared(cfg, errors, median)
        assert d["verdict"] in ("equivalent", "worse") and d["verdict"] == _reference_verdict(errors - median, 0.02, 1)
        said = null_result(d["verdict"], ci=d["difference_ci95"], n=len(errors), margin=0.02)
        assert "no better than a constant (the training median)" in said or said.startswith("worse than a constant")
        if probe.kind == "mlp":
            assert compared(cfg, errors, mean)["verdict"] == "better"   # what the mean reference said


def _unpaired_error_at_the_margin(n: int, baseline_n, sims: int, margin: float = 0.05) -> float:
    """The share of simulated test-set pairs (probe on n articles, the baseline's single MAE from its own baseline_n
    articles, true difference exactly +margin) whose unpaired reading says "worse" (beyond the margin): the error of
    the reading at the margin (nominally 2.5%, one side of a 95% CI)."""
    rng = np.random.default_rng(11)
    wrong = 0
    for s in range(sims):
        probe = rng.gamma(2.0, 0.4, n) + margin
        reference = rng.gamma(2.0, 0.4, n if baseline_n is None else baseline_n).mean()
        ci = bootstrap_ci(probe, 200, s)
        r = unpaired_reading(probe.mean(), ci, reference, margin, n=n, baseline_n=baseline_n)
        wrong += r["verdict"] == "worse"
    return wrong / sims


def test_the_single_baseline_reading_errs_within_five_percent_at_the_margin_with_its_test_size(n=52):
    """Simulated test sets of equal size: with --baseline-n the reading's error at the margin stays within 5% +
    3 Monte-Carlo SE; without it (descriptive) it is about 8%, as the audit found."""
    sims = 1500
    with_n = _unpaired_error_at_the_margin(n, n, sims)
    mc = 3 * np.sqrt(0.05 * 0.95 / sims)
    assert with_n <= 0.05 + mc
    descriptive = _unpaired_error_at_the_margin(n, None, sims)
    assert descriptive > 0.05 + mc > with_n                       # the test can fail: the old reading errs
    r = unpaired_reading(0.80, (0.75, 0.85), 0.70, 0.02, n=100, baseline_n=100)
    assert r["ci95"] == pytest.approx([0.1 - 0.05 * np.sqrt(2), 0.1 + 0.05 * np.sqrt(2)]) and not r["descriptive"]
    assert unpaired_reading(0.80, (0.75, 0.85), 0.70, 0.02)["descriptive"] is True


def test_holm_flags_the_decided_verdicts_its_step_down_would_not_keep():
    """Holm by hand: sorted p against 0.05 / (m - rank), stopping at the first that fails; only decided verdicts
    (p <= 0.05) can change. The claim's p-value is <= 0.05 exactly when the rule decided (a symmetric CI)."""
    from study.verdicts import claim_p_value, holm_changes, multiplicity_note

    p = [0.001, 0.04, 0.012, 1.0, 0.013]     # thresholds 0.01, 0.0125, 0.0167, 0.025, 0.05 in sorted order
    assert holm_changes(p) == [False, True, False, False, False]   # 0.001, 0.012, 0.013 pass; 0.04 > 0.025 fails
    assert holm_changes([0.03, 0.04]) == [True, True] and holm_changes([0.02, 0.04]) == [False, False]
    rng = np.random.default_rng(2)
    for _ in range(300):
        c, h = rng.normal(0, 0.05), abs(rng.normal(0.03, 0.02))
        ci, v = (c - h, c + h), verdict((c - h, c + h), 0.02)
        assert (claim_p_value(ci, 0.02, v) <= 0.05) == (v != "inconclusive")
    assert claim_p_value((-0.2, -0.1), 0.02, "better") < 1e-3 and claim_p_value((0.1, 0.2), 0.02, "worse") < 1e-3
    note = multiplicity_note({"comparisons": 12, "by_kind": {}, "holm": {"alpha": 0.05, "would_change": [
        {"where": "models.m.probes.mlp.vs_chosen", "verdict": "worse", "p": 0.03}]}})
    assert note.startswith("each of the 12 comparisons recorded is a 95% test") and "turn 1 to inconclusive" in note

"""study/screening.py against direct numpy recomputation on data with a known answer."""
import numpy as np
import pytest

from study.errors import StudyError
from study.screening import at_threshold, choose_threshold, screen, tier_scores, weight_vector

TIERS = {"medium": 4.0, "high": 7.0}


def _scores(n, seed, noise=0.8):
    rng = np.random.default_rng(seed)
    Y = np.clip(rng.normal(4.5, 2.0, size=(n, 2)), 0, 10)
    P = np.clip(Y + rng.normal(0, noise, size=Y.shape), 0, 10)
    return Y, P


def test_weights_follow_the_dimension_names_and_must_match_them():
    np.testing.assert_allclose(weight_vector(["a", "b"], None), [0.5, 0.5])
    np.testing.assert_allclose(weight_vector(["a", "b"], {"b": 3, "a": 1}), [0.25, 0.75])
    with pytest.raises(StudyError, match="dimension_weights name \\['a', 'c'\\].*\\['a', 'b'\\]"):
        weight_vector(["a", "b"], {"a": 1, "c": 1})


def test_threshold_keeps_the_target_share_of_medium_plus_on_validation():
    Y, P = _scores(400, 0)
    w = np.array([0.5, 0.5])
    s_true, s_pred = Y @ w, P @ w
    for target in (0.99, 0.95, 0.8):
        t = choose_threshold(s_true, s_pred, 4.0, target)
        relevant = s_true >= 4.0
        assert (s_pred[relevant] >= t).mean() >= target                      # the target is met ...
        higher = np.sort(s_pred[relevant])[np.sort(s_pred[relevant]) > t]
        assert not len(higher) or (s_pred[relevant] >= higher[0]).mean() < target   # ... by the highest threshold
    assert choose_threshold(np.zeros(5), np.zeros(5), 4.0, 0.99) is None     # no medium+ article


def test_figures_at_a_threshold_equal_a_direct_count():
    Y, P = _scores(300, 1)
    w = np.array([0.3, 0.7])
    s_true, s_pred = Y @ w, P @ w
    err = np.abs(P - Y).mean(axis=1)
    r = at_threshold(s_true, s_pred, err, 3.5, 4.0, 200, 0)
    skip = s_pred < 3.5
    assert r["skip_share"] == pytest.approx(skip.mean()) and r["n_skipped"] == skip.sum()
    assert r["recall"] == pytest.approx((s_pred[s_true >= 4.0] >= 3.5).mean())
    assert r["skipped_mae"] == pytest.approx(err[skip].mean())
    for key in ("skip_share", "recall", "skipped_mae"):
        lo, hi = r[key + "_ci95"]
        assert lo <= r[key] <= hi and hi - lo < 0.3




def _one_at_a_time(n, stat, n_boot, seed, quantiles=(0.025, 0.975)):
    """The bootstrap written plainly: a resample drawn, its statistic taken, and so on; NaN left out."""
    rng = np.random.default_rng(seed)
    values = np.array([stat(rng.integers(0, n, n)) for _ in range(n_boot)], dtype=np.float64)
    values = values[np.isfinite(values)]
    return tuple(float(np.quantile(values, q)) for q in quantiles)


@pytest.mark.parametrize("block", [1 << 20, 4 * 60 + 7])   # the default; blocks of 4 resamples, the last one short
def test_resamples_drawn_in_blocks_give_the_cis_of_one_at_a_time_bit_for_bit(monkeypatch, block):
    """The CIs resample many articles at a numpy call (study.metrics.resamples); each must be, to the last bit, the
    CI of the resamples drawn one at a time from the same seed, whatever the block: the MAE's, the screening's (a
    share, a recall of the medium+ articles, the MAE of the skipped ones) and the tier scores'."""
    import study.metrics
    from study.metrics import bootstrap_ci
    monkeypatch.setattr(study.metrics, "RESAMPLE_BLOCK", block)
    Y, P = _scores(60, 4)
    w = np.array([0.3, 0.7])
    s_true, s_pred = Y @ w, P @ w
    err = np.abs(P - Y).mean(axis=1)
    n_boot, seed = 203, 8
    alpha = (1 - 0.95) / 2   # as bootstrap_ci writes its level's quantiles (the screening's are 0.025 and 0.975)
    assert bootstrap_ci(err, n_boot, seed) == _one_at_a_time(60, lambda i: err[i].mean(), n_boot, seed,
                                                             (alpha, 1 - alpha))
    r = at_threshold(s_true, s_pred, err, 3.5, 4.0, n_boot, seed)
    skip, relevant = s_pred < 3.5, s_true >= 4.0
    mean = lambda x: x.mean() if len(x) else np.nan   # noqa: E731
    for key, stat in [("skip_share", lambda i: skip[i].mean()), ("recall", lambda i: mean(~skip[i][relevant[i]])),
                      ("skipped_mae", lambda i: mean(err[i][skip[i]]))]:
        assert tuple(r[key + "_ci95"]) == _one_at_a_time(60, stat, n_boot, seed), key
    t = tier_scores(Y, P, w, TIERS, n_boot, seed)
    assert tuple(t["weighted_mae_ci95"]) == _one_at_a_time(60, lambda i: np.abs(s_pred - s_true)[i].mean(), n_boot,
                                                           seed)
    tier_hit = (np.digitize(s_true, [4.0, 7.0]) == np.digitize(s_pred, [4.0, 7.0])).astype(float)
    assert tuple(t["tier_accuracy_ci95"]) == _one_at_a_time(60, lambda i: tier_hit[i].mean(), n_boot, seed)
def test_tier_scores_and_the_whole_screen():
    Yv, Pv = _scores(300, 2)
    Yt, Pt = _scores(300, 3)
    w = weight_vector(["a", "b"], None)
    t = tier_scores(Yt, Pt, w, TIERS, 100, 0)
    s_true, s_pred = Yt @ w, Pt @ w
    tier = lambda s: (s >= 4.0).astype(int) + (s >= 7.0)  # noqa: E731
    assert t["weighted_mae"] == pytest.approx(np.abs(s_pred - s_true).mean())
    assert t["tier_accuracy"] == pytest.approx((tier(s_true) == tier(s_pred)).mean())
    assert t["within_1.0"] == pytest.approx((np.abs(s_pred - s_true) <= 1.0).mean())
    confusion = np.array(t["tier_confusion"])
    assert confusion.sum() == 300 and np.trace(confusion) == (tier(s_true) == tier(s_pred)).sum()
    assert confusion[2, 1] == ((tier(s_true) == 2) & (tier(s_pred) == 1)).sum()

    out = screen((Yv, Pv), (Yt, Pt), w, TIERS, [0.99, 0.95], (0, 10), 100, 0)
    strict, loose = out["thresholds"]
    assert strict["threshold"] == choose_threshold(Yv @ w, Pv @ w, 4.0, 0.99)     # chosen on validation
    assert strict["threshold"] <= loose["threshold"] and strict["test"]["skip_share"] <= loose["test"]["skip_share"]
    assert strict["test"]["skip_share"] == pytest.approx((Pt @ w < strict["threshold"]).mean())   # applied to test
    curve = out["curve"]
    assert curve["skip_share"][0] == 0.0 and curve["recall"][0] == 1.0 and curve["skip_share"][-1] == 1.0
    assert np.all(np.diff(curve["threshold"]) > 0) and np.all(np.diff(curve["skip_share"]) >= 0)
    assert np.all(np.diff(curve["recall"]) <= 0)
    s_pred = Pt @ w   # exact at every threshold: each distinct predicted score is one, so the plotted step holds
    assert set(np.round(s_pred, 9)) <= set(np.round(curve["threshold"], 9))
    for t, skip in zip(curve["threshold"], curve["skip_share"]):
        assert skip == pytest.approx((s_pred < t).mean())


# -- the guaranteed threshold (one-sided Clopper-Pearson order statistic) ------------------------
from scipy.stats import beta, binom  # noqa: E402

from study.screening import articles_needed, figures_on_test, guaranteed_threshold, majority_tier, misses_allowed  # noqa: E402,E501


def _misses_by_scipy(n, target, confidence):
    """The rule from its definition, one m at a time: the largest m whose order statistic keeps the target
    with probability >= confidence, P(Binomial(n, 1 - target) >= m + 1) >= confidence."""
    ok = [m for m in range(n) if binom.sf(m, n, 1 - target) >= confidence]
    return max(ok) if ok else None


@pytest.mark.parametrize("n", [1, 10, 52, 298, 299, 300, 700, 5000])
@pytest.mark.parametrize("target", [0.99, 0.98, 0.95, 0.8])
def test_misses_allowed_against_scipy_binom(n, target):
    m = misses_allowed(n, target, 0.95)
    assert m == _misses_by_scipy(n, target, 0.95)
    if m is not None:   # the same m from the one-sided Clopper-Pearson lower bound of n - m kept of n ...
        assert beta.ppf(0.05, n - m, m + 1) >= target - 1e-12
        if m + 1 < n:   # ... and one more miss would break it
            assert beta.ppf(0.05, n - m - 1, m + 2) < target


def test_articles_needed_is_the_smallest_n_with_target_to_the_n_below_one_minus_confidence():
    for target, confidence in [(0.99, 0.95), (0.98, 0.95), (0.95, 0.95), (0.99, 0.9), (0.9, 0.99)]:
        needed = articles_needed(target, confidence)
        assert target ** needed <= 1 - confidence < target ** (needed - 1)
        assert misses_allowed(needed, target, confidence) == 0 and misses_allowed(needed - 1, target, confidence) is None
    assert articles_needed(0.99, 0.95) == 299 and articles_needed(0.95, 0.95) == 59
    assert articles_needed(1.0, 0.95) is None


def test_too_few_medium_plus_articles_cannot_be_certified():
    rng = np.random.default_rng(5)
    s_true, s_pred = rng.uniform(4, 10, 52), rng.uniform(0, 10, 52)
    g = guaranteed_threshold(s_true, s_pred, 4.0, 0.99, 0.95)
    assert g["threshold"] is None and not g["certified"] and g["n_relevant"] == 52
    assert g["note"] == "cannot be certified with 52 articles (needs 299)"
    g = guaranteed_threshold(s_true, s_pred, 4.0, 0.90, 0.95)           # 52 articles do certify 90%
    m = _misses_by_scipy(52, 0.90, 0.95)
    assert g["certified"] and g["misses_allowed"] == m and g["threshold"] == np.sort(s_pred)[m]
    assert (s_pred < g["threshold"]).sum() == m                        # m articles below it on validation


def test_the_guaranteed_threshold_holds_in_re_splits_and_the_plug_in_one_in_about_half():
    """A validation split of 1,000 from a pool of 10,000 synthetic articles (about 600 medium+), the other 9,000
    the test split, redrawn 300 times: the guarantee is about the share kept of new articles, and a large test
    split measures nearly that share (a small one adds its own sampling noise: with halves of 1,200 the
    guaranteed rule held 95% in 88-91% of re-splits)."""
    rng = np.random.default_rng(0)
    n, n_val = 10_000, 1_000
    s_true = np.clip(rng.normal(4.5, 2.0, n), 0, 10)
    s_pred = s_true + rng.normal(0, 0.8, n)
    for target in (0.99, 0.95):
        held = {"guaranteed": [], "plug-in": [], "skip guaranteed": [], "skip plug-in": []}
        for _ in range(300):
            perm = rng.permutation(n)
            v, t = perm[:n_val], perm[n_val:]
            rel = s_true[t] >= 4.0
            g = guaranteed_threshold(s_true[v], s_pred[v], 4.0, target, 0.95)["threshold"]
            p = choose_threshold(s_true[v], s_pred[v], 4.0, target)
            for name, thr in (("guaranteed", g), ("plug-in", p)):
                held[name].append((s_pred[t][rel] >= thr).mean() >= target)
                held["skip " + name].append((s_pred[t] < thr).mean())
        assert np.mean(held["guaranteed"]) >= 0.90, target
        assert 0.35 <= np.mean(held["plug-in"]) <= 0.65, target
        assert np.mean(held["skip guaranteed"]) < np.mean(held["skip plug-in"])   # the guarantee costs skip share


def test_test_figures_carry_exact_intervals_and_flags():
    s_true = np.r_[np.full(50, 6.0), np.full(50, 2.0)]
    s_pred = np.r_[np.full(50, 6.0), np.linspace(0, 3, 50)]
    r = figures_on_test(s_true, s_pred, np.full(100, 0.5), 4.0, 4.0, 0.99, 50, 0, 30)
    assert r["recall"] == 1.0 and r["recall_exact_ci95"][0] == pytest.approx(0.025 ** (1 / 50))   # not [1, 1]
    assert r["recall_below_target"] is False and r["skipped_too_few"] is False and r["n_skipped"] == 50
    lo, hi = r["skip_share_exact_ci95"]
    assert lo < 0.5 < hi and (lo, hi) == pytest.approx(tuple(binomtest_ci(50, 100)))
    s_pred[:10] = 1.0                                                   # 10 of 50 medium+ now skipped
    r = figures_on_test(s_true, s_pred, np.full(100, 0.5), 4.0, 4.0, 0.99, 50, 0, 80)
    assert r["recall"] == 0.8 and r["recall_below_target"] is True and r["skipped_too_few"] is True


def binomtest_ci(k, n):
    from scipy.stats import binomtest
    ci = binomtest(k, n).proportion_ci(method="exact")
    return ci.low, ci.high


def test_screen_records_both_rules_and_the_majority_tier():
    Yv, Pv = _scores(300, 2)
    Yt, Pt = _scores(300, 3)
    w = weight_vector(["a", "b"], None)
    out = screen((Yv, Pv), (Yt, Pt), w, TIERS, [0.99, 0.9], (0, 10), 50, 0, confidence=0.95)
    strict, loose = out["thresholds"]
    n_rel = int((Yv @ w >= 4.0).sum())
    assert strict["n_relevant_val"] == n_rel and strict["threshold"] is not None     # the plug-in is kept ...
    assert strict["guaranteed"]["note"] == f"cannot be certified with {n_rel} articles (needs 299)"
    assert "test" not in strict["guaranteed"]
    g = loose["guaranteed"]                                                           # ... beside the guarantee
    assert g["threshold"] == guaranteed_threshold(Yv @ w, Pv @ w, 4.0, 0.9, 0.95)["threshold"] <= loose["threshold"]
    assert g["test"]["skip_share"] == pytest.approx((Pt @ w < g["threshold"]).mean())
    m = majority_tier(Yv @ w, Yt @ w, TIERS)
    tiers_v, tiers_t = np.digitize(Yv @ w, [4, 7]), np.digitize(Yt @ w, [4, 7])
    top = np.bincount(tiers_v).argmax()
    assert m["tier"] == ("low", "medium", "high")[top] and m["accuracy"] == pytest.approx((tiers_t == top).mean())


def test_each_seed_alone_gets_its_own_guaranteed_threshold():
    """seed_skip_shares: each member's guaranteed threshold from its own validation predictions (the order
    statistic of its medium+ validation scores that misses_allowed names), applied to its own test predictions."""
    from study.screening import seed_skip_shares

    Yv, Pv = _scores(400, 2)
    Yt, Pt = _scores(300, 3)
    rng = np.random.default_rng(5)
    members_v, members_t = [Pv, Pv + rng.normal(0, 0.5, Pv.shape)], [Pt, Pt + rng.normal(0, 0.5, Pt.shape)]
    w = weight_vector(["a", "b"], None)
    shares = seed_skip_shares((Yv, members_v), (Yt, members_t), w, 4.0, [0.9, 0.999], 0.95)
    relevant = Yv @ w >= 4.0
    k = misses_allowed(int(relevant.sum()), 0.9, 0.95)
    for s, (pv, pt) in zip(shares[0], zip(members_v, members_t)):
        threshold = np.sort((pv @ w)[relevant])[k]
        assert s == pytest.approx(((pt @ w) < threshold).mean())
    assert shares[0][0] != shares[0][1]
    assert shares[1] == [None, None]   # 99.9% cannot be certified on these articles


def test_per_language_the_recall_at_a_guaranteed_threshold_is_counted_with_its_exact_ci():
    """A threshold that keeps the target of medium+ articles overall may keep few of one language's: the probe
    underrates the Dutch articles here. Each language's skip share, medium+ count and recall are re-counted, the
    recall's CI re-derived from the beta distribution, and only Dutch is below the target."""
    from scipy.stats import beta
    rng = np.random.default_rng(7)
    n_en, n_nl = 400, 120
    s_true = rng.uniform(0, 9, n_en + n_nl)
    langs = np.array(["en"] * n_en + ["nl"] * n_nl)
    s_pred = s_true + rng.normal(0, 0.3, len(s_true)) - np.where(langs == "nl", 2.5, 0.0)   # Dutch scored low
    Y, P = s_true[:, None], s_pred[:, None]
    half = len(Y) // 2
    order = rng.permutation(len(Y))
    val, test = order[:half], order[half:]
    out = screen((Y[val], P[val]), (Y[test], P[test]), np.array([1.0]), TIERS, [0.95], [0, 10], 50, 0,
                 languages=langs[test])
    g = out["thresholds"][0]["guaranteed"]
    assert g["certified"]
    for lang, r in g["per_language"].items():
        here = langs[test] == lang
        skip, rel = s_pred[test][here] < g["threshold"], s_true[test][here] >= 4.0
        kept = int((~skip & rel).sum())
        assert (r["n"], r["n_skipped"], r["n_relevant"], r["n_kept_relevant"]) == (here.sum(), skip.sum(), rel.sum(), kept)
        n = rel.sum()
        lo = 0.0 if kept == 0 else beta.ppf(0.025, kept, n - kept + 1)
        hi = 1.0 if kept == n else beta.ppf(0.975, kept + 1, n - kept)
        assert r["recall_exact_ci95"] == pytest.approx([lo, hi])
        assert r["recall_below_target"] == (hi < 0.95)
    assert list(g["per_language"]) == ["en", "nl"]   # largest first
    assert g["per_language"]["nl"]["recall_below_target"] and not g["per_language"]["en"]["recall_below_target"]
    assert "per_language" not in screen((Y[val], P[val]), (Y[test], P[test]), np.array([1.0]), TIERS, [0.95], [0, 10],
                                        50, 0)["thresholds"][0]["guaranteed"]

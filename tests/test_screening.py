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
    assert len(curve["threshold"]) == 101 and curve["skip_share"][0] == 0.0 and curve["recall"][0] == 1.0
    assert np.all(np.diff(curve["skip_share"]) >= 0) and np.all(np.diff(curve["recall"]) <= 0)

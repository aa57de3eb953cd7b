"""The three probes: they learn, they are seeded, the MLP keeps its best epoch, pickles load back."""
import pickle

import numpy as np
import pytest
from sklearn.base import clone

from conftest import planted
from study.artifacts import load_pickle, save_pickle
from study.config import load_config
from study.errors import StudyError
from study import probes as probes_module
from study.probes import (LightGBMProbe, MLPProbe, RidgeProbe, SeedEnsemble, fit_warnings, make_probe, member_seeds,
                          probe_from_bundle, seed_record)

CFG = load_config()


def _probe(kind, n_seeds=None, seed=42, **over):
    """The config's probe (a seed ensemble of `n_seeds` members for the MLP and LightGBM when given)."""
    probe = make_probe(kind, getattr(CFG.probe_methods, kind), score_range=CFG.score_range, seed=seed, n_seeds=n_seeds)
    single = probe.estimator if isinstance(probe, SeedEnsemble) else probe
    if kind == "lightgbm":
        over.setdefault("params", {**single.params, "n_estimators": 300})
    single.set_params(**over)
    return probe


@pytest.fixture(scope="module")
def data():
    X, Y = planted(900, d=16, k=3, seed=1)
    return X[:600], Y[:600], X[600:750], Y[600:750], X[750:], Y[750:]


@pytest.mark.parametrize("kind", ["ridge", "mlp", "lightgbm"])
def test_probe_learns_a_planted_signal_and_is_deterministic(kind, data):
    Xtr, Ytr, Xv, Yv, Xte, Yte = data
    mean_mae = np.abs(Yte - Ytr.mean(0)).mean()
    p1 = _probe(kind).fit(Xtr, Ytr, Xv, Yv)
    P1 = p1.predict(Xte)
    mae = np.abs(P1 - Yte).mean()
    assert P1.shape == Yte.shape
    assert mae < {"ridge": 0.35, "mlp": 0.5, "lightgbm": 0.7}[kind] * mean_mae, (mae, mean_mae)
    P2 = _probe(kind).fit(Xtr, Ytr, Xv, Yv).predict(Xte)
    np.testing.assert_array_equal(P1, P2)
    assert p1.val_mae_ == pytest.approx(np.abs(p1.predict(Xv) - Yv).mean(), rel=1e-5)


def test_predictions_are_clipped_to_the_score_range(data):
    Xtr, Ytr, Xv, Yv, Xte, _ = data
    probe = RidgeProbe(alphas=(0.01,), score_range=(4.0, 6.0)).fit(Xtr, Ytr, Xv, Yv)
    P = probe.predict(Xte * 5)
    assert P.min() >= 4.0 and P.max() <= 6.0 and (P == 6.0).any() and (P == 4.0).any()


def test_ridge_picks_alpha_on_validation_and_scaler_sees_train_only(data):
    Xtr, Ytr, Xv, Yv, _, _ = data
    probe = RidgeProbe(alphas=(0.01, 1.0, 1e6)).fit(Xtr, Ytr, Xv, Yv)
    maes = probe.val_mae_by_alpha_
    assert probe.alpha_ == min(maes, key=maes.get) and probe.alpha_ != 1e6
    np.testing.assert_allclose(probe.scaler_.mean_, Xtr.mean(0), rtol=1e-5, atol=1e-6)
    # an sklearn estimator: clone and 1-D targets work
    one = clone(probe).fit(Xtr, Ytr[:, 0], Xv, Yv[:, 0])
    assert one.predict(Xv).shape == (len(Xv),)


def test_mlp_restores_the_best_epoch_not_the_last(data):
    Xtr, Ytr, Xv, Yv, _, _ = data
    # a large learning rate makes validation MAE bounce, so the last epoch is not the best
    probe = MLPProbe(learning_rate=0.05, epochs=30, patience=5, random_state=3).fit(Xtr, Ytr, Xv, Yv)
    hist = probe.history_
    assert probe.best_epoch_ == int(np.argmin(hist)) + 1
    assert probe.epochs_run_ > probe.best_epoch_          # it went on past the best epoch
    assert hist[-1] > min(hist)                            # ... and got worse
    assert probe.val_mae_ == pytest.approx(min(hist), rel=1e-6)  # the kept weights are the best epoch's
    assert probe.epochs_run_ == min(30, probe.best_epoch_ + 5)


def test_bundle_holds_plain_objects_and_rebuilds_the_same_probe(tmp_path, data):
    Xtr, Ytr, Xv, Yv, Xte, _ = data
    probe = MLPProbe(epochs=5, patience=3).fit(Xtr, Ytr, Xv, Yv)
    path = tmp_path / "p.pkl"
    save_pickle(path, probe.to_bundle({"val_mae": probe.val_mae_}))
    bundle = load_pickle(path)
    # a single-seed MLP is saved as a one-member seed ensemble
    assert set(bundle) == {"format", "kind", "scaler", "metadata", "model_config", "seeds", "members"}
    assert bundle["seeds"] == [42] and len(bundle["members"]) == 1
    assert bundle["model_config"] == {"input_dim": 16, "output_dim": 3, "hidden_sizes": [256, 128], "dropout": 0.2}
    state = bundle["members"][0]["state_dict"]
    assert all(type(a) is np.ndarray and a.dtype == np.float32 for a in state.values())
    assert [k for k in state] == ["network.0.weight", "network.0.bias", "network.3.weight",
                                  "network.3.bias", "network.6.weight", "network.6.bias"]
    np.testing.assert_array_equal(probe_from_bundle(bundle).predict(Xte), probe.predict(Xte))


def test_mlp_loss_is_l1_by_default_and_mse_on_request(data):
    Xtr, Ytr, Xv, Yv, _, _ = data
    assert CFG.probe_methods.mlp.loss == "l1" and _probe("mlp").loss == "l1"
    l1 = _probe("mlp", epochs=3).fit(Xtr, Ytr, Xv, Yv)
    mse = _probe("mlp", epochs=3, loss="mse").fit(Xtr, Ytr, Xv, Yv)
    assert l1.history_ != mse.history_   # the loss reaches the optimiser


def test_tampered_pickle_is_refused(tmp_path, data):
    Xtr, Ytr, Xv, Yv, _, _ = data
    path = tmp_path / "r.pkl"
    save_pickle(path, RidgeProbe().fit(Xtr, Ytr, Xv, Yv).to_bundle({}))
    assert (tmp_path / "r.pkl.sha256").read_text().split()[0] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(StudyError, match="checksum differs"):
        load_pickle(path)
    (tmp_path / "r.pkl.sha256").unlink()
    with pytest.raises(StudyError, match="is missing"):
        load_pickle(path)


def test_lightgbm_stops_early_on_validation(data):
    Xtr, Ytr, Xv, Yv, _, _ = data
    probe = LightGBMProbe(params={"n_estimators": 2000, "learning_rate": 0.3}, early_stopping_rounds=20).fit(Xtr, Ytr, Xv, Yv)
    its = probe.selected()["best_iterations"]
    assert len(its) == 3 and all(0 < i < 2000 for i in its)
    assert len(pickle.loads(pickle.dumps(probe)).predict(Xv)) == len(Xv)


# -- seeds -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["mlp", "lightgbm"])
def test_a_seed_ensemble_predicts_the_mean_of_its_members_fitted_separately(kind, data):
    Xtr, Ytr, Xv, Yv, Xte, _ = data
    over = {"epochs": 8} if kind == "mlp" else {"params": {**CFG.probe_methods.lightgbm.params, "n_estimators": 30}}
    ensemble = _probe(kind, n_seeds=3, **over).fit(Xtr, Ytr, Xv, Yv)
    assert ensemble.seeds_ == [42, 43, 44] == member_seeds(42, 3)
    alone = [_probe(kind, seed=s, **over).fit(Xtr, Ytr, Xv, Yv) for s in (42, 43, 44)]
    P = np.stack([a.predict(Xte) for a in alone])
    assert not np.array_equal(P[0], P[1])   # the seeds do differ
    np.testing.assert_array_equal(ensemble.predict(Xte), P.mean(axis=0))
    for member, a in zip(ensemble.member_outputs(Xte), P):
        np.testing.assert_array_equal(member, a)
    assert ensemble.member_val_ == [a.val_mae_ for a in alone]
    assert ensemble.val_mae_ == pytest.approx(np.abs(ensemble.predict(Xv) - Yv).mean(), rel=1e-6)
    rec = seed_record(ensemble)
    assert rec == {"n": 3, "seeds": [42, 43, 44], "stochastic": True, "val": [a.val_mae_ for a in alone]}
    # the file holds every member and loads back to the same predictions
    again = probe_from_bundle(pickle.loads(pickle.dumps(ensemble.to_bundle({}))))
    np.testing.assert_array_equal(again.predict(Xte), ensemble.predict(Xte))


@pytest.mark.parametrize("kind", ["mlp", "lightgbm"])
def test_one_seed_is_exactly_the_single_seed_probe(kind, data):
    Xtr, Ytr, Xv, Yv, Xte, _ = data
    over = {"epochs": 6} if kind == "mlp" else {"params": {**CFG.probe_methods.lightgbm.params, "n_estimators": 60}}
    one = _probe(kind, n_seeds=1, **over).fit(Xtr, Ytr, Xv, Yv)
    single = _probe(kind, **over).fit(Xtr, Ytr, Xv, Yv)
    np.testing.assert_array_equal(one.predict(Xte), single.predict(Xte))
    assert one.val_mae_ == single.val_mae_
    # the single-seed probe's file is a one-member ensemble's
    np.testing.assert_array_equal(probe_from_bundle(single.to_bundle({})).predict(Xte), single.predict(Xte))
    assert seed_record(_probe("ridge").fit(Xtr, Ytr, Xv, Yv))["stochastic"] is False


@pytest.mark.slow
def test_lightgbm_seeds_fitted_in_worker_processes_are_reproducible_and_the_same(data, monkeypatch):
    """Large inputs share LightGBM's boosters out over worker processes (one thread each on 2 cores): the same
    seeds give the same bytes twice, and the same boosters as fitting them here one after another. No worker is left
    idling after a fit (while joblib's idle workers lived, later fits in this process ran up to 9x slower)."""
    import multiprocessing

    Xtr, Ytr, Xv, Yv, Xte, _ = data
    over = {"params": {**CFG.probe_methods.lightgbm.params, "n_estimators": 40}}
    sequential = _probe("lightgbm", n_seeds=2, **over).fit(Xtr, Ytr, Xv, Yv).predict(Xte)
    monkeypatch.setattr(probes_module, "PARALLEL_MIN_VALUES", 0)
    monkeypatch.setattr(probes_module, "available_cores", lambda: 2)
    first = _probe("lightgbm", n_seeds=2, **over).fit(Xtr, Ytr, Xv, Yv).predict(Xte)
    assert not [p for p in multiprocessing.active_children() if "Loky" in type(p).__name__]
    second = _probe("lightgbm", n_seeds=2, **over).fit(Xtr, Ytr, Xv, Yv).predict(Xte)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, sequential)


def test_lightgbm_bins_once_for_every_dimension_and_seed_and_gives_the_boosters_of_a_fresh_dataset(data, monkeypatch):
    """One pair of binned datasets for 2 seeds x 3 dimensions (not 6 pairs), and each booster is the one LightGBM
    gives on a dataset built for it alone, byte for byte."""
    import lightgbm as lgb

    Xtr, Ytr, Xv, Yv, _, _ = data
    built = []
    construct = lgb.Dataset.construct
    monkeypatch.setattr(lgb.Dataset, "construct", lambda self: (built.append(self), construct(self))[1])
    over = {"params": {**CFG.probe_methods.lightgbm.params, "n_estimators": 40}}
    probe = _probe("lightgbm", n_seeds=2, **over)
    probe.fit(Xtr, Ytr, Xv, Yv)
    assert len({id(d) for d in built}) == 2   # the training set and its validation set
    monkeypatch.setattr(lgb.Dataset, "construct", construct)
    member, X, Xval = probe.members_[1], probe.scaler_.transform(Xtr), probe.scaler_.transform(Xv)
    params = {"verbose": -1, "deterministic": True, "force_row_wise": True, "objective": "regression", "metric": "l1",
              **over["params"], "seed": 43, "n_jobs": probes_module.available_cores()}
    rounds = params.pop("n_estimators")
    train = lgb.Dataset(X.astype(np.float32), np.ascontiguousarray(Ytr[:, 2]))
    alone = lgb.train(params, train, num_boost_round=rounds, valid_sets=[lgb.Dataset(Xval.astype(np.float32), np.ascontiguousarray(Yv[:, 2]),
                      reference=train)], callbacks=[lgb.early_stopping(probe.estimator.early_stopping_rounds, verbose=False)])
    assert member.boosters_[2].model_to_string() == alone.model_to_string()


def test_mlp_seeds_trained_as_one_network_are_each_the_seed_trained_alone(data):
    """Members that stop early at different epochs leave the batched network; each member is still exactly the
    network its seed gives alone (its own init, data order and dropout masks)."""
    Xtr, Ytr, Xv, Yv, Xte, _ = data
    over = {"epochs": 40, "patience": 2, "learning_rate": 0.01}
    ensemble = _probe("mlp", n_seeds=3, **over).fit(Xtr, Ytr, Xv, Yv)
    alone = [_probe("mlp", seed=s, **over).fit(Xtr, Ytr, Xv, Yv) for s in (42, 43, 44)]
    runs = [m.epochs_run_ for m in ensemble.members_]
    assert len(set(runs)) > 1 and max(runs) < 40, runs   # they stopped at different epochs, before the last
    for member, out, a in zip(ensemble.members_, ensemble.member_outputs(Xte), alone):
        assert (member.best_epoch_, member.epochs_run_, member.history_) == (a.best_epoch_, a.epochs_run_, a.history_)
        np.testing.assert_array_equal(out, a.predict(Xte))


def test_the_mlp_runs_on_the_device_it_is_given(data, monkeypatch):
    """train_probes.py --mlp-device auto: CUDA when torch sees one, else the CPU; the fitted network comes back on
    the CPU either way (its bundle holds numpy arrays)."""
    import torch

    from study.embedders import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert str(resolve_device("auto")) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert str(resolve_device("auto")) == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    Xtr, Ytr, Xv, Yv, _, _ = data
    probe = make_probe("mlp", CFG.probe_methods.mlp, score_range=CFG.score_range, seed=42, n_seeds=2,
                       device=str(resolve_device("auto")))
    probe.estimator.set_params(epochs=2)
    probe.fit(Xtr, Ytr, Xv, Yv)
    assert [m.device for m in probe.members_] == ["cpu", "cpu"]
    assert all(p.device.type == "cpu" for m in probe.members_ for p in m.network_.parameters())


def test_member_seeds_stay_within_what_lightgbm_takes():
    assert member_seeds(2**31 - 2, 3) == [2**31 - 2, 2**31 - 1, 0]


# -- degenerate fits ---------------------------------------------------------------------------------
def test_ridge_alpha_at_the_edge_of_its_grid_warns_and_an_inner_one_does_not():
    X, Y = planted(400, d=32, k=3, seed=0, noise=2.0)   # 60 noisy training rows: some shrinkage helps
    inner = RidgeProbe(alphas=(1e-3, 30, 1e5)).fit(X[:60], Y[:60], X[60:], Y[60:])
    assert inner.alpha_ == 30 and fit_warnings("ridge", inner.selected(), list("abc")) == []
    edge = RidgeProbe(alphas=(1e-3, 0.01)).fit(X[:60], Y[:60], X[60:], Y[60:])   # wants more than the grid has
    assert edge.alpha_ == 0.01
    (line,) = fit_warnings("ridge", edge.selected(), list("abc"))
    assert "alpha 0.01" in line and "highest value of its grid (0.001 to 0.01)" in line
    assert "widen probe_methods.ridge.alphas in config.yaml" in line


def test_a_lightgbm_dimension_stopped_after_one_round_warns_and_names_it(data):
    Xtr, Ytr, Xv, Yv, _, _ = data
    flat = Ytr.copy()
    flat[:, 1] = 5.0   # nothing to learn on dimension b
    probe = _probe("lightgbm", n_seeds=2, params={**CFG.probe_methods.lightgbm.params, "n_estimators": 100}).fit(Xtr, flat, Xv, Yv)
    its = [m["best_iterations"] for m in probe.selected()["members"]]
    assert [i[1] for i in its] == [1, 1] and all(i[0] > 1 and i[2] > 1 for i in its)
    (line,) = fit_warnings("lightgbm", probe.selected(), ["a", "b", "c"])
    assert "dimension b stopped after 1 boosting round in 2 of 2 seeds" in line and "constant predictor" in line
    assert "min_child_samples" in line
    sound = _probe("lightgbm", n_seeds=2, params={**CFG.probe_methods.lightgbm.params, "n_estimators": 100}).fit(Xtr, Ytr, Xv, Yv)
    assert fit_warnings("lightgbm", sound.selected(), ["a", "b", "c"]) == []

"""The probes: three scikit-learn regressors for 0-10 scores (`fit(X, Y, X_val, Y_val)`, `predict(X)`)
and, for yes/no datasets (task: classification), three classifiers with `predict_proba` and a
threshold chosen on validation (`LogisticProbe`, `MLPClassifierProbe`, `LightGBMClassifierProbe`,
see `_Classifier`; their bundles add `threshold`, docs/DESIGN.md "Artifacts").

Each standardises its inputs (scaler fitted on the training rows only, kept as
`scaler_`), selects its hyper-parameter or stopping point on the validation rows (when
none are given it holds out 15% of the training rows, seeded) and clips predictions to
`score_range`. `Y` is (n, n_dims); a 1-D `y` is accepted and predicted back as 1-D.

A fitted probe is saved as a bundle of plain objects (`to_bundle`: numpy arrays, a scikit-learn
StandardScaler, dicts, lists, strings, numbers; no torch objects, since unpickling a torch tensor
runs a full `torch.load`), so a serving stage
loads it with a bare `pickle.load` without this project; `probe_from_bundle` rebuilds the
estimator. Prediction from a bundle: scaler.transform(X) as float32 -> the model -> clip
to metadata["score_range"]:
- ridge: `X @ coef.T + intercept`;
- mlp: `nn.Sequential` of Linear/ReLU/Dropout blocks per `model_config["hidden_sizes"]`, then
  a final Linear, loaded from a member's `state_dict` (keys `network.<i>.weight|bias`, float32 numpy
  arrays: `torch.from_numpy` each), in eval mode;
- lightgbm: `lightgbm.Booster(model_str=s).predict(X, num_iteration=it)` per dimension of a member.

The stochastic probes (MLP, LightGBM; scores and yes/no) are seed ensembles (`SeedEnsemble`,
`SeedEnsembleClassifier`): `n_seeds` members fitted alike with the seeds random_state,
random_state + 1, ... (`member_seeds`), fitted together (`fit_members`: the MLP's as one batched network,
LightGBM's on binned datasets built once), each exactly the single-seed probe of that seed; the probe predicts the mean of its members' clipped
scores (yes/no: their mean P(yes), with a threshold chosen on the mean). Their bundle lists the
members under `members` (each what one fitted probe holds: `state_dict`, or `boosters` +
`best_iterations`, or `booster` + `best_iteration`), their `seeds`, and the MLP's shared
`model_config`. Ridge and logistic regression are deterministic and fitted once.
"""
from __future__ import annotations

import hashlib
import math
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y

from study.artifacts import check_lightgbm_models, lightgbm_models_written
from study.config import MAX_SEED, PROBES
from study.embedders import available_cores
from study.errors import StudyError



BUNDLE_FORMAT = 3   # 3: MLP and LightGBM as seed ensembles (`members`); 2: one seed; 1 held torch tensors
STOCHASTIC = ("mlp", "lightgbm")   # the probes fitted with config `probe_seeds` seeds (ridge, logistic: once)
DEFAULT_HIDDEN = [256, 128]   # the layout a serving stage that assumes the study's MLP can load


def _mae(Y, P) -> float:
    return float(np.mean(np.abs(np.asarray(Y) - np.asarray(P))))


class _Bundled:
    """The bundle of every probe (module docstring): format, kind, scaler, metadata, what its task adds
    (`_bundle_frame`: the yes/no threshold; score_range or task in the metadata) and the model's own state."""

    def to_bundle(self, metadata: dict) -> dict:
        """The plain-object bundle of a fitted probe, `metadata` included."""
        check_is_fitted(self, "scaler_")
        extra, meta = self._bundle_frame()
        return {"format": BUNDLE_FORMAT, "kind": self.kind, "scaler": self.scaler_, **extra,
                "metadata": {**metadata, **meta}, **self._bundle_state()}

    def _bundle_state(self) -> dict:
        return self._state()

    @classmethod
    def from_bundle(cls, bundle: dict):
        """A fitted probe that predicts exactly what the bundled one did."""
        probe = cls._unfitted(bundle)
        probe.scaler_ = bundle["scaler"]
        probe.n_features_in_ = int(probe.scaler_.n_features_in_)
        probe._restore(bundle)
        probe._restored(bundle)
        return probe


def _scaled(est, X):
    """X validated against a fitted probe `est` and scaled as it was fitted."""
    check_is_fitted(est, "scaler_")
    X = check_array(X, dtype=np.float32)
    if X.shape[1] != est.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, the probe was fitted on {est.n_features_in_}")
    return est.scaler_.transform(X).astype(np.float32)


class _Probe(_Bundled, RegressorMixin, BaseEstimator):
    """Shared input checks, scaling, validation split, clipping."""
    task = "regression"

    def fit(self, X, Y, X_val=None, Y_val=None, sample_weight=None):
        """Fit on (X, Y), choosing on (X_val, Y_val) (absent: 15% of the training rows held out). `sample_weight`:
        one positive weight per training row (teacher-scored articles weigh less than labelled ones); None: all 1."""
        X, Y = check_X_y(X, Y, multi_output=True, y_numeric=True, dtype=np.float32)
        weighted = {}
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float32)
            if w.shape != (len(X),) or not (np.isfinite(w).all() and (w > 0).all()) or X_val is None:
                raise ValueError("sample_weight: one positive finite weight per training row, with validation data")
            weighted = {"sample_weight": w}
        self.one_d_ = Y.ndim == 1
        Y = Y.reshape(len(Y), -1).astype(np.float32)
        if X_val is None:
            X, X_val, Y, Y_val = train_test_split(X, Y, test_size=0.15, random_state=self.random_state)
        else:
            X_val, Y_val = check_X_y(X_val, Y_val, multi_output=True, y_numeric=True, dtype=np.float32)
            Y_val = Y_val.reshape(len(Y_val), -1).astype(np.float32)
            if X_val.shape[1] != X.shape[1] or Y_val.shape[1] != Y.shape[1]:
                raise ValueError(f"validation data has {X_val.shape[1]} features / {Y_val.shape[1]} targets, "
                                 f"training data {X.shape[1]} / {Y.shape[1]}")
        self.n_features_in_, self.n_outputs_ = X.shape[1], Y.shape[1]
        self.scaler_ = StandardScaler().fit(X)
        t0 = time.perf_counter()
        self._fit(self.scaler_.transform(X).astype(np.float32), Y,
                  self.scaler_.transform(X_val).astype(np.float32), Y_val, **weighted)
        self.fit_seconds_ = time.perf_counter() - t0
        self.val_mae_ = self._validation_score(Y_val, self._output(self.scaler_.transform(X_val).astype(np.float32)))
        return self

    _validation_score = staticmethod(_mae)   # what chooses on validation (lower is better)

    def _checked(self, X):
        return _scaled(self, X)

    def predict(self, X):
        P = self._output(self._checked(X))
        return P.ravel() if self.one_d_ else P

    def _output(self, X):
        """The clipped scores of scaled inputs."""
        return self._clip(self._predict(X))

    def _clip(self, P):
        low, high = self.score_range
        return np.clip(np.asarray(P, dtype=np.float32), low, high)

    def selected(self) -> dict:
        """The hyper-parameters chosen on validation data, for the metadata."""
        return self._selected()

    def _bundle_frame(self) -> tuple[dict, dict]:
        return {}, {"score_range": [float(v) for v in self.score_range]}

    def _restored(self, bundle: dict) -> None:
        self.one_d_ = False
        self.n_outputs_ = int(self._output(np.zeros((1, self.n_features_in_), np.float32)).shape[1])

    @classmethod
    def _unfitted(cls, bundle: dict) -> "_Probe":
        return cls(score_range=tuple(bundle["metadata"]["score_range"]))


class RidgeProbe(_Probe):
    """Multi-output ridge regression; alpha chosen by validation MAE from `alphas`."""
    kind = "ridge"

    def __init__(self, alphas=(0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0), score_range=(0.0, 10.0),
                 random_state=42):
        self.alphas = alphas
        self.score_range = score_range
        self.random_state = random_state

    def _fit(self, X, Y, X_val, Y_val, sample_weight=None):
        self.val_mae_by_alpha_ = {}
        best = None
        for alpha in self.alphas:
            model = Ridge(alpha=float(alpha)).fit(X, Y, sample_weight=sample_weight)
            # one score dimension: scikit-learn may give 1-D coefficients and predictions for a (n, 1) target
            mae = _mae(Y_val, self._clip(model.predict(X_val)).reshape(len(X_val), -1))
            self.val_mae_by_alpha_[float(alpha)] = mae
            if best is None or mae < best[0]:
                best = (mae, float(alpha), model)
        _, self.alpha_, model = best
        self.coef_ = np.asarray(model.coef_).reshape(Y.shape[1], -1)
        self.intercept_ = np.asarray(model.intercept_).reshape(Y.shape[1])

    def _predict(self, X):
        return X @ self.coef_.T + self.intercept_

    def _state(self) -> dict:
        return {"coef": self.coef_, "intercept": self.intercept_}

    def _restore(self, bundle):
        self.coef_, self.intercept_ = np.asarray(bundle["coef"]), np.asarray(bundle["intercept"])

    def _selected(self):
        return {"alpha": self.alpha_, "val_mae_by_alpha": self.val_mae_by_alpha_,
                "alpha_at_grid_edge": self.alpha_ in (min(self.alphas), max(self.alphas))}


class LinearHead(RidgeProbe):
    """The linear head of a fine-tuned encoder (study/finetune.py), served as a probe on that encoder's own pooled
    output: scores = X @ coef.T + intercept, clipped to the score range; its scaler is the identity. It is not fitted
    here (finetune_encoder.py trains it with the encoder); `from_head` wraps a trained head."""
    kind = "head"

    def fit(self, X, Y, X_val=None, Y_val=None):
        raise StudyError("a fine-tuned encoder's head is trained with its encoder (finetune_encoder.py), not here")

    @classmethod
    def from_head(cls, weight, bias, score_range) -> "LinearHead":
        head = cls(score_range=tuple(score_range))
        weight = np.asarray(weight, np.float32)
        head.coef_, head.intercept_ = weight, np.asarray(bias, np.float32)
        head.scaler_ = StandardScaler()   # the identity: (x - 0) / 1
        dim = weight.shape[1]
        head.scaler_.mean_, head.scaler_.scale_, head.scaler_.var_ = np.zeros(dim), np.ones(dim), np.ones(dim)
        head.scaler_.n_features_in_, head.scaler_.n_samples_seen_ = dim, np.float64(1)
        head.n_features_in_, head.n_outputs_, head.one_d_ = weight.shape[1], weight.shape[0], False
        return head

    def _selected(self):
        return {}


class MLPNet(torch.nn.Module):
    """Linear -> ReLU -> Dropout per hidden layer, then a final Linear, as `self.network`.

    The layout the LLM Distillery screening stage loads from `model_config` + `state_dict`.
    """

    def __init__(self, input_dim: int, output_dim: int, hidden_sizes=(256, 128), dropout: float = 0.2):
        super().__init__()
        layers, width = [], input_dim
        for h in hidden_sizes:
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
            width = h
        layers.append(torch.nn.Linear(width, output_dim))
        self.network = torch.nn.Sequential(*layers)

    def forward(self, x):
        return self.network(x)


class _Member:
    """The single-seed form of a stochastic probe (a member of a seed ensemble): its bundle is that of a one-member
    ensemble, so it loads as one (`probe_from_bundle`) and predicts the same."""

    def _bundle_state(self) -> dict:
        return _members_state([self], [int(self.random_state)])

    def _fit(self, X, Y, X_val, Y_val, **weighted):
        self._fit_together([self], X, Y, X_val, Y_val, **weighted)


def _members_state(members: list, seeds: list[int]) -> dict:
    """A seed ensemble's bundle entries: what every member holds alike (the MLP's model_config) once, `seeds`, and
    each member's own state under `members`."""
    states = [m._state() for m in members]
    shared = {k: states[0][k] for k in ("model_config",) if k in states[0]}
    return {**shared, "seeds": [int(x) for x in seeds],
            "members": [{k: v for k, v in s.items() if k not in shared} for s in states]}


class _MLPBundle:
    """What the MLP probes share: their settings, `model_config` (the layout a serving stage builds) and their
    bundle: model_config and the weights of the best epoch as numpy arrays (keys `network.<i>.weight|bias`)."""

    def __init__(self, hidden_sizes=(256, 128), dropout=0.2, learning_rate=1e-3, weight_decay=0.0,
                 epochs=100, patience=10, batch_size=64, random_state=42, device="cpu"):
        self.hidden_sizes = hidden_sizes
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.random_state = random_state
        self.device = device

    @property
    def model_config(self) -> dict:
        return {"input_dim": self.n_features_in_, "output_dim": self._output_dim(),
                "hidden_sizes": list(self.hidden_sizes), "dropout": float(self.dropout)}

    def _state(self) -> dict:
        return {"model_config": self.model_config,
                "state_dict": {k: v.detach().cpu().numpy().copy() for k, v in self.network_.state_dict().items()}}

    def _restore(self, bundle):
        config = bundle["model_config"]
        self.hidden_sizes, self.dropout = tuple(config["hidden_sizes"]), config["dropout"]
        net = MLPNet(**config)
        net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in bundle["state_dict"].items()})
        self.network_ = net.eval()


class StackedMLP(torch.nn.Module):
    """Several MLPNets of one layout side by side, trained as one network: layer l's weights as one (S, in, out)
    tensor and its biases as (S, 1, out), so a step of S members is one batched matmul per layer (`torch.baddbmm`)
    instead of S networks' steps. Member m computes exactly its own MLPNet's function (x @ W.T + b, ReLU, dropout
    from the masks given); the members share nothing but the tensors they are stored in."""

    def __init__(self, nets: list[MLPNet]):
        super().__init__()
        layers = [i for i, m in enumerate(nets[0].network) if isinstance(m, torch.nn.Linear)]
        self.layers = layers
        self.weights = torch.nn.ParameterList(
            [torch.stack([n.network[i].weight.detach().T for n in nets]).contiguous() for i in layers])
        self.biases = torch.nn.ParameterList(
            [torch.stack([n.network[i].bias.detach()[None] for n in nets]).contiguous() for i in layers])

    def forward(self, x, masks=None):
        """x (S, rows, in) -> (S, rows, out); `masks`: per hidden layer (S, rows, width), the dropout masks already
        scaled by 1 / (1 - p) (training), or None (evaluation: no dropout)."""
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if k < last:
                x = torch.relu(x)
                if masks is not None:
                    x = x * masks[k]
        return x

    def keep(self, rows: list[int], opt: torch.optim.Adam) -> torch.optim.Adam:
        """Keep only the members at `rows` (the others stopped early), their Adam moments with them; returns the
        optimiser of the smaller network (Adam is elementwise, so a member's steps do not change)."""
        index = torch.as_tensor(rows, device=self.weights[0].device)
        new_opt = None
        moved = []
        for plist in (self.weights, self.biases):
            for j, p in enumerate(plist):
                state = opt.state.get(p, {})
                q = torch.nn.Parameter(p.detach().index_select(0, index).contiguous())
                plist[j] = q
                moved.append((q, state))
        new_opt = torch.optim.Adam(self.parameters(), **{k: opt.defaults[k] for k in ("lr", "betas", "eps", "weight_decay")})
        for q, state in moved:
            if state:
                new_opt.state[q] = {k: (v.index_select(0, index) if torch.is_tensor(v) and v.dim() else v.clone()
                                        if torch.is_tensor(v) else v) for k, v in state.items()}
        return new_opt

    def member_state(self, m: int) -> dict:
        """Member m's MLPNet state_dict (keys network.<i>.weight|bias) as CPU tensors."""
        out = {}
        for i, w, b in zip(self.layers, self.weights, self.biases):
            out[f"network.{i}.weight"] = w[m].detach().T.contiguous().cpu().clone()
            out[f"network.{i}.bias"] = b[m, 0].detach().cpu().clone()
        return out


def fit_mlp_members(members: list, X, T, X_val, *, bias, loss_fn, val_score, sample_weight=None) -> None:
    """Train the MLPNets of `members` (estimators alike but for `random_state`) together as one StackedMLP with Adam
    on (X, targets T) in mini-batches, each member's last bias set to `bias` first; each member stops early on its
    own `val_score(its validation predictions)` (lower is better) after `patience` epochs without progress, leaves
    the batch, and gets its best epoch back. What a member sees comes from its seed alone: its initial weights
    (torch.manual_seed(seed), then MLPNet), and from torch.Generator(seed) its data order (a permutation an epoch)
    and its dropout masks (drawn an epoch at a time after the permutation); its loss is its own mean over its
    batch. So a member trained beside others is the member trained alone (`members` of one), up to the float
    rounding of the batched matmul. `sample_weight` (one per row of X): each row's loss weighted by it (a
    batch's loss the weighted sum over its rows / the sum of their weights). Sets on each member network_ (on the CPU), history_ (its validation score
    per epoch), best_epoch_ and epochs_run_."""
    est = members[0]
    device = torch.device(est.device)
    nets = []
    for m in members:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(m.random_state)
            nets.append(MLPNet(**est.model_config))
    net = StackedMLP(nets).to(device)
    with torch.no_grad():
        net.biases[-1].copy_(torch.as_tensor(bias, dtype=torch.float32, device=device).reshape(1, 1, -1)
                             .expand_as(net.biases[-1]))
    gens = [torch.Generator().manual_seed(m.random_state) for m in members]
    opt = torch.optim.Adam(net.parameters(), lr=est.learning_rate, weight_decay=est.weight_decay)
    Xt, Tt = torch.from_numpy(X).to(device), torch.from_numpy(T).to(device)
    Wt = None if sample_weight is None else torch.from_numpy(np.asarray(sample_weight, np.float32)).to(device)
    Xv = torch.from_numpy(X_val).to(device)
    n, widths, p = len(Xt), list(est.hidden_sizes), float(est.dropout)
    active = list(range(len(members)))   # members still training, in the order of the network's rows
    best, bad, best_state = [np.inf] * len(members), [0] * len(members), [None] * len(members)
    for m in members:
        m.history_ = []
    for epoch in range(1, est.epochs + 1):
        perms = torch.stack([torch.randperm(n, generator=gens[a]) for a in active]).to(device)
        masks = None
        if p > 0:
            masks = [torch.stack([torch.empty(n, w).bernoulli_(1 - p, generator=gens[a]) for a in active])
                     .mul_(1 / (1 - p)).to(device) for w in widths]
        for start in range(0, n, est.batch_size):
            idx = perms[:, start:start + est.batch_size]
            out = net(Xt[idx], None if masks is None else [mk[:, start:start + est.batch_size] for mk in masks])
            if Wt is None:
                loss = loss_fn(out, Tt[idx], reduction="none").flatten(1).mean(1).sum()
            else:   # (members, rows, dims): each row's mean over dims, weighted
                w = Wt[idx]
                loss = ((loss_fn(out, Tt[idx], reduction="none").mean(2) * w).sum(1) / w.sum(1)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            pred = net(Xv.unsqueeze(0).expand(len(active), -1, -1))
        stopped = []
        for row, a in enumerate(active):
            score = val_score(pred[row])
            members[a].history_.append(score)
            if score < best[a]:
                best[a], bad[a], members[a].best_epoch_ = score, 0, epoch
                best_state[a] = net.member_state(row)
            else:
                bad[a] += 1
                if bad[a] >= est.patience:
                    stopped.append(row)
                    members[a].epochs_run_ = epoch
        if stopped:
            rows = [r for r in range(len(active)) if r not in stopped]
            active = [active[r] for r in rows]
            if not active:
                break
            opt = net.keep(rows, opt)
    for a in active:
        members[a].epochs_run_ = epoch
    for m, state in zip(members, best_state):
        single = MLPNet(**est.model_config)
        single.load_state_dict(state)
        m.network_ = single.eval()


class MLPProbe(_Member, _MLPBundle, _Probe):
    """2-layer torch MLP, Adam + L1 (or MSE) loss, early stopping on validation MAE, best epoch restored."""
    kind = "mlp"

    def __init__(self, hidden_sizes=(256, 128), dropout=0.2, learning_rate=1e-3, weight_decay=0.0,
                 epochs=100, patience=10, batch_size=64, score_range=(0.0, 10.0), random_state=42,
                 device="cpu", loss="l1"):
        super().__init__(hidden_sizes, dropout, learning_rate, weight_decay, epochs, patience, batch_size,
                         random_state, device)
        self.score_range = score_range
        self.loss = loss

    def _output_dim(self) -> int:
        return self.n_outputs_

    def _fit_together(self, members, X, Y, X_val, Y_val, sample_weight=None):
        low, high = self.score_range
        loss_fn = {"l1": torch.nn.functional.l1_loss, "mse": torch.nn.functional.mse_loss}[self.loss]
        bias = Y.mean(0) if sample_weight is None else np.average(Y, axis=0, weights=sample_weight)
        fit_mlp_members(members, X, Y, X_val, bias=bias, loss_fn=loss_fn,   # start from the mean score, not 0
                        val_score=lambda P: _mae(Y_val, P.clamp(low, high).cpu().numpy()), sample_weight=sample_weight)

    def _predict(self, X):
        with torch.no_grad():
            return self.network_(torch.from_numpy(np.ascontiguousarray(X))).numpy()

    def _selected(self):
        return {"best_epoch": self.best_epoch_, "epochs_run": self.epochs_run_, "val_mae_history": self.history_}


class LightGBMProbe(_Member, _Probe):
    """One LightGBM regressor per dimension, early stopping on validation L1."""
    kind = "lightgbm"

    def __init__(self, params=None, early_stopping_rounds=50, score_range=(0.0, 10.0), random_state=42):
        self.params = params
        self.early_stopping_rounds = early_stopping_rounds
        self.score_range = score_range
        self.random_state = random_state

    def _fit_together(self, members, X, Y, X_val, Y_val, sample_weight=None):
        boosters = fit_boosters(self, [m.random_state for m in members], X, Y, X_val, Y_val,
                                defaults={"objective": "regression", "metric": "l1"}, sample_weight=sample_weight)
        for m, bs in zip(members, boosters):
            m.boosters_ = bs
            m.best_iterations_ = [int(b.best_iteration or b.current_iteration()) for b in bs]

    def _predict(self, X):
        return np.column_stack([b.predict(X, num_iteration=it) for b, it in zip(self.boosters_, self.best_iterations_)])

    def _state(self) -> dict:
        return {"boosters": lightgbm_models_written([b.model_to_string(num_iteration=it)
                                                     for b, it in zip(self.boosters_, self.best_iterations_)]),
                "best_iterations": list(self.best_iterations_)}

    def _restore(self, bundle):
        import lightgbm as lgb

        check_lightgbm_models(bundle["boosters"])   # a malformed string would abort the process
        self.boosters_ = [lgb.Booster(model_str=s) for s in bundle["boosters"]]
        self.best_iterations_ = [int(i) for i in bundle["best_iterations"]]

    def _selected(self):
        return {"best_iterations": list(self.best_iterations_)}


def fit_boosters(est, seeds: list[int], X, Y, X_val, Y_val, *, defaults=None, forced=None,
                 sample_weight=None) -> list[list]:
    """The LightGBM boosters of `est` (its `params` and early stopping) for each seed and each column of Y, stopping
    early on the metric of (X_val, Y_val): [[booster of dimension d for d ...] for each seed]. `defaults` give way
    to `params`, `forced` do not. The binned datasets are built once (per worker) and reused for every dimension
    and seed, only the labels changing: the same boosters as binning anew for each, since with fewer rows than
    `bin_construct_sample_cnt` (200,000) the bins do not depend on the seed (above it they come from one sample of
    rows, `data_random_seed`, for all seeds). With (rows x features) x boosters of at least PARALLEL_MIN_VALUES
    and several cores, the boosters are shared out over min(boosters, cores) worker processes of cores // workers
    threads each (never more threads than cores); else fitted here on every core. Deterministic for a seed list
    and a thread count; `n_jobs` <= 0 means the cores this process may use (not the machine's)."""
    jobs = [(k, d) for k in range(len(seeds)) for d in range(Y.shape[1])]
    cores = available_cores()
    workers = min(len(jobs), cores)
    Y, Y_val = np.asarray(Y, np.float32), np.asarray(Y_val, np.float32)
    if workers <= 1 or X.size * len(jobs) < PARALLEL_MIN_VALUES:
        done = _boost_jobs(est, seeds, jobs, X, Y, X_val, Y_val, defaults, forced, None, sample_weight)
    else:
        from joblib import Parallel, delayed

        threads = max(1, cores // workers)
        shares = [jobs[w::workers] for w in range(workers)]   # dealt round-robin: long and short fits mix
        from joblib.externals.loky import get_reusable_executor
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        try:
            parts = Parallel(n_jobs=workers, backend="loky", max_nbytes=None)(
                delayed(_boost_jobs)(est, seeds, share, X, Y, X_val, Y_val, defaults, forced, threads, sample_weight)
                for share in shares)
        except TerminatedWorkerError:   # killed (the OOM killer, kill -9): one line, not loky's traceback
            raise StudyError("a LightGBM worker process died (killed or out of memory); nothing of this probe was "
                             "written. Rerun; if it happens again, lower probe_seeds or free memory") from None
        finally:   # joblib keeps its workers idling for 300 s; while they live, every later LightGBM or MLP fit in
            get_reusable_executor().shutdown(wait=True)   # this process ran up to 9x slower (RESULTS, issue 27)
        done = {key: b for part in parts for key, b in part.items()}
    return [[done[(k, d)] for d in range(Y.shape[1])] for k in range(len(seeds))]


def _boost_params(est, defaults, forced, threads) -> dict:
    params = {"verbose": -1, "deterministic": True, "force_row_wise": True, **(defaults or {}), **(est.params or {}),
              **(forced or {})}
    if threads is not None:
        params["n_jobs"] = threads
    if int(params.get("n_jobs", -1)) <= 0:
        params["n_jobs"] = available_cores()
    return params


def _boost_jobs(est, seeds, jobs, X, Y, X_val, Y_val, defaults, forced, threads, sample_weight=None) -> dict:
    """{(seed index, dimension): booster} for `jobs`, on one pair of binned datasets built here once."""
    import lightgbm as lgb

    if threads is not None:   # in a worker process
        _die_with_parent()

    params = _boost_params(est, defaults, forced, threads)
    rounds = int(params.pop("n_estimators", 1000))
    train = lgb.Dataset(X, np.zeros(len(X), np.float32), weight=sample_weight, params=dict(params),
                        free_raw_data=False).construct()
    valid = train.create_valid(X_val, np.zeros(len(X_val), np.float32), params=dict(params)).construct()
    out = {}
    for k, d in jobs:
        train.set_label(np.ascontiguousarray(Y[:, d]))
        valid.set_label(np.ascontiguousarray(Y_val[:, d]))
        out[(k, d)] = lgb.train({**params, "seed": seeds[k]}, train, num_boost_round=rounds, valid_sets=[valid],
                                callbacks=[lgb.early_stopping(est.early_stopping_rounds, verbose=False)])
    return out


# -- yes/no probes (task: classification) ---------------------------------------------------------
def _log_loss(y, p) -> float:
    """Mean binary cross-entropy of probabilities `p` for 0/1 labels `y` (clipped away from 0 and 1)."""
    y, p = np.asarray(y, dtype=np.float64).ravel(), np.clip(np.asarray(p, dtype=np.float64).ravel(), 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def best_f1_threshold(y, p) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of `p >= threshold` on (validation) labels `y`.

    Candidates are the distinct probabilities; the threshold returned is the midpoint between the
    chosen one and the next lower probability (so a test probability a hair below a validation one
    is judged alike); ties go to the higher threshold. Without any positive in `y`: (0.5, 0.0).
    """
    y, p = np.asarray(y).ravel().astype(bool), np.asarray(p, dtype=np.float64).ravel()
    if not y.any():
        return 0.5, 0.0
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    last = np.r_[np.flatnonzero(ps[1:] != ps[:-1]), len(ps) - 1]   # the last index of each distinct value
    tp = np.cumsum(ys)[last]
    predicted = last + 1
    f1 = 2 * tp / (predicted + y.sum())
    k = int(np.argmax(f1))   # first maximum: the highest threshold
    below = ps[last[k] + 1] if last[k] + 1 < len(ps) else 0.0
    return float((ps[last[k]] + below) / 2), float(f1[k])


class _Classifier(_Bundled, ClassifierMixin, BaseEstimator):
    """Shared by the yes/no probes: 0/1 labels, scaling, validation split, threshold chosen on validation.

    `fit(X, y, X_val, y_val)` with y 0/1 ((n,) or (n, 1)); `predict_proba(X)` -> (n, 2);
    `predict(X)` -> 0/1 as `P(yes) >= threshold_`, the threshold that maximises F1 on validation.
    `val_log_loss_` (lower is better) is what selects among probes; `val_f1_` is the F1 at the threshold.
    """
    task = "classification"

    def fit(self, X, y, X_val=None, y_val=None):
        X, y = check_X_y(X, np.asarray(y).reshape(len(y), -1), multi_output=True, dtype=np.float32)
        y = self._binary(y, "y")
        if X_val is None:
            X, X_val, y, y_val = train_test_split(X, y, test_size=0.15, random_state=self.random_state, stratify=y)
        else:
            X_val, y_val = check_X_y(X_val, np.asarray(y_val).reshape(len(y_val), -1), multi_output=True, dtype=np.float32)
            y_val = self._binary(y_val, "y_val")
            if X_val.shape[1] != X.shape[1]:
                raise ValueError(f"validation data has {X_val.shape[1]} features, training data {X.shape[1]}")
        if len(np.unique(y)) < 2:
            raise StudyError("a yes/no probe needs both labels in the training split, found only "
                             f"{int(y[0])}")
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        self.scaler_ = StandardScaler().fit(X)
        Xs, Xv = self.scaler_.transform(X).astype(np.float32), self.scaler_.transform(X_val).astype(np.float32)
        t0 = time.perf_counter()
        self._fit(Xs, y, Xv, y_val)
        self.fit_seconds_ = time.perf_counter() - t0
        p_val = self._output(Xv)
        self.val_log_loss_ = self._validation_score(y_val, p_val)
        self.threshold_, self.val_f1_ = best_f1_threshold(y_val, p_val)
        return self

    @staticmethod
    def _binary(y, name):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] != 1:
            raise ValueError(f"{name} must hold one 0/1 label per row, found {y.shape[1]} columns")
        y = y.ravel()
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"{name} must hold only 0 and 1, found {sorted(set(np.unique(y).tolist()) - {0, 1})[:3]}")
        return y.astype(np.float32)

    def _checked(self, X):
        return _scaled(self, X)

    _validation_score = staticmethod(_log_loss)   # what chooses on validation (lower is better)

    def _output(self, X):
        """P(yes) of scaled inputs."""
        return self._proba(X)

    def predict_proba(self, X):
        p = self._output(self._checked(X)).astype(np.float64)
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= self.threshold_).astype(np.int64)

    def selected(self) -> dict:
        return {**self._selected(), "threshold": self.threshold_}

    def _bundle_frame(self) -> tuple[dict, dict]:
        return {"threshold": float(self.threshold_)}, {"task": self.task}   # P(yes) at or above it means yes

    def _restored(self, bundle: dict) -> None:
        self.threshold_ = float(bundle["threshold"])
        self.classes_ = np.array([0, 1])

    @classmethod
    def _unfitted(cls, bundle: dict) -> "_Classifier":
        return cls()


class LogisticProbe(_Classifier):
    """L2 logistic regression; C chosen by validation log-loss from `Cs`. Bundle: coef (dim,), intercept."""
    kind = "logistic"

    def __init__(self, Cs=(0.001, 0.01, 0.1, 1.0, 10.0, 100.0), random_state=42):
        self.Cs = Cs
        self.random_state = random_state

    def _fit(self, X, y, X_val, y_val):
        from sklearn.linear_model import LogisticRegression

        self.val_log_loss_by_C_, best = {}, None
        for C in self.Cs:
            model = LogisticRegression(C=float(C), max_iter=5000).fit(X, y.astype(np.int64))
            loss = _log_loss(y_val, model.predict_proba(X_val)[:, 1])
            self.val_log_loss_by_C_[float(C)] = loss
            if best is None or loss < best[0]:
                best = (loss, float(C), model)
        _, self.C_, model = best
        self.coef_, self.intercept_ = np.asarray(model.coef_[0], np.float64), float(model.intercept_[0])

    def _proba(self, X):
        return 1 / (1 + np.exp(-(X.astype(np.float64) @ self.coef_ + self.intercept_)))

    def _state(self):
        return {"coef": self.coef_, "intercept": self.intercept_}

    def _restore(self, bundle):
        self.coef_, self.intercept_ = np.asarray(bundle["coef"], np.float64), float(bundle["intercept"])

    def _selected(self):
        return {"C": self.C_, "val_log_loss_by_C": self.val_log_loss_by_C_,
                "C_at_grid_edge": self.C_ in (min(self.Cs), max(self.Cs))}


class MLPClassifierProbe(_Member, _MLPBundle, _Classifier):
    """The MLP of the regression probes with one output logit, binary cross-entropy (BCEWithLogits), Adam,
    early stopping on validation log-loss, best epoch restored. Bundle as the MLP's (output_dim 1) + threshold;
    P(yes) = sigmoid(network(X))."""
    kind = "mlp_binary"

    def _output_dim(self) -> int:
        return 1

    def _fit_together(self, members, X, y, X_val, y_val):
        rate = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))   # start from the base rate, not from 50%
        fit_mlp_members(members, X, y.reshape(-1, 1), X_val, bias=np.log(rate / (1 - rate)),
                        loss_fn=torch.nn.functional.binary_cross_entropy_with_logits,
                        val_score=lambda P: _log_loss(y_val, torch.sigmoid(P).cpu().numpy().ravel()))

    def _proba(self, X):
        with torch.no_grad():
            return torch.sigmoid(self.network_(torch.from_numpy(np.ascontiguousarray(X)))).numpy().ravel()

    def _selected(self):
        return {"best_epoch": self.best_epoch_, "epochs_run": self.epochs_run_, "val_log_loss_history": self.history_}


class LightGBMClassifierProbe(_Member, _Classifier):
    """One LightGBM booster, objective binary, early stopping on validation log-loss. Bundle: booster + best
    iteration + threshold; P(yes) = booster.predict(X, num_iteration=it)."""
    kind = "lightgbm_binary"

    def __init__(self, params=None, early_stopping_rounds=50, random_state=42):
        self.params = params
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state

    def _fit_together(self, members, X, y, X_val, y_val):
        boosters = fit_boosters(self, [m.random_state for m in members], X, y.reshape(-1, 1), X_val,
                                y_val.reshape(-1, 1), forced={"objective": "binary", "metric": "binary_logloss"})
        for m, (b,) in zip(members, boosters):
            m.booster_ = b
            m.best_iteration_ = int(b.best_iteration or b.current_iteration())

    def _proba(self, X):
        return np.asarray(self.booster_.predict(X, num_iteration=self.best_iteration_), dtype=np.float64)

    def _state(self):
        return {"booster": lightgbm_models_written([self.booster_.model_to_string(num_iteration=self.best_iteration_)])[0],
                "best_iteration": self.best_iteration_}

    def _restore(self, bundle):
        import lightgbm as lgb

        check_lightgbm_models([bundle["booster"]])   # a malformed string would abort the process
        self.booster_ = lgb.Booster(model_str=bundle["booster"])
        self.best_iteration_ = int(bundle["best_iteration"])

    def _selected(self):
        return {"best_iterations": [self.best_iteration_]}


# -- seed ensembles (the stochastic probes) -------------------------------------------------------
def member_seeds(seed: int, n: int) -> list[int]:
    """The seeds of an ensemble's `n` members: seed, seed + 1, ... (past MAX_SEED they wrap to 0, 1, ...)."""
    return [(int(seed) + k) % (MAX_SEED + 1) for k in range(int(n))]


_WATCHED: list = []


def _die_with_parent() -> None:
    """In a worker process: end it when the process that started it is gone (killed, SIGKILL included), checked
    every second, so no worker trains on for nobody."""
    if _WATCHED:
        return
    import os
    import threading

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    _WATCHED.append(threading.Thread(target=watch, daemon=True, name="die-with-parent"))
    _WATCHED[0].start()


PARALLEL_MIN_VALUES = 5_000_000   # training inputs (rows x dims) x boosters from which LightGBM uses worker processes


def fit_members(estimator, seeds: list[int], fitted: dict, data: tuple, **weighted) -> list:
    """One fitted copy of `estimator` per seed, in the order of `seeds`, fitted together on scaled `data` (X, Y,
    X_val, Y_val; `fitted`: the attributes its layout needs, n_features_in_, n_outputs_): the MLP seeds as one
    batched network (`fit_mlp_members`), the LightGBM ones on shared binned datasets (`fit_boosters`, in worker
    processes where the inputs are large). Each member is what its seed alone gives (one seed: exactly the
    single-seed probe; the MLP's up to float rounding). Deterministic for a seed list on one machine."""
    members = []
    for seed in seeds:
        member = clone(estimator).set_params(random_state=seed)
        for key, value in fitted.items():
            setattr(member, key, value)
        members.append(member)
    members[0]._fit_together(members, *data, **weighted)
    return members


class _SeedEnsemble:
    """Shared by SeedEnsemble (scores) and SeedEnsembleClassifier (yes/no): `n_seeds` members, each `estimator`
    fitted with one of `member_seeds(estimator.random_state, n_seeds)`; the output is the members' mean."""
    def __init__(self, estimator=None, n_seeds=5):
        self.estimator = estimator
        self.n_seeds = n_seeds

    kind = property(lambda self: self.estimator.kind)
    random_state = property(lambda self: self.estimator.random_state)
    score_range = property(lambda self: self.estimator.score_range)

    def _fit(self, X, Y, X_val, Y_val, **weighted):
        if int(self.n_seeds) < 1:
            raise ValueError(f"n_seeds must be at least 1, found {self.n_seeds}")
        self.seeds_ = member_seeds(self.random_state, self.n_seeds)
        fitted = {k: getattr(self, k) for k in ("n_features_in_", "n_outputs_") if hasattr(self, k)}
        self.members_ = fit_members(self.estimator, self.seeds_, fitted, (X, Y, X_val, Y_val), **weighted)
        self.member_val_ = [self._validation_score(Y_val, m._output(X_val)) for m in self.members_]

    def _output(self, X):
        return np.mean([m._output(X) for m in self.members_], axis=0)

    def member_outputs(self, X) -> list[np.ndarray]:
        """Each member's output for raw inputs X (clipped scores, or P(yes)), in seed order."""
        Xs = self._checked(X)
        return [m._output(Xs) for m in self.members_]

    def _selected(self):
        return {"seeds": list(self.seeds_), "members": [m._selected() for m in self.members_]}

    def _state(self):
        return _members_state(self.members_, self.seeds_)

    @classmethod
    def _unfitted(cls, bundle):
        return cls(estimator=MEMBER_KINDS[bundle["kind"]]._unfitted(bundle), n_seeds=len(bundle["members"]))

    def _restore(self, bundle):
        frame = {k: v for k, v in bundle.items() if k not in ("members", "seeds")}
        self.members_ = [type(self.estimator).from_bundle({**frame, **m}) for m in bundle["members"]]
        self.seeds_ = [int(s) for s in bundle["seeds"]]


def seed_record(probe) -> dict:
    """How a fitted probe used seeds: {"n", "seeds", "stochastic", "val"} with each member's validation score
    (MAE; yes/no: log-loss) in seed order; a deterministic probe (ridge, logistic) is one fit without a seed."""
    if isinstance(probe, _SeedEnsemble):
        return {"n": len(probe.seeds_), "seeds": list(probe.seeds_), "stochastic": True,
                "val": [float(v) for v in probe.member_val_]}
    return {"n": 1, "seeds": [], "stochastic": False,
            "val": [float(probe.val_log_loss_ if probe.task == "classification" else probe.val_mae_)]}


class SeedEnsemble(_SeedEnsemble, _Probe):
    """The saved MLP / LightGBM score probe: the mean of its members' clipped scores (module docstring)."""


class SeedEnsembleClassifier(_SeedEnsemble, _Classifier):
    """The saved MLP / LightGBM yes/no probe: the mean of its members' P(yes), the threshold chosen on that mean."""


def fit_warnings(kind: str, selected: dict, dimension_names: list[str]) -> list[str]:
    """What a fit's validation choices say is degenerate, each as one line saying what it means and what to do:
    a ridge alpha (logistic C) at the edge of its grid, and a LightGBM dimension that stopped after 1 boosting
    round (a constant predictor) in any seed. `selected`: the probe's `selected()`; [] for a sound fit."""
    s, out = selected or {}, []
    for key, grid, section in (("alpha", "val_mae_by_alpha", "ridge.alphas"), ("C", "val_log_loss_by_C", "logistic.Cs")):
        if s.get(f"{key}_at_grid_edge"):
            values = [float(v) for v in s[grid]]
            edge = "lowest" if s[key] == min(values) else "highest"
            out.append(f"{kind}: {key} {s[key]:g} chosen on validation is the {edge} value of its grid "
                       f"({min(values):g} to {max(values):g}), so the best one may lie beyond it: widen "
                       f"probe_methods.{section} in config.yaml")
    members = s.get("members") or ([s] if "best_iterations" in s else [])
    its = [m["best_iterations"] for m in members if "best_iterations" in m]
    for d, name in enumerate(dimension_names if its else []):
        flat = sum(1 for m in its if d < len(m) and m[d] <= 1)
        if flat:
            seeds = f" in {flat} of {len(its)} seeds" if len(its) > 1 else ""
            out.append(f"{kind}: dimension {name} stopped after 1 boosting round{seeds}: a constant predictor (about "
                       "the training mean); the dimension has no signal LightGBM can learn at this size: more training "
                       "articles, or a lower probe_methods.lightgbm.params.min_child_samples")
    return out


def make_probe(kind: str, settings, *, score_range, seed: int, device: str = "cpu", task: str = "regression",
               n_seeds: int | None = None):
    """A probe from its `probe_methods` section of config.yaml; `task` classification gives the yes/no probes
    (logistic, mlp with one logit, lightgbm binary) from the same sections. `n_seeds` (config `probe_seeds`): the
    MLP and LightGBM as a seed ensemble of that many members (`SeedEnsemble`); None: the single-seed probe."""
    probe = _make_single(kind, settings, score_range=score_range, seed=seed, device=device, task=task)
    if n_seeds is None or kind not in STOCHASTIC:
        return probe
    return (SeedEnsembleClassifier if task == "classification" else SeedEnsemble)(probe, n_seeds=n_seeds)


def _make_single(kind: str, settings, *, score_range, seed: int, device: str, task: str):
    if task == "classification":
        if kind == "logistic":
            return LogisticProbe(Cs=tuple(settings.Cs), random_state=seed)
        if kind == "mlp":
            return MLPClassifierProbe(hidden_sizes=tuple(settings.hidden_sizes), dropout=settings.dropout,
                                      learning_rate=settings.learning_rate, weight_decay=settings.weight_decay,
                                      epochs=settings.epochs, patience=settings.patience,
                                      batch_size=settings.batch_size, random_state=seed, device=device)
        if kind == "lightgbm":
            return LightGBMClassifierProbe(params=dict(settings.params),
                                           early_stopping_rounds=settings.early_stopping_rounds, random_state=seed)
        raise ValueError(f"probe '{kind}' does not fit a classification dataset (logistic, mlp, lightgbm)")
    if kind == "logistic":
        raise ValueError("probe 'logistic' is for classification datasets (task: classification)")
    score_range = tuple(float(v) for v in score_range)
    if kind == "ridge":
        return RidgeProbe(alphas=tuple(settings.alphas), score_range=score_range, random_state=seed)
    if kind == "mlp":
        return MLPProbe(hidden_sizes=tuple(settings.hidden_sizes), dropout=settings.dropout, loss=settings.loss,
                        learning_rate=settings.learning_rate, weight_decay=settings.weight_decay,
                        epochs=settings.epochs, patience=settings.patience, batch_size=settings.batch_size,
                        score_range=score_range, random_state=seed, device=device)
    if kind == "lightgbm":
        return LightGBMProbe(params=dict(settings.params), early_stopping_rounds=settings.early_stopping_rounds,
                             score_range=score_range, random_state=seed)
    raise ValueError(f"unknown probe '{kind}', expected one of {PROBES}")


def subset_size(fraction: float, n: int) -> int:
    """ceil(fraction * n) rows, at least 1; the product is rounded first (0.07 * 100 is 7.000000000000001 in
    floating point, and means 7 rows, not 8)."""
    return max(1, math.ceil(round(float(fraction) * n, 9)))


def nested_subsets(n: int, fractions, seed: int) -> list[dict]:
    """The learning curve's training subsets: [{"fraction", "n_train", "rows"}] by size, smallest first.

    One permutation of the `n` training rows, seeded with `seed`; a fraction f takes its first
    ceil(f * n) rows (`rows` sorted), so every subset lies inside every larger one and the same
    seed gives the same rows. Fractions whose subset is the whole split (1.0) are left out: that
    is the normal, full-data probe. Two fractions of the same size keep the first."""
    order = np.random.default_rng(seed).permutation(n)
    out: dict[int, dict] = {}
    for f in sorted(float(f) for f in fractions):
        k = subset_size(f, n)
        if k < n and k not in out:
            out[k] = {"fraction": f, "n_train": k, "rows": np.sort(order[:k])}
    return [out[k] for k in sorted(out)]


def with_teacher_rows(X, Y, X_teacher, T, weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, targets, sample weights) of a teacher probe: the labelled rows (X, Y), weight 1, then the
    teacher-scored rows (X_teacher, the teacher's scores T), each weighing `weight`."""
    X, X_teacher = np.asarray(X, np.float32), np.asarray(X_teacher, np.float32)
    return (np.vstack([X, X_teacher]), np.vstack([np.asarray(Y, np.float32), np.asarray(T, np.float32)]),
            np.r_[np.ones(len(X), np.float32), np.full(len(X_teacher), weight, np.float32)])


def ids_sha256(ids) -> str:
    """A fingerprint of a set of article ids (order-free): what a subset probe was trained on."""
    return hashlib.sha256("\n".join(sorted(str(i) for i in ids)).encode("utf-8")).hexdigest()


MEMBER_KINDS = {cls.kind: cls for cls in (MLPProbe, LightGBMProbe, MLPClassifierProbe, LightGBMClassifierProbe)}
KINDS = {"ridge": RidgeProbe, "logistic": LogisticProbe, "head": LinearHead,   # what a bundle of each kind loads as
         **{k: SeedEnsembleClassifier if issubclass(c, _Classifier) else SeedEnsemble for k, c in MEMBER_KINDS.items()}}


def load_bundle(path) -> tuple[dict, "_Probe"]:
    """(the bundle, its rebuilt estimator) of a probe file: checksum verified, plain objects only."""
    from study.artifacts import load_pickle

    bundle = load_pickle(path)
    try:
        return bundle, probe_from_bundle(bundle)
    except StudyError as exc:
        raise StudyError(f"{path}: {exc}") from None


def probe_from_bundle(bundle) -> _Probe:
    """Rebuild the estimator of a probe file (see `_Probe.to_bundle`)."""
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT or bundle.get("kind") not in KINDS \
            or (bundle["kind"] in MEMBER_KINDS and not isinstance(bundle.get("members"), list)):
        raise StudyError(f"not a probe bundle of format {BUNDLE_FORMAT} (kind {', '.join(KINDS)}); "
                         "rerun train_probes.py")
    return KINDS[bundle["kind"]].from_bundle(bundle)


def load_trained(path, embeddings: dict, data_sha256: dict | None = None):
    """(estimator, metadata) of a trained probe, checked against the embeddings it will score:
    the same model side of the fingerprint (model, max tokens, prefix, pooling, normalisation,
    dtype), the same dimension names and, given `data_sha256` ({split: hash} of the current
    train/val files), the same training data."""
    from study.cache import MODEL_KEYS, mismatch

    bundle, probe = load_bundle(path)
    meta = bundle["metadata"]
    why = mismatch(meta["embedding_fingerprint"], embeddings["fingerprint"], MODEL_KEYS)
    if why or meta["dimension_names"] != embeddings["dimension_names"]:
        raise StudyError(f"{path} was trained on other embeddings than the cache it should score "
                         f"({why or 'dimension_names differ'}); rerun train_probes.py")
    trained_on = meta.get("data_sha256") or {}
    stale = [s for s, h in (data_sha256 or {}).items() if trained_on.get(s) != h]
    if stale:
        raise StudyError(f"{path} was trained on other {' and '.join(stale)} data than the current "
                         f"{', '.join(s + '.jsonl' for s in stale)} (data hashes differ); rerun embed_articles.py "
                         "and train_probes.py")
    return probe, meta

"""The Stage 1 bundle without pickle: the README's reference loader reads every probe kind in a process that cannot
import the project; the export to the production loader's layout, checked by an independent reimplementation of
that loader's contract; thresholds for the fine-tuned scorer's weights; what the export refuses."""
import json
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, planted
from study import stage1
from study.config import load_config
from study.errors import StudyError
from study.probes import make_probe

CFG = load_config()
NAMES = ["a", "b", "c"]
RECIPE = {"source": "sentence-transformers", "model_name": "some/model", "dimensions": 16, "max_tokens": 128,
          "prefix": "", "pooling": "mean", "normalize": False, "text": "title, blank line, content"}
WEIGHTS = {"a": 0.5, "b": 0.3, "c": 0.2}


@pytest.fixture(scope="module")
def data():
    X, Y = planted(900, d=16, k=3, seed=1)
    return X[:600], Y[:600], X[600:750], Y[600:750], X[750:], Y[750:]


def _fit(kind, data, task="regression", n_seeds=2):
    Xtr, Ytr, Xv, Yv, _, _ = data
    settings = getattr(CFG.probe_methods, kind).model_copy()
    if kind == "mlp":
        settings = settings.model_copy(update={"epochs": 5})
    if kind == "lightgbm":
        settings = settings.model_copy(update={"params": {**settings.params, "n_estimators": 60}})
    probe = make_probe(kind, settings, score_range=CFG.score_range, seed=42, task=task, n_seeds=n_seeds)
    if task == "classification":
        return probe.fit(Xtr, (Ytr[:, :1] > 5).astype(int), Xv, (Yv[:, :1] > 5).astype(int))
    return probe.fit(Xtr, Ytr, Xv, Yv)


def _bundle(folder, probe, data, *, prefix="", seeds_val=None):
    """A bundle as phase 3 writes it, from a fitted probe (no embedding run needed)."""
    _, _, Xv, Yv, _, _ = data
    task = probe.task
    meta = {"dataset": "d", "variant": "v", "probe": probe.kind.replace("_binary", ""), "model": "v",
            "dimension_names": NAMES[:1] if task == "classification" else NAMES,
            "embedding": {**RECIPE, "prefix": prefix}, "embedding_fingerprint": {"revision": "r", "dtype": "float32"},
            "val_mae": getattr(probe, "val_mae_", None), "seeds": {"val": seeds_val or [0.0]}}
    bundle = probe.to_bundle(meta)
    kw = {}
    if task == "regression":
        w = np.array([WEIGHTS[d] for d in NAMES])
        P = probe.predict(Xv)
        kw = dict(weights=WEIGHTS, tiers={"medium": 4.0, "high": 7.0}, recall_targets=[0.99, 0.95], confidence=0.95,
                  thresholds=stage1.choose_thresholds(Yv, P, w, 4.0, [0.99, 0.95], 0.95))
    spec, arrays, texts = stage1.build_spec(bundle, "0" * 64, "test", **kw)
    if task == "regression":
        arrays.update({"val.labels": Yv, "val.predictions": probe.predict(Xv)})
        if hasattr(probe, "member_outputs"):
            arrays["val.member_predictions"] = np.stack(probe.member_outputs(Xv))
    stage1.write_bundle(folder, spec, arrays, texts, stage1.model_card(spec))
    return folder


SERVING = """
import importlib.util, sys
import numpy as np
assert importlib.util.find_spec("study") is None, "the serving process must not see the project"
{snippet}
X = np.load(sys.argv[1])
for path in sys.argv[2:]:
    predict, spec = load_stage1(path)
    np.save(path + ".npy", predict(X))
"""


def readme_snippet() -> str:
    """The code block of the README's 'Using a probe in production'."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using a probe in production", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory, data):
    """Every probe kind of both tasks fitted and written as a bundle: (folder, {name: fitted probe})."""
    serving = tmp_path_factory.mktemp("serving")
    probes = {}
    for kind, task in (("ridge", "regression"), ("mlp", "regression"), ("lightgbm", "regression"),
                       ("logistic", "classification"), ("mlp", "classification"), ("lightgbm", "classification")):
        probes[f"{kind}_{task}"] = probe = _fit(kind, data, task)
        _bundle(serving / f"{kind}_{task}", probe, data)
    return serving, probes


def _served_predictions(probe, X):
    return probe.predict(X) if probe.task == "regression" else probe.predict_proba(X)[:, 1:]


def test_every_probe_kind_reads_back_as_the_estimator_it_was(served, data):
    """The study's own reader rebuilds exactly the estimator (no pickle either)."""
    _, _, _, _, Xte, _ = data
    folder, probes = served
    assert "pickle" not in readme_snippet()   # the loader the slow test below runs in a process of its own
    for name, probe in probes.items():
        got = stage1.read_bundle(folder / name)["estimator"]
        np.testing.assert_array_equal(got.predict(Xte), probe.predict(Xte))


@pytest.mark.slow   # another interpreter (python -I), which cannot import the project: it pays numpy's and lightgbm's start
def test_every_probe_kind_loads_with_the_readme_loader_without_pickle_or_the_project(served, tmp_path, data):
    _, _, _, _, Xte, _ = data
    folder, probes = served
    expected = {name: _served_predictions(probe, Xte) for name, probe in probes.items()}
    serving = tmp_path / "serving"
    shutil.copytree(folder, serving)
    np.save(serving / "X.npy", Xte)
    (serving / "serve.py").write_text(SERVING.format(snippet=readme_snippet()))
    proc = subprocess.run([sys.executable, "-I", "serve.py", "X.npy", *expected], cwd=serving, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name, P in expected.items():
        np.testing.assert_allclose(np.load(serving / f"{name}.npy"), P, rtol=1e-5, atol=1e-5, err_msg=name)


def test_tampered_files_and_arrays_that_do_not_fit_are_refused(tmp_path, data):
    folder = _bundle(tmp_path / "b", _fit("mlp", data), data)
    sums = (folder / "SHA256SUMS").read_text()

    def refused(match):
        with pytest.raises(StudyError, match=match):
            stage1.read_bundle(folder)

    import hashlib
    from safetensors.numpy import load, save

    def swap(name, blob):   # a change made with its checksum updated: only the content checks can catch it
        old = (folder / name).read_bytes()
        (folder / name).write_bytes(blob)
        now = (folder / "SHA256SUMS").read_text()
        (folder / "SHA256SUMS").write_text(now.replace(hashlib.sha256(old).hexdigest(), hashlib.sha256(blob).hexdigest()))
        return old

    pristine = (folder / "stage1.json").read_bytes()
    spec = json.loads(pristine)
    (folder / "stage1.json").write_text(json.dumps({**spec, "threshold": 0.5}))
    refused("stage1.json: checksum differs from SHA256SUMS")
    (folder / "stage1.json").write_bytes(pristine)
    original = swap("stage1.json", json.dumps({**spec, "extra": 1}).encode())
    refused(r"stage1.json: extra: Extra inputs are not permitted")
    swap("stage1.json", json.dumps({**spec, "weights": {"a": "heavy"}}).encode())
    refused(r"stage1.json: weights.a: ")
    if spec.get("weights"):   # weights of a dimension the probe does not score (was a KeyError traceback)
        unknown = {"unknown" if i == 0 else k: v for i, (k, v) in enumerate(spec["weights"].items())}
        swap("stage1.json", json.dumps({**spec, "weights": unknown}).encode())
        refused(r"stage1.json: .*weights name .*'unknown'\], the dimensions are")
    swap("stage1.json", original)
    arrays = load((folder / "arrays.safetensors").read_bytes())
    first = next(k for k in arrays if k.startswith("m0.") and k.endswith(".weight"))
    original = swap("arrays.safetensors", save({**arrays, first: arrays[first][:, :3].copy()}))
    refused("its arrays do not fit the layout stage1.json names")
    swap("arrays.safetensors", b"\xff" * 8 + original[8:])   # a header length past the end of the file
    refused("unreadable array header")
    swap("arrays.safetensors", original)
    (folder / "SHA256SUMS").write_text(sums + f"{'0' * 64}  ../../etc/passwd\n")
    refused("not a '<sha256>  <file>' line")
    (folder / "SHA256SUMS").write_text(sums)
    assert stage1.read_bundle(folder)["spec"].probe_kind == "mlp"


PRODUCTION = """
import pickle, sys
import numpy as np
import torch
assert __import__("importlib.util").util.find_spec("study") is None
with open(sys.argv[1], "rb") as fh:
    data = pickle.load(fh)
assert {"scaler", "state_dict", "model_config"} <= set(data)
config = data["model_config"]
net = torch.nn.Module()
net.network = torch.nn.Sequential(torch.nn.Linear(config["input_dim"], 256), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                  torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                  torch.nn.Linear(128, config["output_dim"]))
assert all(type(t) is torch.Tensor for t in data["state_dict"].values())
net.load_state_dict(data["state_dict"])   # strict: the same keys and shapes
net.eval()
embeddings = np.load(sys.argv[2])
with torch.no_grad():
    raw = net.network(torch.FloatTensor(data["scaler"].transform(embeddings))).numpy()
scores = np.clip(raw, 0.0, 10.0)
weighted = np.array([sum(float(s[j]) * data["dimension_weights"][d] for j, d in enumerate(data["dimension_names"]))
                     for s in scores])
np.save(sys.argv[3], scores)
np.save(sys.argv[4], weighted >= data["threshold"])
"""


def _plug_in(y, p, w, medium, recall):
    """The highest threshold keeping >= recall of the truly medium+ articles: counted, candidate by candidate."""
    s_true, s_pred = y @ w, p.astype(np.float64) @ w
    rel = s_pred[s_true >= medium]
    return max(c for c in rel if (rel >= c).mean() >= recall - 1e-12)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, data):
    """A 3-seed MLP exported to the production layout with the fine-tuned scorer's own weights:
    (probe, validation MAE of each member, weights, export info, the exported file)."""
    _, _, Xv, Yv, _, _ = data
    tmp_path = tmp_path_factory.mktemp("exported")
    probe = _fit("mlp", data, n_seeds=3)
    val = [float(np.abs(P - Yv).mean()) for P in probe.member_outputs(Xv)]
    folder = _bundle(tmp_path / "b", probe, data, seeds_val=val)
    weights_file = tmp_path / "ft.json"
    ft = {"a": 0.2, "b": 0.2, "c": 0.6}   # the fine-tuned scorer's own weights, not the study's
    weights_file.write_text(json.dumps(ft))
    bundle = stage1.read_bundle(folder)
    w = stage1.read_weights(weights_file, NAMES)
    out = tmp_path / "embedding_probe.pkl"
    info = stage1.export_production(bundle, out, weights=w, recall=0.95, rule="plug-in")
    return probe, val, ft, info, out


def test_export_writes_the_member_best_on_validation_with_its_own_threshold(exported, data):
    _, _, Xv, Yv, _, _ = data
    probe, val, ft, info, out = exported
    k = int(np.argmin(val))
    assert info["member"]["index"] == k and info["member"]["of"] == 3
    assert (out.parent / (out.name + ".sha256")).read_text().split()[0] == __import__("hashlib").sha256(out.read_bytes()).hexdigest()
    member_val = probe.member_outputs(Xv)[k]
    assert info["threshold"] == _plug_in(Yv, member_val, np.array([ft[d] for d in NAMES]), 4.0, 0.95)
    assert info["prefix"] == "" and info["text"].startswith("title + '\\n\\n' + content")
    with open(out, "rb") as fh:
        assert pickle.load(fh)["model_config"] == {"input_dim": 16, "output_dim": 3, "hidden_sizes": [256, 128],
                                                   "dropout": 0.2}


@pytest.mark.slow   # another interpreter (python -I) that cannot import the project: it pays torch's start
def test_export_loads_with_the_production_contract_and_reproduces_the_exported_member(exported, tmp_path, data):
    _, _, _, _, Xte, _ = data
    probe, val, ft, info, out = exported
    k = int(np.argmin(val))
    np.save(tmp_path / "X.npy", Xte)
    (tmp_path / "production.py").write_text(PRODUCTION)
    proc = subprocess.run([sys.executable, "-I", "production.py", str(out), "X.npy", "P.npy", "route.npy"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    P = probe.member_outputs(Xte)[k]
    np.testing.assert_allclose(np.load(tmp_path / "P.npy"), P, atol=1e-5, rtol=0)
    s = P.astype(np.float64) @ np.array([ft[d] for d in NAMES])
    assert np.array_equal(np.load(tmp_path / "route.npy"), s >= info["threshold"])


def test_the_export_refuses_what_the_production_layout_cannot_hold(tmp_path, data):
    cases = [("ridge", {}, "a ridge probe: the production layout holds one MLP"),
             ("lightgbm", {}, "a lightgbm probe"),
             ("mlp", {"prefix": "query: "}, "the prefix 'query: '")]
    for kind, extra, expect in cases:
        folder = _bundle(tmp_path / kind, _fit(kind, data, n_seeds=1), data, **extra)
        with pytest.raises(StudyError, match=expect):
            stage1.export_production(stage1.read_bundle(folder), tmp_path / "x.pkl", weights=np.ones(3) / 3,
                                     recall=None, rule="plug-in")
        assert not (tmp_path / "x.pkl").exists()
    info = stage1.export_production(stage1.read_bundle(tmp_path / "mlp"), tmp_path / "x.pkl", weights=np.ones(3) / 3,
                                    recall=None, rule="plug-in", keep_prefix=True)
    assert info["prefix"] == "query: "


def test_weights_from_a_file_choose_the_thresholds_phase_3_would_choose_with_them(tmp_path, data):
    _, _, Xv, Yv, _, _ = data
    probe = _fit("ridge", data, n_seeds=1)
    path = tmp_path / "w.yaml"
    path.write_text("a: 0.2\nb: 0.2\nc: 0.6\n")
    w = stage1.read_weights(path, NAMES)
    got = stage1.choose_thresholds(Yv, probe.predict(Xv), w, 4.0, [0.95], 0.95)[0]
    assert got["plug-in"] == _plug_in(Yv, probe.predict(Xv), w, 4.0, 0.95)
    for text, expect in (("a: 0.5\nb: 0.5\nc: 0.5\n", "sum to 1.5, not 1"), ("a: 1\n", "the probe's dimensions are"),
                         ("a: x\nb: 0\nc: 1\n", "expected a mapping of dimension name to weight")):
        path.write_text(text)
        with pytest.raises(StudyError, match=expect):
            stage1.read_weights(path, NAMES)

"""Hostile files handed over by someone else (issue 26): a probe file or Stage 1 bundle with a matching checksum
that would corrupt or exhaust memory, a malformed LightGBM model string. Each is one StudyError ("refused"),
never a crash, a hang or gigabytes (README "What happens on bad input": "a probe pickle naming anything but
numpy arrays ... (refused unread)")."""
import pickle
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import planted
from study.artifacts import check_lightgbm_models, load_pickle, save_pickle
from study.errors import StudyError
from study.probes import make_probe, probe_from_bundle
from study.config import load_config

from numpy._core import multiarray, numeric


class Reduce:
    """A value that pickles as `fn(*args)` and, given `state`, a BUILD with it: any call the allow-list admits."""

    def __init__(self, fn, args, state=None):
        self.fn, self.args, self.state = fn, args, state

    def __reduce__(self):
        return (self.fn, self.args) if self.state is None else (self.fn, self.args, self.state)


def _hidden_object_dtype():
    """numpy.dtype('f8') whose state (BUILD) is that of a structured dtype holding an object field."""
    return Reduce(np.dtype, ("f8", False, True), np.dtype([("p", "O")]).__reduce__()[2])


def _bomb(levels=40):
    a = []
    for _ in range(levels):
        a = [a, a]   # 2**40 lists as a tree, 80 bytes as a pickle
    return a


def _cycle():
    a = []
    a.append(a)
    return a


CRAFTED = {
    "an object field hidden in a dtype's state": lambda: {"coef": Reduce(numeric._frombuffer, (
        b"\x41" * 8, _hidden_object_dtype(), (1,), "C"))},
    "an object dtype scalar": lambda: {"x": Reduce(multiarray.scalar, (np.dtype("O"), b"\x41" * 8))},
    "a structured dtype": lambda: {"x": np.zeros(2, dtype=[("a", "f8"), ("b", "i4")])},
    "an array of more elements than bytes": lambda: {"coef": Reduce(numeric._frombuffer, (
        bytearray(8), np.dtype("f8"), (1 << 40,), "C"))},
    "a huge reconstruction": lambda: {"coef": Reduce(multiarray._reconstruct, (np.ndarray, (1 << 40,), b"b"))},
    "ndarray called with strides past its buffer": lambda: {"coef": Reduce(np.ndarray, (
        (1 << 20,), np.dtype("f8"), b"\x00" * 8, 0, (1 << 20,)))},
    "a list bomb": _bomb,
    "a cyclic list": _cycle,
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_probe_file_is_refused_quickly(tmp_path, case):
    path = tmp_path / "p.pkl"
    save_pickle(path, CRAFTED[case]())   # with a matching .sha256, as a colleague would hand it over
    t0 = time.perf_counter()
    with pytest.raises(StudyError, match=f"{path}: refused"):
        load_pickle(path)
    assert time.perf_counter() - t0 < 10


def test_the_hidden_object_dtype_is_real_for_a_bare_unpickler(tmp_path):
    """The case is not made up: numpy itself rebuilds an object-holding dtype from those bytes."""
    blob = pickle.dumps(_hidden_object_dtype(), protocol=5)
    assert pickle.loads(blob).hasobject


def test_plain_arrays_of_every_layout_load_back(tmp_path):
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3)).astype(np.float32)
    value = {"c": np.asfortranarray(X), "t": X.T, "s": X[::2], "big": X.astype(">f8"), "b": X > 0,
             "i": np.arange(5, dtype=np.uint16), "z": np.complex128(1 + 2j), "f": np.float32(0.5),
             "e": np.zeros((0, 4)), "scaler": StandardScaler().fit(X), "n": [1, 2.5, "x", None, (1, 2)]}
    save_pickle(tmp_path / "ok.pkl", value)
    back = load_pickle(tmp_path / "ok.pkl")
    for key in ("c", "t", "s", "big", "b", "i", "e"):
        assert back[key].dtype == value[key].dtype and np.array_equal(back[key], value[key]), key
    assert back["z"] == value["z"] and back["f"] == value["f"] and back["n"] == value["n"]
    np.testing.assert_array_equal(back["scaler"].transform(X), value["scaler"].transform(X))


@pytest.fixture(scope="module")
def lightgbm_bundle():
    cfg = load_config()
    X, Y = planted(300, d=8, k=2, seed=3)
    probe = make_probe("lightgbm", cfg.probe_methods.lightgbm, score_range=cfg.score_range, seed=1, n_seeds=1)
    est = getattr(probe, "estimator", probe)
    est.set_params(params={**est.params, "n_estimators": 20})
    probe.fit(X[:200], Y[:200], X[200:], Y[200:])
    return probe.to_bundle({"dimension_names": ["a", "b"]}), X


def _strings(bundle):
    return bundle["members"][0]["boosters"]


@pytest.mark.parametrize("damage", [
    lambda s: s.replace("split_feature=", "split_feature=0 ", 1),   # one feature too many: SIGABRT in lightgbm
    lambda s: s.replace("tree_sizes=", "tree_sizes=99999", 1),       # SIGSEGV in lightgbm
    lambda s: s[:len(s) // 3],
], ids=["array lengths", "tree sizes", "cut short"])
def test_a_malformed_lightgbm_string_is_refused_not_a_crash(lightgbm_bundle, damage, tmp_path):
    bundle, X = lightgbm_bundle
    bad = damage(_strings(bundle)[0])
    bare = ("import sys; sys.modules.update(dict.fromkeys(('sklearn', 'pandas')))\n"   # its optional glue: 1 s to import
            "import lightgbm; lightgbm.Booster(model_str=sys.stdin.read())")
    crashed = subprocess.run([sys.executable, "-c", bare], input=bad.encode(), capture_output=True, timeout=120)
    assert crashed.returncode != 0          # the bare library does die (or refuse) on it ...
    with pytest.raises(StudyError, match="refused \\(a malformed LightGBM model string"):
        check_lightgbm_models([bad])        # ... here it is one error, and this process lives on
    members = [{**bundle["members"][0], "boosters": [bad, *_strings(bundle)[1:]]}]
    with pytest.raises(StudyError, match="malformed LightGBM"):
        probe_from_bundle({**bundle, "members": members})
    good = probe_from_bundle(bundle)   # the unharmed bundle still loads and predicts
    assert good.predict(X[:5]).shape == (5, 2)


def test_strings_this_process_wrote_load_without_a_check_child_and_changed_ones_are_checked(lightgbm_bundle,
                                                                                           monkeypatch):
    """A probe trained here and read back here (phase 3 after phase 2 in one process) starts no child: its strings
    came from this process's own boosters. One changed byte makes them strings of another file: checked again."""
    bundle, X = lightgbm_bundle
    children = []
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: children.append(a) or real_run(*a, **k))
    assert probe_from_bundle(bundle).predict(X[:3]).shape == (3, 2)
    assert children == []
    s = _strings(bundle)[0]
    changed = s.replace("feature_names=Column_0", "feature_names=Column_x", 1)   # valid, but not the one written
    assert changed != s
    members = [{**bundle["members"][0], "boosters": [changed, *_strings(bundle)[1:]]}]
    probe_from_bundle({**bundle, "members": members})
    assert len(children) == 1


def test_hostile_names_stay_inside_their_table_cell_and_are_not_html(tmp_path):
    """README: "markdown shows `|`, line breaks and HTML tags of names as text"."""
    from conftest import markdown_tables
    from study.document import Document, to_markdown

    doc = Document("T <b>", "s")
    name = "a|b\nc\u2028d<script>alert(1)</script>"
    doc.table("dims\n<img src=x>", ["dimension", "MAE"], [[name, "0.5"], ["plain", "p < 0.05"]], "lr")
    md = to_markdown(doc, tmp_path)
    assert "<script>" not in md and "<img" not in md and "<b>" not in md
    assert "| a\\|b c d&lt;script>alert(1)&lt;/script> |" in md   # one cell, the tag shown as text
    rows = next(iter(markdown_tables(md).values()))   # read back as a reader sees it: the name whole in its cell
    assert rows == [["dimension", "MAE"], ["a|b c d<script>alert(1)</script>", "0.5"], ["plain", "p < 0.05"]]


def test_a_huge_name_does_not_make_a_huge_figure(tmp_path):
    """README: "figure labels are cut at 100 characters" (a 5,000-character name made 1.36-gigapixel figures)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    from study.plots import _save

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.barh(["x" * 5000, "y"], [1, 2])
    ax.set_title("t" * 5000)
    ax.legend(["z" * 5000])
    with Image.open(_save(fig, tmp_path / "f.png")) as im:
        assert im.width * im.height < 4_000_000, im.size


def test_no_verdict_from_fewer_test_articles_than_min_group_articles():
    """Page 1 said "better" from one test article (a zero-width CI); below min_group_articles it is inconclusive."""
    from study.evaluation import compared

    cfg = load_config()
    rng = np.random.default_rng(0)
    n = cfg.min_group_articles
    mine, theirs = rng.uniform(0, 0.2, n), rng.uniform(1.8, 2.2, n)
    assert compared(cfg, mine, theirs)["verdict"] == "better"
    assert compared(cfg, mine[:n - 1], theirs[:n - 1])["verdict"] == "inconclusive"
    one = compared(cfg, mine[:1], theirs[:1])
    assert one["difference_ci95"][0] == one["difference_ci95"][1] and one["verdict"] == "inconclusive"

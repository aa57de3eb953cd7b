"""Hostile but realistic input: one `error:` line, exit code 2, and every artifact left as it was."""
import contextlib
import hashlib
import json
import os
import pickle
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from conftest import REPO, call, snapshot
from kills import killed_at_rename
from study.artifacts import atomic_path, load_pickle, merge_json, save_pickle, write_json
from study.config import load_config
from study.docx_writer import Writer
from study.errors import StudyError


def _baseline(tmp_path, demo_dir, rows):
    path = tmp_path / "baseline.json"
    n = sum(1 for _ in open(demo_dir / "test.jsonl"))
    path.write_text(json.dumps({"predictions": rows(n), "article_ids": [f"article_{i}" for i in range(n)]}))
    return path


def _foreign_evaluation(tmp_path, cfg, demo_dir):
    assert call("evaluate", "--config", cfg, "--data-dir", demo_dir) == 0
    ev = tmp_path / "results" / "demo_ds_evaluation_results.json"
    data = json.loads(ev.read_text())
    data["dataset"] = "other_ds"
    ev.write_text(json.dumps(data))


def _foreign_predictions(tmp_path, cfg, demo_dir):
    assert call("evaluate", "--config", cfg, "--data-dir", demo_dir) == 0
    pred = tmp_path / "results" / "predictions" / "demo_ds_tiny_ridge_test.npz"
    with np.load(pred, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(pred, **{**arrays, "dataset": np.asarray("other_ds")})


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def _evil_probe(tmp_path, cfg, demo_dir):
    save_pickle(tmp_path / "results" / "demo_ds_tiny_ridge.pkl", {"format": 1, "kind": "ridge", "x": Evil()})


# (case, script, extra arguments, setup(tmp_path, cfg, demo_dir) or None, expected part of the one line)
OUT_OF_RANGE = [("embed_articles", "--batch-size", "at least 1", ("0", "-1")),
                ("embed_articles", "--max-tokens", "at least 1", ("0", "-5")),
                ("evaluate", "--baseline-mae", "a finite number above 0", ("0", "nan", "-1"))]
CASES = [(f"{flag} {v}", script, [flag, v], None, f"{flag}: must be {rule}, found {v}")
         for script, flag, rule, values in OUT_OF_RANGE for v in values] + [
    ("max tokens beyond the positions", "embed_articles", ["--max-tokens", "600"], None,
     "max tokens 600 exceed the 512 positions"),
    ("baseline with NaN", "evaluate", ["--baseline-predictions", "BASELINE_NAN"], None, "refused JSON (NaN"),
    ("ragged baseline", "evaluate", ["--baseline-predictions", "BASELINE_RAGGED"], None, "(finite numbers)"),
    ("unsafe dataset name", "embed_articles", ["--dataset", "../../x"], None,
     "dataset name '../../x' would become part of file names"),
    ("training summary is a list", "train_probes", [], lambda t, c, d: (t / "results" / "demo_ds_training_summary.json")
     .write_text("[]"), "expected a JSON object, found list; remove it and rerun train_probes.py"),
    ("evaluation JSON is an empty object", "compare_results", [],
     lambda t, c, d: (t / "results" / "demo_ds_evaluation_results.json").write_text("{}"), "expected schema_version 2, found no schema_version"),
    ("another dataset's evaluation JSON", "generate_report", [], _foreign_evaluation,
     "holds the results of dataset 'other_ds', not 'demo_ds'"),
    ("another dataset's predictions", "analyze_error_distribution", [], _foreign_predictions,
     "holds predictions for dataset 'other_ds', not 'demo_ds'"),
    ("a file where a folder should be", "evaluate", [],
     lambda t, c, d: (t / "results" / "predictions").write_text("not a folder"), "predictions"),
    ("a pickle that would run code", "evaluate", [], _evil_probe, "refused (it names posix.system"),
]


@pytest.mark.parametrize("case, script, extra, setup, expect", CASES, ids=[c[0] for c in CASES])
def test_one_line_exit_2_and_nothing_touched(case, script, extra, setup, expect, tmp_path, workspace, capsys,
                                              monkeypatch):
    cfg, demo_dir = workspace
    monkeypatch.chdir(tmp_path)
    if setup:
        setup(tmp_path, cfg, demo_dir)
    extra = [str(_baseline(tmp_path, demo_dir, lambda n: [[float("nan")] * 3] * n)) if a == "BASELINE_NAN" else
             str(_baseline(tmp_path, demo_dir, lambda n: [[1.0, 2.0]] + [[1.0, 2.0, 3.0]] * (n - 1)))
             if a == "BASELINE_RAGGED" else a for a in extra]
    before = snapshot(tmp_path / "embeddings", tmp_path / "results")
    capsys.readouterr()
    code = call(script, "--config", cfg, "--data-dir", demo_dir, *extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (case, err)
    assert err and err[-1].startswith("error: ") and expect in err[-1], (case, err)
    assert not any("Traceback" in line for line in err)
    assert snapshot(tmp_path / "embeddings", tmp_path / "results") == before
    assert not (tmp_path / "pwned.txt").exists()


@pytest.mark.parametrize("key, value, expect", [
    (("lightgbm", "params", "num_leaves"), 1, "params.num_leaves must be a number >= 2"),
    (("mlp", "hidden_sizes"), [-1], "probe_methods.mlp.hidden_sizes.0"),
    (("ridge", "alphas"), [-1], "every alpha must be a finite number above 0"),
])
def test_probe_settings_out_of_range_stop_at_start(tmp_path, key, value, expect):
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    node = cfg["probe_methods"]
    for k in key[:-1]:
        node = node[k]
    node[key[-1]] = value
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(StudyError, match=expect):
        load_config(tmp_path / "config.yaml")


def test_artifacts_follow_the_umask_and_stale_temps_are_removed(tmp_path):
    old = os.umask(0o027)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640    # group may read, as with a plain open
    stale, fresh = tmp_path / ".a.json.killed.tmp", tmp_path / ".a.json.running.tmp"
    stale.write_bytes(b"x" * 1000)
    fresh.write_bytes(b"y")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    write_json(tmp_path / "a.json", {"x": 2})
    assert not stale.exists() and fresh.exists()       # a write still under way elsewhere is left alone
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "b.bin") as fh:
            fh.write(b"half")
            raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.json.running.tmp", "a.json"]


@pytest.mark.slow
def test_concurrent_merges_keep_every_entry(tmp_path):
    target = tmp_path / "summary.json"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from study.artifacts import merge_json\n"
            "for i in range(100): merge_json(sys.argv[2], {'models': {sys.argv[3] + str(i): {'n': i}}})")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(REPO), str(target), tag]) for tag in ("a", "b")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    assert len(json.loads(target.read_text())["models"]) == 200
    merge_json(target, {"models": {"c": {}}})
    assert len(json.loads(target.read_text())["models"]) == 201


class TorchLoadBypass:
    """A value that reduces to torch.storage._load_from_bytes: a full torch.load of bytes that run code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import io

        import torch
        buffer = io.BytesIO()
        torch.save(MarkerWriter(self.marker), buffer)   # weights_only=False would run MarkerWriter's reduce
        return (__import__("torch.storage").storage._load_from_bytes, (buffer.getvalue(),))


class MarkerWriter:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo ran > {self.marker}",))


class ViaTensor:
    """A real torch tensor whose storage would be rebuilt through _load_from_bytes."""

    def __reduce__(self):
        import torch
        return torch.ones(2).__reduce_ex__(2)


class ViaNumpyObjectArray:
    """An object-dtype numpy array whose element is the code runner."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        a = np.empty(1, dtype=object)
        a[0] = MarkerWriter(self.marker)
        return a.__reduce__()


def _bypasses(marker):
    yield "torch.storage._load_from_bytes", {"format": 2, "kind": "ridge", "metadata": {"x": TorchLoadBypass(marker)}}
    yield "a torch tensor", {"format": 2, "kind": "mlp", "state_dict": {"w": ViaTensor()}}
    yield "posix.system inside an object array", {"format": 2, "kind": "ridge", "coef": ViaNumpyObjectArray(marker)}
    yield "posix.system", {"format": 2, "kind": "ridge", "coef": MarkerWriter(marker)}
    yield "builtins.eval (protocol 0)", b"cbuiltins\neval\n(S'open(%r, \"w\").write(\"ran\")'\ntR." % str(marker).encode()
    yield "builtins.getattr", {"format": 2, "kind": "ridge", "x": getattr}


@pytest.mark.parametrize("case", [name for name, _ in _bypasses("m")])
def test_a_crafted_probe_file_runs_nothing(tmp_path, case):
    """Each bypass, with a matching checksum, is refused with one StudyError and leaves no marker file."""
    marker = tmp_path / "ran.txt"
    payload = dict(_bypasses(marker))[case]
    path = tmp_path / "p.pkl"
    if isinstance(payload, bytes):
        path.write_bytes(payload)
        (tmp_path / "p.pkl.sha256").write_text(f"{hashlib.sha256(payload).hexdigest()}  p.pkl\n")
    else:
        save_pickle(path, payload)
    with pytest.raises(StudyError, match="refused"):
        load_pickle(path)
    assert not marker.exists()
    if case == "torch.storage._load_from_bytes":   # the bypass is real: a bare pickle.load runs it
        with contextlib.suppress(Exception):
            pickle.loads(path.read_bytes())
        assert marker.read_text().strip() == "ran"


def test_plain_probe_files_load_and_others_are_refused(tmp_path):
    save_pickle(tmp_path / "ok.pkl", {"scaler": __import__("sklearn.preprocessing").preprocessing.StandardScaler(),
                                      "coef": np.ones((2, 3)), "w": np.ones(2, np.float32)})
    assert load_pickle(tmp_path / "ok.pkl")["coef"].shape == (2, 3)
    save_pickle(tmp_path / "bad.pkl", Evil())
    with pytest.raises(StudyError, match="refused"):
        load_pickle(tmp_path / "bad.pkl")
    assert pickle.loads((tmp_path / "ok.pkl").read_bytes())["coef"].sum() == 6   # a bare pickle.load still works


def test_control_characters_do_not_break_the_report(tmp_path):
    w = Writer("Title\x00", "sub\x0btitle")
    w.para("an id with \x00 and \x0b inside")
    w.table("caption \x01", ["a\x02", "b"], [["x\x0by", "1"]], "lr")
    w.save(tmp_path / "r.docx")
    import docx

    text = "\n".join(p.text for p in docx.Document(str(tmp_path / "r.docx")).paragraphs)
    assert "an id with  and  inside" in text


@pytest.mark.parametrize("killed_at", [1, 2])
def test_a_kill_between_the_pickle_and_its_checksum_leaves_a_whole_pair(tmp_path, monkeypatch, killed_at):
    path = tmp_path / "p.pkl"
    save_pickle(path, {"version": "old"})
    with killed_at_rename(monkeypatch, lambda n, dst: n == killed_at), pytest.raises(KeyboardInterrupt):
        save_pickle(path, {"version": "new"})
    # killed before the first rename: the old pair; after it: the new pair, finished on the next load
    assert load_pickle(path) == {"version": "old" if killed_at == 1 else "new"}
    assert load_pickle(path) == {"version": "old" if killed_at == 1 else "new"}
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("where, err", [("fsync", 28), ("mkstemp", 13), ("mkstemp", 30)])
def test_a_full_disk_or_read_only_folder_is_one_line(where, err, tmp_path, workspace, capsys, monkeypatch):
    """ENOSPC while writing, EACCES or EROFS when creating a file (simulated: the tests run as root)."""
    import errno
    import tempfile

    cfg, demo_dir = workspace
    before = snapshot(tmp_path / "embeddings", tmp_path / "results")

    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(os if where == "fsync" else tempfile, where, fail)
    capsys.readouterr()
    assert call("evaluate", "--config", cfg, "--data-dir", demo_dir) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == f"error: {os.strerror(err)} (nothing half-written was kept)" and err in errno.errorcode
    monkeypatch.undo()
    assert snapshot(tmp_path / "embeddings", tmp_path / "results") == before
    assert not list((tmp_path / "results").rglob("*.tmp"))


@pytest.mark.slow
def test_ctrl_c_while_starting_is_a_quiet_exit_130():
    code = "import os, signal, time, study; os.kill(os.getpid(), signal.SIGINT); time.sleep(5)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "interrupted while starting: nothing was written"

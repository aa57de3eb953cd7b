"""A command that fails leaves embeddings/ and results/ as they were: it checks what it can before its
first write (train_probes.py) or stages what it writes until it has succeeded (evaluate.py)."""
import errno
import os

import pytest
import yaml

from conftest import call, snapshot


def _run(script, cfg, demo_dir, *extra, capsys):
    capsys.readouterr()
    code = call(script, "--config", cfg, "--data-dir", demo_dir, *extra)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize("extra, expect", [
    (["--models", "tiny", "tiny-t32", "--probes", "ridge"], "embedding cache not found: "),
    (["--probes", "ridge", "lightgbm", "--train-fractions", "0.001", "0.5"],
     "--train-fractions 0.001 gives tiny ridge 1 training article of 120; ridge needs at least 2"),
    (["--probes", "lightgbm", "--train-fractions", "0.01"],
     "--train-fractions 0.01 gives tiny lightgbm 2 training articles of 120; lightgbm needs at least 2"),
], ids=["a later variant's cache missing", "a one-article subset", "a subset too small for bagging"])
def test_train_probes_fails_before_its_first_write(extra, expect, tmp_path, workspace, capsys):
    cfg, demo_dir = workspace
    if "0.01" in extra:   # bagging half the rows: a bag of 2 x 0.4 articles would be empty
        raw = yaml.safe_load(cfg.read_text())
        raw["probe_methods"]["lightgbm"]["params"].update(subsample=0.4, subsample_freq=1)
        cfg.write_text(yaml.safe_dump(raw))
        expect = expect.replace("needs at least 2", "needs at least 3 (subsample x articles >= 1)")
    before = snapshot(tmp_path / "embeddings", tmp_path / "results")
    code, err = _run("train_probes", cfg, demo_dir, *extra, capsys=capsys)
    assert code == 2 and err[-1].startswith("error: ") and expect in err[-1], err
    assert not any("Traceback" in line for line in err)
    assert snapshot(tmp_path / "embeddings", tmp_path / "results") == before


@pytest.mark.parametrize("seed", [-1, 2**31, 2**64])
def test_a_seed_no_library_takes_stops_at_start(seed, tmp_path, workspace, capsys):
    cfg, demo_dir = workspace
    raw = yaml.safe_load(cfg.read_text())
    raw["random_seed"] = seed
    cfg.write_text(yaml.safe_dump(raw))
    before = snapshot(tmp_path / "embeddings", tmp_path / "results")
    code, err = _run("train_probes", cfg, demo_dir, capsys=capsys)
    assert code == 2 and err[-1].startswith(f"error: {cfg}: key 'random_seed'"), err
    assert snapshot(tmp_path / "embeddings", tmp_path / "results") == before


def test_a_failing_evaluation_writes_no_prediction_file(tmp_path, workspace, capsys, monkeypatch):
    """The disk fills up at the evaluation JSON, after every probe's predictions were written: none is kept."""
    cfg, demo_dir = workspace
    before = snapshot(tmp_path / "embeddings", tmp_path / "results")
    import study.schemas as schemas   # every record is written through schemas.write_record
    real = schemas.write_json

    def full_disk(path, data):
        if path.name.endswith("_evaluation_results.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(schemas, "write_json", full_disk)
    code, err = _run("evaluate", cfg, demo_dir, capsys=capsys)
    assert code == 2 and err[-1].endswith("No space left on device (nothing half-written was kept)"), err
    assert snapshot(tmp_path / "embeddings", tmp_path / "results") == before
    assert not list((tmp_path / "results").rglob("*.tmp"))
    monkeypatch.undo()
    assert _run("evaluate", cfg, demo_dir, capsys=capsys)[0] == 0     # and the same command then succeeds
    assert list((tmp_path / "results" / "predictions").glob("demo_ds_tiny_ridge_test.npz"))

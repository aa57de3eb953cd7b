"""The results contract (study/schemas.py): a renamed field or another schema_version in a written evaluation JSON
stops every consumer with one `error:` line naming the file and the field, and changes nothing."""
import json

import pytest
from conftest import call, snapshot

from study import cli
from study.config import load_config
from study.schemas import SCHEMA_VERSION
from study.summary import write_summary

CONSUMERS = ["compare_results", "analyze_error_distribution", "generate_report", "summary"]


@pytest.fixture
def evaluated(score_study_copy):
    """A copy of the session's score study with its real evaluation JSON (evaluate.py on the demo dataset)."""
    cfg, demo_dir, _ = score_study_copy
    return cfg, demo_dir, load_config(cfg).results_path / "demo_ds_evaluation_results.json"


def _consume(consumer, cfg, demo_dir):
    if consumer == "summary":   # the cross-dataset summary of run_all.py
        try:
            cli.run(lambda: write_summary(load_config(cfg), ["demo_ds"]))
            return 0
        except SystemExit as exc:
            return exc.code
    return call(consumer, "--config", cfg, "--data-dir", demo_dir)


def _stops_with_one_line(consumer, cfg, demo_dir, capsys, tmp_path) -> str:
    before = snapshot(tmp_path / "embeddings", tmp_path / "results")
    capsys.readouterr()
    code = _consume(consumer, cfg, demo_dir)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2, (consumer, err)
    assert len(err) == 1 and err[0].startswith("error: "), (consumer, err)
    assert snapshot(tmp_path / "embeddings", tmp_path / "results") == before, consumer
    return err[0]


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_a_renamed_field_stops_every_consumer(consumer, evaluated, capsys, tmp_path, monkeypatch):
    cfg, demo_dir, path = evaluated
    monkeypatch.chdir(tmp_path)
    data = json.loads(path.read_text())
    probe = data["models"]["tiny"]["probes"]["ridge"]
    probe["overall_mae_x"] = probe.pop("overall_mae")
    path.write_text(json.dumps(data))
    line = _stops_with_one_line(consumer, cfg, demo_dir, capsys, tmp_path)
    assert str(path) in line and "models.tiny.probes.ridge.overall_mae" in line, line


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_another_schema_version_is_refused(consumer, evaluated, capsys, tmp_path, monkeypatch):
    cfg, demo_dir, path = evaluated
    monkeypatch.chdir(tmp_path)
    data = json.loads(path.read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(data))
    line = _stops_with_one_line(consumer, cfg, demo_dir, capsys, tmp_path)
    assert str(path) in line and f"expected schema_version {SCHEMA_VERSION}" in line
    assert f"found schema_version {SCHEMA_VERSION + 1}" in line, line

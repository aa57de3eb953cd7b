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


def _consume(consumer, cfg, demo_dir, *extra):
    if consumer == "summary":   # the cross-dataset summary of run_all.py
        try:
            cli.run(lambda: write_summary(load_config(cfg), ["demo_ds"]))
            return 0
        except SystemExit as exc:
            return exc.code
    return call(consumer, "--config", cfg, "--data-dir", demo_dir, *extra)


def _stops_with_one_line(consumer, cfg, demo_dir, capsys, tmp_path, *extra) -> str:
    before = snapshot(tmp_path / "embeddings", tmp_path / "results")
    capsys.readouterr()
    code = _consume(consumer, cfg, demo_dir, *extra)
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


def test_a_renamed_benchmark_figure_fails_loudly_not_as_a_blank_cell(evaluated, capsys, tmp_path, monkeypatch):
    """The benchmark's per-model figures are typed (schemas.TimedModel), the report reads them as attributes: a
    producer renaming `articles_per_s` fails before it writes anything, and a benchmark file holding the renamed field
    stops the report (Word and markdown) with one error line naming the file and the field, where a dict read with
    `.get` printed an empty Articles/s cell. Producer: benchmark_speed.py, run for real on the tiny model."""
    import docx

    import study.benchmark
    from study import paths
    from study.schemas import BenchmarkRecord, write_record

    cfg, demo_dir, _ = evaluated
    monkeypatch.chdir(tmp_path)
    bench = paths.benchmark(load_config(cfg), "demo_ds")
    produced = {}

    def renaming(*args, **kwargs):
        doc = produced["doc"] = real(*args, **kwargs)
        renamed = json.loads(json.dumps(doc, default=str))
        renamed["models"]["tiny"]["articles_per_second"] = renamed["models"]["tiny"].pop("articles_per_s")
        return renamed

    real = study.benchmark.run_benchmark
    monkeypatch.setattr(study.benchmark, "run_benchmark", renaming)
    line = _stops_with_one_line("benchmark_speed", cfg, demo_dir, capsys, tmp_path,
                                "--models", "tiny", "--probes", "ridge", "--n", "8", "--runs", "1", "--no-reference")
    assert "producer and its model disagree" in line and "models.tiny.timed.articles_per_s: missing" in line, line
    assert not bench.exists()

    write_record(bench, BenchmarkRecord, produced["doc"])   # what the producer writes: the report shows the figure
    rate = produced["doc"]["models"]["tiny"]["articles_per_s"]
    assert call("generate_report", "--config", cfg, "--data-dir", demo_dir, "--output", tmp_path / "r.docx") == 0
    speed = next(t for t in docx.Document(tmp_path / "r.docx").tables if t.rows[0].cells[2].text == "Articles/s")
    assert [c.text for c in speed.rows[1].cells][:3] == ["tiny", speed.rows[1].cells[1].text, f"{rate:.1f}"]

    data = json.loads(bench.read_text())
    data["models"]["tiny"]["articles_per_second"] = data["models"]["tiny"].pop("articles_per_s")
    bench.write_text(json.dumps(data))
    for consumer in ("generate_report", "compare_results"):
        line = _stops_with_one_line(consumer, cfg, demo_dir, capsys, tmp_path)
        assert str(bench) in line and "models.tiny.timed.articles_per_s: missing" in line, (consumer, line)

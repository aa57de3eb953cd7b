"""run_all.py: phases in order, stop at the first failure, and the offline demo end to end."""
import json

import docx

from conftest import run_script, write_config


def test_stops_at_the_first_failing_phase(tiny_config, tmp_path):
    proc = run_script("run_all.py", "--config", tiny_config, "--dataset", "nowhere", "--data-dir",
                      tmp_path / "no_such_folder", check=False)
    assert proc.returncode == 2
    assert "phase 1/7: embed_articles.py" in proc.stdout and "phase 2/7" not in proc.stdout
    assert "dataset folder not found" in proc.stderr
    assert "embed_articles.py failed with exit code 2" in proc.stderr and "not run: train_probes.py" in proc.stderr
    assert not (tmp_path / "results" / "nowhere_report.docx").exists()


def test_demo_end_to_end(tmp_path, tiny_model):
    cfg = write_config(tmp_path, {"tiny": {"source": "sentence-transformers", "model_name": str(tiny_model),
                                           "dimensions": 32, "max_tokens": 64, "batch_size": 16,
                                           "note": "English-only stand-in for the tests"}})
    proc = run_script("run_all.py", "--demo", "--config", cfg)
    out = tmp_path / "results" / "demo_report.docx"
    assert proc.stdout.rstrip().endswith(f"report: {out}")
    assert "STAND-IN" in proc.stdout and "English-only" in proc.stdout
    assert (tmp_path / "demo_data" / "test.jsonl").is_file()
    for script in ("embed_articles.py", "train_probes.py", "evaluate.py", "compare_results.py", "benchmark_speed.py",
                   "analyze_error_distribution.py", "generate_report.py"):
        assert f"=== {script} done in" in proc.stdout
    ev = json.loads((tmp_path / "results" / "demo_evaluation_results.json").read_text())
    doc = docx.Document(str(out))
    overall = next(t for t in doc.tables if [c.text for c in t.rows[0].cells][:4] == ["Model", "Probe", "Val MAE", "Test MAE"])
    cells = {(r.cells[0].text, r.cells[1].text): r.cells[3].text for r in overall.rows[1:]}
    for probe, m in ev["models"]["tiny"].items():
        if isinstance(m, dict) and "overall_mae" in m:
            assert cells["tiny", probe] == f"{m['overall_mae']:.3f}"
    assert len(doc.inline_shapes) >= 3  # comparison charts, error figures, quality vs speed

"""run_all.py: phases in order, stop at the first failure, and the offline demo end to end.

The demo runs as the README's quickstart does (a process, each phase a process of its own); the other runs call
run_all's main() in this process with its phases in this process too (conftest `phases_in_process`)."""
import json

import docx
import pytest

from conftest import in_process, run_script, write_config


def test_stops_at_the_first_failing_phase(tiny_config, tmp_path, phases_in_process):
    proc = in_process("run_all", "--config", tiny_config, "--dataset", "nowhere", "--data-dir",
                      tmp_path / "no_such_folder", check=False)
    assert proc.returncode == 2
    assert "phase 1 of 6, step 1/7 of this run: embed_articles.py" in proc.stdout and "step 2/7" not in proc.stdout
    assert "dataset folder not found" in proc.stderr
    assert "embed_articles.py failed with exit code 2" in proc.stderr and "not run: train_probes.py" in proc.stderr
    assert not (tmp_path / "results" / "nowhere_report.docx").exists()


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, tiny_model):
    """The README's quickstart as a user runs it: run_all.py a process, each phase a process of its own."""
    cfg = write_config(tmp_path, {"tiny": {"source": "sentence-transformers", "model_name": str(tiny_model),
                                           "dimensions": 32, "max_tokens": 64, "batch_size": 16,
                                           "note": "English-only stand-in for the tests"}})
    proc = run_script("run_all.py", "--demo", "--config", cfg, "--train-fractions", "0.5", "1.0")
    out = tmp_path / "results" / "demo_report.docx"
    # an option of one task goes to the datasets of that task only, the others are told
    assert "note: demo_yes_no has yes/no labels: --train-fractions left out for it" in proc.stdout
    ev = json.loads((tmp_path / "results" / "demo_evaluation_results.json").read_text())
    assert [p["n_train"] for p in ev["models"]["tiny"]["probes"]["ridge"]["learning_curve"]] == [150, 300]
    yes_no = tmp_path / "results" / "demo_yes_no_report.docx"
    assert proc.stdout.rstrip().endswith(f"report: {out}\n\nreport: {yes_no}")
    assert (tmp_path / "demo_data" / "demo_yes_no" / "dataset.yaml").is_file()
    assert json.loads((tmp_path / "results" / "demo_yes_no_evaluation_results.json").read_text())["task"] == \
        "classification"
    assert "Yes/no datasets" in (tmp_path / "results" / "summary.md").read_text()
    assert "STAND-IN" in proc.stdout and "English-only" in proc.stdout
    assert (tmp_path / "demo_data" / "test.jsonl").is_file()
    for script in ("embed_articles.py", "train_probes.py", "evaluate.py", "compare_results.py", "benchmark_speed.py",
                   "analyze_error_distribution.py", "generate_report.py"):
        assert f"=== {script} done in" in proc.stdout
    ev = json.loads((tmp_path / "results" / "demo_evaluation_results.json").read_text())
    doc = docx.Document(str(out))
    overall = next(t for t in doc.tables if [c.text for c in t.rows[0].cells][:3] == ["Model", "Probe",
                                                                                       "Test MAE [95% CI]"])
    cells = {(r.cells[0].text, r.cells[1].text.replace(" (best)", "")): r.cells[2].text for r in overall.rows[1:]}
    for probe, m in ev["models"]["tiny"]["probes"].items():
        assert cells["tiny", probe].split(" [")[0] == f"{m['overall_mae']:.3f}"
    assert len(doc.inline_shapes) >= 3  # comparison charts, error figures, quality vs speed


@pytest.mark.slow
def test_two_datasets_sharing_a_name_prefix_keep_their_own_figures(tmp_path, tiny_model, phases_in_process):
    """Phases 1-6 for datasets 'demo' and 'demo_ds' into one results/: each report embeds only its own figures."""
    import hashlib

    from study.demo import write_demo_dataset

    cfg = write_config(tmp_path, {"tiny": {"source": "sentence-transformers", "model_name": str(tiny_model),
                                           "dimensions": 32, "max_tokens": 64, "batch_size": 16}})
    names = ("demo", "demo_ds")
    dirs = [write_demo_dataset(tmp_path / "data" / name, n_train=80, n_val=30, n_test=40, seed=seed)
            for seed, name in enumerate(names)]
    # one run over both datasets and a missing one: --keep-going finishes the others, then exits 1
    proc = in_process("run_all", "--config", cfg, "--data-dirs", *dirs, tmp_path / "data" / "gone",
                      "--skip", "benchmark", "--keep-going", check=False)
    assert proc.returncode == 1
    assert "failed: gone: embed_articles.py exit code 2: error: dataset folder not found" in proc.stderr
    results = tmp_path / "results"
    summary = json.loads((results / "summary.json").read_text())
    assert [r["dataset"] for r in summary["datasets"]] == list(names)
    for r in summary["datasets"]:
        ev = json.loads((results / f"{r['dataset']}_evaluation_results.json").read_text())
        assert r["test_mae"] == ev["best"]["test_mae"] and r["model"] == ev["best"]["model"] == "tiny"
    assert (results / summary["figures"]["mae_by_dataset"]).is_file() and (results / "summary.md").is_file()
    logs = sorted((results / "logs").glob("*.log"))
    assert [p.name.split("_", 1)[1] for p in logs] == ["demo.log", "demo_ds.log", "gone.log"]
    log = logs[0].read_text()
    assert "=== phase 1 of 6, step 1/6 of this run: embed_articles.py" in log and "=== generate_report.py done in" in log
    assert "\r" not in log and log.count("tiny train:") <= 11     # a progress bar: a line per 10% at most
    # --from: phases 1-2 are not run again
    again = in_process("run_all", "--config", cfg, "--data-dir", dirs[0], "--from", "evaluate", "--skip",
                       "benchmark", "errors", "report")
    assert "phase 3 of 6, step 1/2 of this run: evaluate.py" in again.stdout and "embed_articles.py" not in again.stdout
    sha = lambda blob: hashlib.sha256(blob).hexdigest()  # noqa: E731
    recorded = {}
    for name in names:
        comparison = json.loads((results / f"{name}_comparison.json").read_text())
        errors = json.loads((results / "analysis" / f"{name}_error_summary.json").read_text())
        rels = list(comparison["figures"].values()) + list(errors["figures"].values())
        assert len(rels) == 10 and all(rel.split("/")[-1].startswith(f"{name}_") for rel in rels)
        recorded[name] = {sha((results / rel).read_bytes()) for rel in rels}
    # no figure file outside the records (the old names 'error_histograms_mlp_error_histograms.png' etc.)
    on_disk = {p.relative_to(results).as_posix() for p in results.rglob("*.png")
                if "_report_figures" not in str(p)} - set(summary["figures"].values())
    assert len(on_disk) == 20 and all(p.split("/")[-1].startswith(("demo_", "demo_ds_")) for p in on_disk)
    assert not recorded["demo"] & recorded["demo_ds"]
    for name, other in (names, names[::-1]):
        doc = docx.Document(str(results / f"{name}_report.docx"))
        embedded = {sha(p.blob) for p in doc.part.package.parts if p.content_type == "image/png"}
        # figures of its own only (the report leaves out those that repeat one of its tables), none of the other's
        assert embedded and embedded <= recorded[name] and not embedded & recorded[other], name


@pytest.mark.slow
def test_keep_going_leaves_a_failing_model_out_and_finishes_the_others(tmp_path, tiny_model, demo_dir,
                                                                       phases_in_process):
    cfg = write_config(tmp_path, {"tiny": {"source": "sentence-transformers", "model_name": str(tiny_model),
                                           "dimensions": 32, "max_tokens": 64, "batch_size": 16},
                                  "broken": {"source": "sentence-transformers", "model_name": "org/not-a-model",
                                             "dimensions": 32, "max_tokens": 64}})
    proc = in_process("run_all", "--config", cfg, "--data-dir", demo_dir, "--keep-going", "--skip", "benchmark",
                      "errors", check=False)
    assert proc.returncode == 1
    failed = [line for line in proc.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and failed[0].startswith("failed: demo_ds / broken: embed_articles.py exit code 2: "
                                                     "error: model 'broken' could not be loaded")
    ev = json.loads((tmp_path / "results" / "demo_ds_evaluation_results.json").read_text())
    assert list(ev["models"]) == ["tiny"] and (tmp_path / "results" / "demo_ds_report.docx").is_file()

"""score_articles.py: Stage 1 reproduces phase 3's test predictions and skip shares, resumes, refuses bad input."""
import hashlib
import itertools
import json
import shutil

import numpy as np
import pytest

from conftest import VARIANTS, call, snapshot
from study import paths, scoring
from study.artifacts import load_pickle, read_npz



def _lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _predictions(root, dataset, variant, kind):
    return read_npz(root / "results" / "predictions" / f"{dataset}_{variant}_{kind}_test.npz", "predictions", "")


@pytest.mark.parametrize("variant", VARIANTS)
def test_scores_and_routes_reproduce_phase_3_on_test(score_study, variant, tmp_path):
    cfg, demo, root = score_study
    ev = json.loads((root / "results" / "demo_ds_evaluation_results.json").read_text())
    shares = []
    for kind in ("ridge", "mlp", "lightgbm"):
        probe = root / "results" / f"demo_ds_{variant}_{kind}.pkl"
        pred = _predictions(root, "demo_ds", variant, kind)
        names = [str(d) for d in pred["dimension_names"]]
        bundle = root / "results" / f"demo_ds_stage1_{variant}_{kind}"   # phase 3's: the same numbers
        for target, (given, path) in itertools.product(ev["screening_setup"]["recall_targets"],
                                                       (("--probe", probe), ("--stage1", bundle))):
            out = tmp_path / f"{kind}_{target}_{given[2:]}.jsonl"
            assert call("score_articles", "--config", cfg, given, path, "--input", demo / "test.jsonl",
                        "--output", out, "--recall", target, "--rule", "plug-in") == 0
            lines = _lines(out)
            assert [x["id"] for x in lines] == [str(i) for i in pred["ids"]]
            P = np.array([[x["scores"][d] for d in names] for x in lines])
            assert np.abs(P - pred["y_pred"]).max() <= 1e-5, (variant, kind)
            # the article score and the route, recomputed from phase 3's own predictions and threshold
            entry = ev["models"][variant]["probes"][kind]["screening"]["thresholds"]
            chosen = next(t for t in entry if t["target_recall"] == target)
            w = np.array([ev["screening_setup"]["weights"][d] for d in names])
            s = pred["y_pred"].astype(np.float64) @ w
            assert np.allclose([x["article_score"] for x in lines], s, atol=1e-5)
            fine = np.array([x["route"] == "fine-tuned" for x in lines])
            assert np.array_equal(fine, s >= chosen["threshold"])
            assert (~fine).mean() == chosen["test"]["skip_share"]          # exactly phase 3's test skip share
            assert int((~fine).sum()) == chosen["test"]["n_skipped"]
            shares.append(chosen["test"]["skip_share"])
            tiers = ev["screening_setup"]["tiers"]
            expect = np.where(s >= tiers["high"], "high", np.where(s >= tiers["medium"], "medium", "low"))
            assert [x["tier"] for x in lines] == expect.tolist()
    if variant != "tiny-t16":   # at 16 tokens the probes score every test article alike (all go to fine-tuned)
        assert any(0 < x < 1 for x in shares), shares   # the routing was a real decision on this data


def test_yes_no_probes_reproduce_phase_3(yes_no_study, tmp_path, capsys):
    cfg, data, root = yes_no_study
    ev = json.loads((root / "results" / "demo_yes_no_evaluation_results.json").read_text())
    for kind, given in itertools.product(("logistic", "mlp", "lightgbm"), ("--probe", "--stage1")):
        pred = _predictions(root, "demo_yes_no", "tiny", kind)
        out = tmp_path / f"{kind}{given}.jsonl"
        name = f"demo_yes_no_tiny_{kind}.pkl" if given == "--probe" else f"demo_yes_no_stage1_tiny_{kind}"
        capsys.readouterr()
        assert call("score_articles", "--config", cfg, given, root / "results" / name,
                    "--input", data / "test.jsonl", "--output", out, "--labels") == 0
        said = capsys.readouterr().out
        lines = _lines(out)
        p = np.array([x["p_yes"] for x in lines])
        assert np.abs(p - pred["y_pred"][:, 0]).max() <= 1e-5
        yes = np.array([x["decision"] == "yes" for x in lines])
        assert np.array_equal(yes, pred["y_pred"][:, 0] >= float(pred["threshold"]))
        conf = ev["models"]["tiny"]["probes"][kind]["confusion"]
        assert yes.sum() == conf["tp"] + conf["fp"]
        errors = (conf["fp"] + conf["fn"]) / len(lines)
        assert f"error rate against the labels: {errors:.4f}" in said
        assert f"{(conf['tp'] + conf['fp']) / len(lines):.1%} yes" in said
    assert call("score_articles", "--config", cfg, "--probe", root / "results" / "demo_yes_no_tiny_mlp.pkl",
                "--input", data / "test.jsonl", "--output", tmp_path / "r.jsonl", "--recall", "0.99") == 2
    assert "--recall routes score datasets" in capsys.readouterr().err and not (tmp_path / "r.jsonl").exists()


def _many(demo, folder, copies=4):
    """The test split several times over, under new ids (240 articles): enough for several chunks."""
    rows = [json.loads(x) for x in (demo / "test.jsonl").read_text().splitlines()]
    path = folder / "many.jsonl"
    with open(path, "w") as fh:
        for c in range(copies):
            for r in rows:
                fh.write(json.dumps({**r, "id": f"{r['id']}_{c}"}) + "\n")
    return path


def test_a_killed_run_resumes_from_its_last_checkpoint_and_gives_the_same_bytes(score_study, tmp_path, monkeypatch, capsys):
    cfg, demo, root = score_study
    data = _many(demo, tmp_path)
    probe = root / "results" / "demo_ds_tiny-t16+tiny-c16_mlp.pkl"
    args = ["--config", cfg, "--probe", probe, "--input", data, "--chunk", "50", "--rule", "plug-in"]
    whole = tmp_path / "whole.jsonl"
    assert call("score_articles", *args, "--output", whole) == 0
    assert len(_lines(whole)) == 240
    assert not paths.scoring_partial(whole).exists() and not paths.scoring_checkpoint(whole).exists()

    real, seen = scoring.score_lines, []

    def dies_in_chunk_4(stage, ids, X, labels):
        seen.append(ids[0])
        if len(seen) == 4:
            raise KeyboardInterrupt   # what Ctrl-C or a kill does midway
        return real(stage, ids, X, labels)

    monkeypatch.setattr(scoring, "score_lines", dies_in_chunk_4)
    out = tmp_path / "resumed.jsonl"
    assert call("score_articles", *args, "--output", out) == 130
    assert not out.exists()                                             # nothing half-written in its place
    assert json.loads(paths.scoring_checkpoint(out).read_text())["articles"] == 150
    seen.clear()
    monkeypatch.setattr(scoring, "score_lines", lambda *a: (seen.append(a[1][0]), real(*a))[1])
    capsys.readouterr()
    assert call("score_articles", *args, "--output", out) == 0
    ids = [x["id"] for x in _lines(whole)]
    assert seen == [ids[150], ids[200]]                                # only chunks 4 and 5 were embedded again
    assert "resumed after 150" in capsys.readouterr().out
    assert out.read_bytes() == whole.read_bytes()
    assert not paths.scoring_partial(out).exists() and not paths.scoring_checkpoint(out).exists()

    # a checkpoint of another run (other settings) is not resumed: it starts afresh, same bytes again
    monkeypatch.setattr(scoring, "score_lines", dies_in_chunk_4)
    seen.clear()
    other = tmp_path / "other.jsonl"
    assert call("score_articles", *args, "--output", other, "--recall", "0.95") == 130
    monkeypatch.setattr(scoring, "score_lines", real)
    assert call("score_articles", *args, "--output", other) == 0
    assert other.read_bytes() == whole.read_bytes()


def _bad(tmp_path, demo, line):
    rows = (demo / "test.jsonl").read_text().splitlines()[:5]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(rows[:3] + [line] + rows[3:]) + "\n")
    return path


@pytest.mark.parametrize("case", ["no_text", "duplicate_id", "no_id", "checksum", "unloadable_model", "revision"])
def test_bad_input_is_one_error_line_and_nothing_written(score_study, tmp_path, case, capsys):
    cfg, demo, root = score_study
    probe = root / "results" / "demo_ds_tiny_ridge.pkl"
    first = json.loads((demo / "test.jsonl").read_text().splitlines()[0])
    data, extra = demo / "test.jsonl", []
    if case == "no_text":
        data = _bad(tmp_path, demo, json.dumps({"id": "empty", "title": "  ", "content": ""}))
        expect = "bad.jsonl:4: article 'empty' has neither 'title' nor 'content'"
    elif case == "duplicate_id":
        data = _bad(tmp_path, demo, json.dumps({**first, "title": "another"}))
        expect = "bad.jsonl:4: article id already appears on line 1"
    elif case == "no_id":
        data = _bad(tmp_path, demo, json.dumps({"title": "t", "content": "c"}))
        expect = "bad.jsonl:4: field 'id' is missing"
    elif case in ("checksum", "unloadable_model", "revision"):
        shutil.copytree(root / "results", tmp_path / "results")
        probe = tmp_path / "results" / probe.name
        if case == "checksum":
            blob = bytearray(probe.read_bytes())
            blob[-20] ^= 1
            probe.write_bytes(bytes(blob))
            expect = "checksum differs from demo_ds_tiny_ridge.pkl.sha256"
        else:
            bundle = load_pickle(probe)
            if case == "unloadable_model":
                bundle["metadata"]["embedding"]["model_name"] = str(tmp_path / "no-such-model")
                expect = "no-such-model does not exist"
            else:
                bundle["metadata"]["embedding_fingerprint"]["revision"] = "sha256:0123456789abcdef"
                expect = "but the probe was trained on embeddings of revision sha256:0123456789abcdef; retrain"
            from study.artifacts import save_pickle
            save_pickle(probe, bundle)
    before = snapshot(tmp_path)
    out = tmp_path / "out" / "scored.jsonl"
    capsys.readouterr()
    assert call("score_articles", "--config", cfg, "--probe", probe, "--input", data, "--output", out, "--rule",
                "plug-in", *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expect in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert snapshot(tmp_path) == before and not (tmp_path / "out").exists()
    if case == "revision":   # --allow-revision scores anyway, with a warning, and the same numbers
        assert call("score_articles", "--config", cfg, "--probe", probe, "--input", data, "--output", out,
                    "--rule", "plug-in", "--allow-revision") == 0
        err = capsys.readouterr().err
        assert "warning:" in err and "--allow-revision" in err
        pred = _predictions(root, "demo_ds", "tiny", "ridge")
        got = np.array([list(x["scores"].values()) for x in _lines(out)])
        assert np.abs(got - pred["y_pred"]).max() <= 1e-5


def test_the_guaranteed_rule_routes_by_the_certified_threshold_or_refuses(score_study, tmp_path, capsys):
    """Default rule: the guaranteed threshold phase 3 recorded; a target validation cannot certify is refused."""
    cfg, demo, root = score_study
    ev = json.loads((root / "results" / "demo_ds_evaluation_results.json").read_text())
    pred = _predictions(root, "demo_ds", "tiny", "ridge")
    w = np.array([ev["screening_setup"]["weights"][str(d)] for d in pred["dimension_names"]])
    s = pred["y_pred"].astype(np.float64) @ w
    outcomes = set()
    for entry in ev["models"]["tiny"]["probes"]["ridge"]["screening"]["thresholds"]:
        for given, path in (("--probe", root / "results" / "demo_ds_tiny_ridge.pkl"),
                            ("--stage1", root / "results" / "demo_ds_stage1_tiny_ridge")):
            g, out = entry["guaranteed"], tmp_path / f"g_{entry['target_recall']}{given}.jsonl"
            code = call("score_articles", "--config", cfg, given, path,
                        "--input", demo / "test.jsonl", "--output", out, "--recall", entry["target_recall"])
            if g["certified"]:
                assert code == 0
                fine = np.array([x["route"] == "fine-tuned" for x in _lines(out)])
                assert np.array_equal(fine, s >= g["threshold"]) and (~fine).mean() == g["test"]["skip_share"]
            else:
                assert code == 2 and not out.exists()
                err = capsys.readouterr().err
                assert err.count("error:") == 1 and "cannot be certified with" in err and "--rule plug-in" in err
            outcomes.add(g["certified"])
    assert False in outcomes   # the demo's few medium+ validation articles cannot certify 99%


def test_a_recall_target_phase_3_did_not_choose_is_refused(score_study, tmp_path, capsys):
    cfg, demo, root = score_study
    out = tmp_path / "s.jsonl"
    assert call("score_articles", "--config", cfg, "--probe", root / "results" / "demo_ds_tiny_ridge.pkl",
                "--input", demo / "test.jsonl", "--output", out, "--recall", "0.9") == 2
    err = capsys.readouterr().err
    assert "recall targets 0.99, 0.98, 0.95 only" in err and not out.exists()


def test_duplicate_ids_are_found_across_blocks_of_hashes_and_named_by_their_lines(tmp_path):
    path = tmp_path / "ids.jsonl"
    with open(path, "w") as fh:
        for i in range(70_000):   # more than one block of hashes
            fh.write(json.dumps({"id": i, "title": "t"}) + "\n")
        fh.write(json.dumps({"id": "12", "title": "again"}) + "\n")   # the id 12, as a string: the same article
    with pytest.raises(scoring.StudyError, match=r"ids.jsonl:70001: article id already appears on line 13"):
        scoring.check_input(path, False, 1)
    ok = tmp_path / "ok.jsonl"
    ok.write_text("".join(path.read_text().splitlines(keepends=True)[:70_000]))
    n, sha = scoring.check_input(ok, False, 1)
    assert n == 70_000 and sha == hashlib.sha256(ok.read_bytes()).hexdigest()


@pytest.mark.slow
def test_the_stage1_bundle_travels_alone_and_refuses_tampering(score_study, tmp_path, capsys):
    """Phase 3's bundle folder holds the probe and what phase 3 chose for it: scored from a folder holding nothing
    else it gives the bytes of the probe file + evaluation JSON; a changed JSON or array header is one error line."""
    cfg, demo, root = score_study
    ev = json.loads((root / "results" / "demo_ds_evaluation_results.json").read_text())
    variant, kind = "tiny-t16+tiny-c16", "lightgbm"
    name = f"demo_ds_stage1_{variant}_{kind}"
    alone = tmp_path / "serving" / name
    shutil.copytree(root / "results" / name, alone)
    args = ["--config", cfg, "--input", demo / "test.jsonl", "--recall", "0.95", "--rule", "plug-in"]
    assert call("score_articles", *args, "--stage1", alone, "--output", tmp_path / "b.jsonl") == 0
    probe_file = root / "results" / f"demo_ds_{variant}_{kind}.pkl"
    assert call("score_articles", *args, "--probe", probe_file, "--output", tmp_path / "p.jsonl") == 0
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "p.jsonl").read_bytes()

    spec = json.loads((alone / "stage1.json").read_text())
    entry = ev["models"][variant]["probes"][kind]
    assert spec["weights"] == ev["screening_setup"]["weights"] and spec["tiers"] == ev["screening_setup"]["tiers"]
    assert spec["thresholds"] == [{"target_recall": t["target_recall"], "plug-in": t["threshold"],
                                   "guaranteed": t["guaranteed"]["threshold"], "confidence": t["guaranteed"]["confidence"],
                                   "note": t["guaranteed"]["note"]} for t in entry["screening"]["thresholds"]]
    assert spec["probe_sha256"] == hashlib.sha256(probe_file.read_bytes()).hexdigest()
    assert spec["embedding"] == load_pickle(probe_file)["metadata"]["embedding"]
    assert [p["max_tokens"] for p in spec["embedding"]["concatenation"]] == [16, 16]   # the recipe of a pair
    assert not list(alone.rglob("*.pkl"))

    # the wrong kind of file for the option: one error line each, nothing written
    for given, path, expect in (("--stage1", probe_file, "not a Stage 1 bundle"),
                                ("--stage1", alone.parent / "missing", "Stage 1 bundle not found"),
                                ("--probe", alone, "a Stage 1 bundle; give it as --stage1")):
        capsys.readouterr()
        assert call("score_articles", *args, given, path, "--output", tmp_path / "x.jsonl") == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expect in err and err.count("\n") == 1
    # a changed JSON value, then an array header rewritten with its checksum updated: refused, nothing written
    sums = (alone / "SHA256SUMS").read_text()
    changed = (alone / "stage1.json").read_bytes().replace(b'"medium": 4.0', b'"medium": 1.0')
    assert changed != (alone / "stage1.json").read_bytes()
    header = bytearray((alone / "arrays.safetensors").read_bytes())
    header[8:16] = b'{"zzz":1'   # the JSON header of safetensors, no longer valid
    for target, blob, fix_sums, expect in (("stage1.json", changed, False, "stage1.json: checksum differs from SHA256SUMS"),
                                           ("stage1.json", b"[1, 2]", True, "not a Stage 1 bundle of format"),
                                           ("arrays.safetensors", bytes(header), True, "unreadable array header")):
        original = (alone / target).read_bytes()
        (alone / target).write_bytes(blob)
        if fix_sums:
            (alone / "SHA256SUMS").write_text(sums.replace(hashlib.sha256(original).hexdigest(),
                                                           hashlib.sha256(blob).hexdigest()))
        capsys.readouterr()
        assert call("score_articles", *args, "--stage1", alone, "--output", tmp_path / "x.jsonl") == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expect in err and err.count("\n") == 1 and "Traceback" not in err, err
        (alone / target).write_bytes(original)
        (alone / "SHA256SUMS").write_text(sums)
    assert not (tmp_path / "x.jsonl").exists()


def test_phase_3_writes_one_bundle_per_evaluated_probe_with_its_checksums(score_study):
    cfg, demo, root = score_study
    from study.stage1 import read_bundle

    ev = json.loads((root / "results" / "demo_ds_evaluation_results.json").read_text())
    for variant, model in ev["models"].items():
        for kind in model["probes"]:
            folder = root / "results" / f"demo_ds_stage1_{variant}_{kind}"
            listed = dict(reversed(line.split("  ", 1)) for line in (folder / "SHA256SUMS").read_text().splitlines())
            assert {"stage1.json", "arrays.safetensors", "model_card.md"} <= set(listed)
            assert all(hashlib.sha256((folder / f).read_bytes()).hexdigest() == h for f, h in listed.items())
            probe_file = root / "results" / f"demo_ds_{variant}_{kind}.pkl"
            data = read_bundle(folder)
            assert data["spec"].probe_sha256 == hashlib.sha256(probe_file.read_bytes()).hexdigest()
            X = read_npz(root / "embeddings" / f"demo_ds_{variant}_val.npz", "cache", "")["embeddings"]
            np.testing.assert_array_equal(data["estimator"].predict(X), data["arrays"]["val.predictions"])
            pred = _predictions(root, "demo_ds", variant, kind)   # phase 3's own validation predictions
            val = read_npz(root / "results" / "predictions" / f"demo_ds_{variant}_{kind}_val.npz", "p", "")
            np.testing.assert_array_equal(val["y_pred"], data["arrays"]["val.predictions"])
            assert pred["y_pred"].shape[1] == len(data["spec"].dimension_names)
            card = (folder / "model_card.md").read_text()
            assert f"| test | {ev['n_test']} |" in card and f"MAE {model['probes'][kind]['overall_mae']:.3f}" in card


def test_padding_free_batches_give_phase_3s_scores(score_study, tmp_path, monkeypatch):
    """--packed (the tiny BERT laid end to end, per-sequence attention on CPU) reproduces the padded phase 3."""
    import study.embedders as E

    cfg, demo, root = score_study
    calls, real = [], E.varlen_attention
    monkeypatch.setattr(E, "varlen_attention", lambda *a: calls.append(a[0].shape) or real(*a))
    pred = _predictions(root, "demo_ds", "tiny-c16", "mlp")
    out = tmp_path / "packed.jsonl"
    assert call("score_articles", "--config", cfg, "--stage1", root / "results" / "demo_ds_stage1_tiny-c16_mlp",
                "--input", demo / "test.jsonl", "--output", out, "--rule", "plug-in", "--packed") == 0
    names = [str(d) for d in pred["dimension_names"]]
    P = np.array([[x["scores"][d] for d in names] for x in _lines(out)])
    assert np.abs(P - pred["y_pred"]).max() <= 1e-5
    assert calls   # the batches did go through variable-length attention


PRODUCTION_LOAD = """
import pickle, sys
import numpy as np
import torch
with open(sys.argv[1], "rb") as fh:
    data = pickle.load(fh)
c = data["model_config"]
net = torch.nn.Sequential(torch.nn.Linear(c["input_dim"], 256), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                          torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                          torch.nn.Linear(128, c["output_dim"]))
net.load_state_dict({k.split(".", 1)[1]: v for k, v in data["state_dict"].items()})   # keys network.<i>.*
with torch.no_grad():
    P = net.eval()(torch.FloatTensor(data["scaler"].transform(np.load(sys.argv[2])))).numpy().clip(0, 10)
np.save(sys.argv[3], P)
"""


def _export_mlp(cfg, root, out):
    """score_articles --export of phase 3's one-seed MLP bundle to `out` (plug-in rule, recall 0.95)."""
    assert call("score_articles", "--config", cfg, "--stage1", root / "results" / "demo_ds_stage1_tiny_mlp", "--export",
                out, "--rule", "plug-in", "--recall", "0.95") == 0


def test_export_writes_phase_3s_threshold_in_the_production_layout_and_refuses_ridge(score_study, tmp_path, capsys):
    """One seed: the exported MLP is the probe itself, with phase 3's own plug-in threshold."""
    cfg, demo, root = score_study
    out = tmp_path / "embedding_probe.pkl"
    capsys.readouterr()
    _export_mlp(cfg, root, out)
    said = capsys.readouterr().out
    assert "member 0 of 1" in said and "EmbeddingStage(embedding_model_name=" in said
    ev = json.loads((root / "results" / "demo_ds_evaluation_results.json").read_text())
    t = next(t for t in ev["models"]["tiny"]["probes"]["mlp"]["screening"]["thresholds"] if t["target_recall"] == 0.95)
    import pickle
    with open(out, "rb") as fh:
        assert pickle.load(fh)["threshold"] == t["threshold"]   # one member: phase 3's own plug-in threshold

    for bad, expect in ((root / "results" / "demo_ds_stage1_tiny_ridge", "a ridge probe: the production layout holds "
                                                                         "one MLP"),):
        assert call("score_articles", "--config", cfg, "--stage1", bad, "--export", tmp_path / "r.pkl") == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expect in err and err.count("\n") == 1
        assert not (tmp_path / "r.pkl").exists()


@pytest.mark.slow   # another interpreter (python -I) that cannot import the project: it pays torch's start
def test_export_gives_phase_3s_predictions_through_the_production_contract(score_study, tmp_path):
    import subprocess
    import sys

    cfg, demo, root = score_study
    out = tmp_path / "embedding_probe.pkl"
    _export_mlp(cfg, root, out)
    X = read_npz(root / "embeddings" / "demo_ds_tiny_test.npz", "cache", "")["embeddings"]
    np.save(tmp_path / "X.npy", X)
    proc = subprocess.run([sys.executable, "-I", "-c", PRODUCTION_LOAD, str(out), "X.npy", "P.npy"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(np.load(tmp_path / "P.npy"), _predictions(root, "demo_ds", "tiny", "mlp")["y_pred"],
                               atol=1e-5, rtol=0)


def test_production_weights_and_tier_free_output(score_study, tmp_path):
    """--weights: the fine-tuned scorer's weights route, thresholds chosen again for them on validation; --no-tiers."""
    cfg, demo, root = score_study
    pred = _predictions(root, "demo_ds", "tiny", "ridge")
    names = [str(d) for d in pred["dimension_names"]]
    ft = {d: (0.5 if i == 0 else 0.5 / (len(names) - 1)) for i, d in enumerate(names)}
    (tmp_path / "ft.json").write_text(json.dumps(ft))
    out = tmp_path / "w.jsonl"
    assert call("score_articles", "--config", cfg, "--stage1", root / "results" / "demo_ds_stage1_tiny_ridge",
                "--input", demo / "test.jsonl", "--output", out, "--weights", tmp_path / "ft.json", "--rule", "plug-in",
                "--recall", "0.95", "--no-tiers") == 0
    lines = _lines(out)
    assert all("tier" not in x for x in lines)
    w = np.array([ft[d] for d in names])
    val = read_npz(root / "results" / "predictions" / "demo_ds_tiny_ridge_val.npz", "p", "")
    s_true, s_pred = val["y_true"].astype(np.float64) @ w, val["y_pred"].astype(np.float64) @ w
    rel = s_pred[s_true >= 4.0]
    threshold = max(c for c in rel if (rel >= c).mean() >= 0.95 - 1e-12)   # counted, candidate by candidate
    s = pred["y_pred"].astype(np.float64) @ w
    assert np.allclose([x["article_score"] for x in lines], s, atol=1e-5)
    assert np.array_equal([x["route"] == "fine-tuned" for x in lines], s >= threshold)

"""score_articles.py and the JSON consumers against hostile input (issue 26), each with the README promise it checks
("What happens on bad input"): one `error:` line, exit 2, results/ and embeddings/ (and the input) as they were."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO, call, snapshot, write_tiny_config
from study import data as data_module, paths, scoring
from study.data import clip_text


@pytest.fixture(scope="module")
def evaluated(prepared, tmp_path_factory, tiny_model):
    """`prepared` (tiny model, ridge probe) evaluated once: a Stage 1 bundle and the evaluation JSON."""
    root = tmp_path_factory.mktemp("hostile_scoring")
    shutil.copytree(prepared, root, dirs_exist_ok=True)
    cfg = write_tiny_config(root, tiny_model)
    assert call("evaluate", "--config", cfg, "--data-dir", root / "demo_ds") == 0
    return root


@pytest.fixture
def ws(evaluated, tmp_path, tiny_model):
    shutil.copytree(evaluated, tmp_path, dirs_exist_ok=True)
    cfg = write_tiny_config(tmp_path, tiny_model)
    articles = tmp_path / "articles.jsonl"
    articles.write_text("".join(json.dumps({"id": f"a{i}", "title": "Solar power", "content": f"Panels number {i}."})
                                + "\n" for i in range(30)), encoding="utf-8")
    return cfg, tmp_path, articles


def _score(cfg, root, articles, output, *extra, capsys=None):
    bundle = root / "results" / "demo_ds_stage1_tiny_ridge"
    if capsys:
        capsys.readouterr()
    code = call("score_articles", "--config", cfg, "--stage1", bundle, "--input", articles, "--output", output,
                "--rule", "plug-in", *extra)
    err = capsys.readouterr().err.strip().splitlines() if capsys else []
    return code, err


def _refused(code, err, expect):
    assert code == 2, err
    assert err and err[-1].startswith("error: ") and expect in err[-1], err
    assert not any("Traceback" in line for line in err)


@pytest.mark.parametrize("target, expect", [
    ("INPUT", "is the --input file"), ("BUNDLE", "is a folder"),
    ("SHA", "is the checksum of the probe file or bundle"), ("LINK", "is the --input file"),
    ("results/scored.jsonl", "lies in results/"), ("embeddings/sub/scored.jsonl", "lies in embeddings/"),
])
def test_output_may_not_overwrite_the_input_the_bundle_or_the_study(ws, capsys, target, expect):
    """README: "--output may not be the input, the bundle or anything under results/ or embeddings/"."""
    cfg, root, articles = ws
    bundle = root / "results" / "demo_ds_stage1_tiny_ridge"
    if target == "LINK":
        os.link(articles, root / "link.jsonl")
    output = {"INPUT": articles, "BUNDLE": bundle, "SHA": paths.checksum(bundle), "LINK": root / "link.jsonl"}.get(
        target, root / target)
    before = snapshot(root / "results", root / "embeddings"), articles.read_bytes()
    _refused(*_score(cfg, root, articles, output, capsys=capsys), expect)
    assert (snapshot(root / "results", root / "embeddings"), articles.read_bytes()) == before


HOLDER = textwrap.dedent("""
    import sys, time
    from study.artifacts import hold_run
    hold_run(sys.argv[1], "x")
    print("held", flush=True)
    time.sleep(120)
""")


def test_one_run_per_output(ws, capsys):
    """README: "one run at a time writes an --output (a second is refused, naming the first)"."""
    cfg, root, articles = ws
    output = root / "scored.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(paths.scoring_lock(output))], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, err = _score(cfg, root, articles, output, capsys=capsys)
        _refused(code, err, f"is in use by pid {holder.pid} on ")
        assert not output.exists() and not paths.scoring_partial(output).exists()
    finally:
        holder.kill()
        holder.wait()
    assert _score(cfg, root, articles, output, capsys=capsys)[0] == 0   # the lock dies with its holder
    assert len(output.read_text().splitlines()) == 30


def test_an_input_rewritten_while_scored_is_not_published(ws, capsys, monkeypatch):
    """README: the input is fingerprinted (size and sha256 of what was read); a rewrite is never published."""
    cfg, root, articles = ws
    articles.write_text("".join(json.dumps({"id": f"a{i}", "title": "Solar", "content": f"Panels {i}. " + "sun " * 300})
                                + "\n" for i in range(30)), encoding="utf-8")   # 36 kB: more than a read buffer
    output = root / "scored.jsonl"
    real, calls = scoring.score_lines, []

    def rewrite_after_first_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:   # same number of lines, other text, after the first chunk was read
            articles.write_text(articles.read_text().replace("Panels", "Lenses"), encoding="utf-8")   # same size
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring, "score_lines", rewrite_after_first_chunk)
    _refused(*_score(cfg, root, articles, output, "--chunk", "10", capsys=capsys), "changed while it was scored")
    assert not output.exists()
    monkeypatch.undo()
    assert _score(cfg, root, articles, output, "--chunk", "10", capsys=capsys)[0] == 0   # no resume of the old text
    assert all(json.loads(line)["id"] for line in output.read_text().splitlines())


@pytest.mark.parametrize("line, expect", [
    ("[" * 100_000 + "]" * 100_000, "malformed JSON (nested too deeply)"),
    ('{"id": 1, "title": "x", "content": "' + "y" * 10 + '", "n": ' + "9" * 5001 + "}", "unreadable JSON"),
    ('{"id": "a\\ud800", "title": "x"}', "lone surrogate"),
    ('{"id": "a", "title": 5}', "must be strings"),
    ("LONG", "the line is over"),
])
def test_a_hostile_input_line_is_one_error_naming_the_line(ws, capsys, monkeypatch, line, expect):
    cfg, root, articles = ws
    if line == "LONG":
        monkeypatch.setattr(data_module, "MAX_LINE_BYTES", 1000)
        line = json.dumps({"id": "long", "content": "word " * 500})
    articles.write_text(articles.read_text() + line + "\n", encoding="utf-8")
    code, err = _score(cfg, root, articles, root / "scored.jsonl", capsys=capsys)
    _refused(code, err, f"{articles}:31: ")
    assert expect in err[-1], err


def test_line_separators_in_an_id_stay_escaped(ws, capsys):
    """U+2028 / U+2029 are line breaks to many readers: escaped in the output, one line per article."""
    cfg, root, articles = ws
    articles.write_text(json.dumps({"id": "a\u2028b\u2029c", "title": "Solar"}) + "\n", encoding="utf-8")
    assert _score(cfg, root, articles, root / "s.jsonl", capsys=capsys)[0] == 0
    text = (root / "s.jsonl").read_text(encoding="utf-8")
    assert len(text.splitlines()) == 1 and json.loads(text)["id"] == "a\u2028b\u2029c"


def test_clipping_keeps_every_token_the_model_reads(real_model):
    """A long article is cut before tokenizing, where the tokenizer, reading `tokens` tokens, cannot reach."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(real_model))
    text = "Rooftop solar   panels,\n\n cut bills by 12.5% (in 2024)! " * 20_000   # 1 MB
    clipped = clip_text(text, 256)
    assert len(clipped) < 3_000
    full = tok(text[:20_000], truncation=True, max_length=256)["input_ids"]
    assert tok(clipped, truncation=True, max_length=256)["input_ids"] == full
    assert clip_text("short", 256) == "short"


@pytest.mark.parametrize("script", ["compare_results", "generate_report", "analyze_error_distribution",
                                    "score_articles"])
@pytest.mark.parametrize("hostile", ["deep", "digits", "surrogate", "nan"])
def test_every_json_consumer_refuses_hostile_json_in_one_line(ws, capsys, script, hostile):
    """README: "a JSON file nested too deeply, with over-long numbers, NaN or lone surrogates: one line naming it"."""
    cfg, root, articles = ws
    ev = root / "results" / "demo_ds_evaluation_results.json"
    text = ev.read_text()
    ev.write_text({"deep": '{"x": ' + "[" * 100_000 + "]" * 100_000 + "," + text[1:],
                   "digits": '{"x": ' + "7" * 5001 + "," + text[1:],
                   "surrogate": '{"x": "\\udc00",' + text[1:],
                   "nan": '{"x": NaN,' + text[1:]}[hostile])
    before = snapshot(root / "results", root / "embeddings")
    capsys.readouterr()
    if script == "score_articles":
        code = call(script, "--config", cfg, "--probe", root / "results" / "demo_ds_tiny_ridge.pkl", "--input",
                    articles, "--output", root / "s.jsonl")
    else:
        code = call(script, "--config", cfg, "--data-dir", root / "demo_ds")
    err = capsys.readouterr().err.strip().splitlines()
    _refused(code, err, f"{ev}: ")
    assert snapshot(root / "results", root / "embeddings") == before


# A phase's start as every phase script's main() makes it under cli.run: its config, then the results folder's lock
# (compare_results.py was run here: its figures' imports cost 2 s). run_all.py's own phases go ahead under its lock
# in test_run_all.py's demo end to end (slow).
PHASE = textwrap.dedent("""
    import sys
    from study import cli
    from study.config import load_config
    cli.run(lambda: cli.hold_results(load_config(sys.argv[1])))
""")
RUN_ALL_LIKE = textwrap.dedent("""
    import os, subprocess, sys
    from study import cli
    from study.config import load_config
    PHASE = sys.argv[4]
    cfg = load_config(sys.argv[1])
    cli.hold_results(cfg)            # as run_all.py does, for all of its phases
    print("held", flush=True)
    if sys.argv[3] == "phase":       # a phase it starts goes ahead under its lock
        env = {**os.environ, cli.RESULTS_LOCK_ENV: str(os.getpid())}
        code = subprocess.run([sys.executable, "-c", PHASE, sys.argv[1]], env=env, capture_output=True).returncode
        print(f"phase {code}", flush=True)
    sys.stdin.read()
""")


def test_one_run_per_results_folder(ws, capsys):
    """README: "a second run on one results/ (run_all.py or a phase) while another holds it, naming the holder"."""
    cfg, root, _ = ws
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", RUN_ALL_LIKE, str(cfg), str(root / "demo_ds"), "phase", PHASE],
                              cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert holder.stdout.readline().strip() == "phase 0"
        before = snapshot(root / "results", root / "embeddings")
        capsys.readouterr()
        code = call("generate_report", "--config", cfg, "--data-dir", root / "demo_ds")
        err = capsys.readouterr().err.strip().splitlines()
        _refused(code, err, f"results folder {root / 'results'} is in use by pid {holder.pid} on ")
        assert "RUN_ALL_LIKE" not in err[-1] and snapshot(root / "results", root / "embeddings") == before
    finally:
        holder.kill()
        holder.wait()
    assert call("compare_results", "--config", cfg, "--data-dir", root / "demo_ds") == 0   # free again

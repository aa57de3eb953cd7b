"""Chunked variants (<model>-c<N>: windows averaged) and concatenations (a+b: cached embeddings side by side)."""
import json

import docx
import numpy as np
import pytest

from conftest import TINY, call, sample_texts, write_config
from records import as_model, model_entry, paired, score_evaluation, score_probe
from study.artifacts import read_npz, save_npz
from study.config import load_config
from study.embedders import average_windows, embed_texts, encode_batches, tokenize, window_ids
from study import findings
from study.errors import StudyError



def test_windows_cover_each_article_with_the_overlap_asked_for(tiny):
    texts = sample_texts()
    win = window_ids(tiny.tokenizer, texts, window=16, overlap=4, max_windows=50)
    cls, sep = tiny.tokenizer.cls_token_id, tiny.tokenizer.sep_token_id
    content = tiny.tokenizer(texts, add_special_tokens=False)["input_ids"]
    assert win.counts.tolist() == [len(c) + 2 for c in content]
    for i, toks in enumerate(content):
        mine = [w for w, o in zip(win.ids, win.owner) if o == i]
        assert all(len(w) <= 16 and w[0] == cls and w[-1] == sep for w in mine)
        bodies = [w[1:-1] for w in mine]
        for a, b in zip(bodies, bodies[1:]):
            assert a[-4:] == b[:4]                            # consecutive windows share 4 tokens
        rebuilt = bodies[0] + [t for b in bodies[1:] for t in b[4:]]
        assert rebuilt == toks                                # together they are the whole article, once
        assert len(mine) == max(1, -(-(len(toks) - 4) // 10))  # and no more windows than needed
    assert not win.capped.any()


def test_a_short_text_gets_the_ids_of_the_truncating_path_and_a_long_one_is_capped(tiny):
    texts = sample_texts()
    ids, _ = tokenize(tiny.tokenizer, texts, max_tokens=16)
    win = window_ids(tiny.tokenizer, texts, window=16, overlap=4, max_windows=2)
    for i, n in enumerate(win.counts):
        mine = [w for w, o in zip(win.ids, win.owner) if o == i]
        if n <= 16:
            assert mine == [ids[i]]
        assert win.capped[i] == (n > win.capacity)
        assert len(mine) <= 2
    assert win.capacity == 16 + 10                            # two windows of 14 text tokens sharing 4
    assert win.capped.any() and not win.capped.all()
    with pytest.raises(StudyError, match="overlap"):
        window_ids(tiny.tokenizer, texts, window=16, overlap=14, max_windows=2)


def _sentencepiece_tokenizer(texts):
    """A small Unigram tokenizer with a Metaspace pre-tokenizer and <s> ... </s>, like XLM-R's (e5, bge-m3)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(texts + ["query: "] * 5, trainer=trainers.UnigramTrainer(
        vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def test_a_prefix_is_tokenized_in_context_like_the_truncating_path():
    texts = sample_texts(30)
    tok = _sentencepiece_tokenizer(texts)
    assert tok("query: ", add_special_tokens=False)["input_ids"][-1] == tok.convert_tokens_to_ids("▁")  # the trap
    ids, counts = tokenize(tok, ["query: " + t for t in texts], max_tokens=24)
    win = window_ids(tok, texts, window=24, overlap=4, max_windows=50, prefix="query: ")
    assert win.counts.tolist() == counts.tolist()
    for i in range(len(texts)):
        mine = [w for w, o in zip(win.ids, win.owner) if o == i]
        assert mine[0] == ids[i]                       # the first window is the truncated article, token for token
        assert all(len(w) <= 24 and w[:4] == ids[i][:4] for w in mine)   # every window starts <s> + the prefix


def test_a_chunked_embedding_is_the_mean_of_its_windows(tiny):
    texts = sample_texts()
    chunks = {"overlap": 4, "max_windows": 3}
    emb, counts, stats = embed_texts(tiny, texts, max_tokens=16, batch_size=4, chunks=chunks)
    win = window_ids(tiny.tokenizer, texts, window=16, **chunks)
    one_by_one = encode_batches(tiny, win.ids, [(k, k + 1) for k in range(len(win.ids))])
    for i in range(len(texts)):
        assert np.allclose(emb[i], one_by_one[win.owner == i].mean(axis=0), atol=1e-5)
    assert stats.n_windows == len(win.ids) and stats.capped == int(win.capped.sum()) and counts.tolist() == win.counts.tolist()
    plain, _, _ = embed_texts(tiny, texts, max_tokens=16, batch_size=4)
    short = counts <= 16
    assert short.any() and np.allclose(emb[short], plain[short], atol=1e-5)   # one window: the truncated embedding
    assert not np.allclose(emb[~short], plain[~short], atol=1e-3)


def test_average_windows_renormalises_only_when_asked():
    emb = np.array([[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]], dtype=np.float32)
    owner = np.array([0, 0, 1])
    assert np.allclose(average_windows(emb, owner, 2, False), [[1.5, 3.0], [1.0, 0.0]])
    out = average_windows(emb, owner, 2, True)
    assert np.allclose(np.linalg.norm(out, axis=1), 1) and np.allclose(out[0], np.array([1.5, 3.0]) / np.hypot(1.5, 3))


def test_variant_names_and_their_errors(tmp_path, tiny_model):
    cfg = load_config(write_config(tmp_path, {"tiny": {**TINY, "model_name": str(tiny_model)},
                                              "other": {**TINY, "model_name": str(tiny_model), "positions": 64}}))
    c = cfg.parse_variant("tiny-c16")
    assert (c.model, c.max_tokens, c.chunked, c.parts) == ("tiny", 16, True, ())
    pair = cfg.parse_variant("tiny-t16+other")
    assert [p.name for p in pair.parts] == ["tiny-t16", "other"] and pair.max_tokens == 16 and pair.model == "tiny+other"
    assert cfg.describe(pair) == {"model_name": f"{tiny_model} + {tiny_model}", "role": "embedding", "dimensions": 64,
                                  "parts": ["tiny-t16", "other"]}
    assert [v.name for v in cfg.select_variants(["tiny", "other"], [16, 128], chunks=True)] == \
        ["tiny-t16", "tiny-c16", "tiny-t128", "tiny-c128", "other-t16", "other-c16"]   # other holds 64 positions
    assert cfg.select_variants(["tiny+other"], [16]) == [cfg.parse_variant("tiny+other")]   # a pair keeps its parts'
    with pytest.raises(StudyError, match="twice"):
        cfg.parse_variant("tiny+tiny")
    with pytest.raises(StudyError, match="not in embedding_models"):
        cfg.parse_variant("tiny+nope")
    bad = write_config(tmp_path / "bad", {"a+b": {**TINY, "model_name": str(tiny_model)}})
    with pytest.raises(StudyError, match="concatenation"):
        load_config(bad)


@pytest.fixture
def chunked(score_study_copy):
    """A copy of the session's score study (windows of 16 tokens, overlap 4, at most 3) evaluated again on
    tiny-t16, tiny-c16 and tiny-t16+tiny-c16 with their ridge probes only."""
    cfg, demo, root = score_study_copy
    models = ["tiny-t16", "tiny-c16", "tiny-t16+tiny-c16"]
    assert call("evaluate", "--config", cfg, "--data-dir", demo, "--models", *models, "--probes", "ridge") == 0
    return cfg, demo, root


def test_chunked_and_paired_variants_through_evaluation(chunked):
    cfg, demo, root = chunked
    emb = {v: read_npz(root / "embeddings" / f"demo_ds_{v}_test.npz", "cache", "")
           for v in ("tiny-t16", "tiny-c16", "tiny-t16+tiny-c16")}
    pair = emb["tiny-t16+tiny-c16"]
    assert np.array_equal(pair["embeddings"], np.hstack([emb["tiny-t16"]["embeddings"], emb["tiny-c16"]["embeddings"]]))
    assert np.array_equal(pair["ids"], emb["tiny-t16"]["ids"])
    assert json.loads(str(pair["fingerprint"]))["parts"][1]["chunks"] == {"overlap": 4, "max_windows": 3}

    ev = json.loads((root / "results" / "demo_ds_evaluation_results.json").read_text())
    tokens = emb["tiny-t16"]["token_counts"]
    err = {}
    for v in emb:
        pred = np.load(root / "results" / "predictions" / f"demo_ds_{v}_ridge_test.npz", allow_pickle=False)
        err[v] = np.abs(pred["y_pred"].astype(float) - pred["y_true"]).mean(axis=1)
    chunk = ev["models"]["tiny-c16"]
    stats = json.loads(str(emb["tiny-c16"]["embed_stats"]))
    assert chunk["chunked"] and chunk["chunks"]["window"] == 16 and chunk["chunks"]["token_capacity"] == 16 + 2 * 10
    assert chunk["truncated_fraction"] == pytest.approx((tokens > 36).mean())            # cut only beyond 3 windows
    assert chunk["chunks"]["capped_fraction"] == pytest.approx(stats["capped_articles"] / len(tokens))
    vs = chunk["probes"]["ridge"]["vs_truncated"]
    cut = tokens > 16
    assert vs["truncated"] == "tiny-t16" and vs["cut"]["n_articles"] == cut.sum() > 0
    assert vs["all"]["mae_difference"] == pytest.approx((err["tiny-c16"] - err["tiny-t16"]).mean(), abs=1e-6)
    assert vs["cut"]["mae_difference"] == pytest.approx((err["tiny-c16"] - err["tiny-t16"])[cut].mean(), abs=1e-6)
    parts = ev["models"]["tiny-t16+tiny-c16"]["probes"]["ridge"]["vs_parts"]
    assert set(parts) == {"tiny-t16", "tiny-c16"}
    for p in parts:
        assert parts[p]["mae_difference"] == pytest.approx((err["tiny-t16+tiny-c16"] - err[p]).mean(), abs=1e-6)
    assert "vs_longest" not in chunk["probes"]["ridge"]   # a chunked variant is no point of a truncation sweep
    assert findings.sweeps(as_model(ev)) == {}
    # the pair sees what its chunked part sees: it loses text only beyond the windows, like that part
    assert ev["models"]["tiny-t16+tiny-c16"]["truncated_fraction"] == chunk["truncated_fraction"] < (tokens > 16).mean()
    summary = json.loads((root / "results" / "demo_ds_training_summary.json").read_text())
    recipe = summary["models"]["tiny-t16+tiny-c16"]["ridge"]["embedding"]
    assert [r["max_tokens"] for r in recipe["concatenation"]] == [16, 16] and "chunks" in recipe["concatenation"][1]


def test_the_report_shows_the_sections_only_with_results(chunked):
    cfg, demo, root = chunked
    common = ["--config", cfg, "--data-dir", demo]
    out = root / "with.docx"
    assert call("generate_report", *common, "--output", out) == 0
    doc = docx.Document(out)
    text = "\n".join(p.text for p in doc.paragraphs)
    chunking = [[c.text for c in r.cells] for t in doc.tables if t.rows[0].cells[0].text == "Chunked" for r in t.rows]
    assert [r[:3] for r in chunking[1:]] == [["tiny-c16", "tiny-t16", "ridge"]]
    pairs = [[c.text for c in r.cells] for t in doc.tables if t.rows[0].cells[0].text == "Pair" for r in t.rows]
    assert {r[3] for r in pairs[1:]} == {"tiny-t16", "tiny-c16"} and "2.8 Do two models together beat either?" in text
    assert "Do two models together beat either? Not run" not in text and "A clean truncation test: not run" not in text
    assert call("evaluate", *common, "--models", "tiny-t16", "--probes", "ridge") == 0
    out = root / "without.docx"
    assert call("generate_report", *common, "--output", out) == 0
    text = "\n".join(p.text for p in docx.Document(out).paragraphs)
    assert "A clean truncation test: not run. To produce it: one model at several max tokens" in text
    assert "Do two models together beat either? Not run. To produce it: python embed_articles.py --models <a>+<b>" in text
    assert call("evaluate", *common, "--models", "tiny-c16", "--probes", "ridge") == 0
    assert call("generate_report", *common, "--output", out) == 0
    text = "\n".join(p.text for p in docx.Document(out).paragraphs)
    assert "Chunked against truncated for tiny-c16: not run. To produce it: its truncated twin tiny-t16 was not " \
           "evaluated" in text


def test_a_pair_is_rebuilt_when_a_part_changes_and_refused_when_parts_disagree(chunked, capsys):
    from study.data import resolve_dataset
    from study.embedding import Options, embed

    cfg, demo, root = chunked
    common = ["--config", cfg, "--data-dir", demo, "--models", "tiny-t16+tiny-c16"]
    config = load_config(cfg)
    dataset, pair = resolve_dataset(config, None, str(demo)), Options(models=("tiny-t16+tiny-c16",))
    kept = embed(config, dataset, pair)   # phase 1 as embed_articles.py calls it
    assert not kept.computed and [c.variant for c in kept.reused] == ["tiny-t16"] * 3 + ["tiny-c16"] * 3 + ["tiny-t16+tiny-c16"] * 3
    assert capsys.readouterr().out.count("cache is valid, skipped") == 9   # 2 parts + the pair, 3 splits each
    part = root / "embeddings" / "demo_ds_tiny-t16_test.npz"
    data = read_npz(part, "cache", "")
    order = np.arange(len(data["ids"]))[::-1]
    save_npz(part, **{k: (v[order] if k in ("embeddings", "ids", "labels", "token_counts", "languages", "titles")
                          else v) for k, v in data.items()})
    assert call("embed_articles", *common) == 2
    assert "differ in ids" in capsys.readouterr().err
    forced = embed(config, dataset, Options(models=pair.models, force=True))
    assert len(forced.computed) == 9 and "tiny-t16+tiny-c16] test: 64 dimensions" in capsys.readouterr().out


def test_a_pair_costs_its_parts_summed_in_the_speed_chart():
    from study.benchmark import composed
    from study.config import Variant
    from study.findings import concatenation_rows, speed_points
    from study.schemas import BenchmarkRecord
    from records import benchmark_record, timed_model

    a, b = Variant("a", 128, "a"), Variant("b", 512, "b")
    measured = {"a": {"articles_per_s": 100.0, "dtype": "float32", "batch_size": 16, "peak_memory_mb": 300.0},
                "b": {"articles_per_s": 25.0, "dtype": "float32", "batch_size": 8, "peak_memory_mb": 900.0}}
    entry = composed(Variant("a+b", 128, "a+b", parts=(a, b)), measured, say=lambda s: None)
    assert entry["articles_per_s"] == pytest.approx(20.0) and entry["peak_memory_mb"] == 900.0
    with pytest.raises(StudyError, match="benchmarked before"):
        composed(Variant("a+c", 128, "a+c", parts=(a, Variant("c", 8, "c"))), measured)

    def entry(name, mae, ci, vs=None, **kw):
        probe = score_probe(overall_mae=mae, mae_ci95=ci, **({"vs_parts": vs} if vs else {}))
        return model_entry(name, {"ridge": probe}, **kw)

    diff = {"a": paired(-0.2, [-0.3, -0.1], "better"), "b": paired(-0.05, [-0.1, 0.01], "inconclusive")}
    ev = as_model(score_evaluation({"a": entry("a", 1.0, [0.9, 1.1]), "b": entry("b", 0.85, [0.8, 0.9]),
                                    "a+b": entry("a+b", 0.8, [0.75, 0.85], diff, parts=["a", "b"])}))
    bench = BenchmarkRecord.model_validate(benchmark_record({k: timed_model(**m) for k, m in measured.items()}, {}))
    points = {p["variant"]: p["articles_per_s"] for p in speed_points(ev, bench)}
    assert points == {"a": 100.0, "b": 25.0, "a+b": pytest.approx(20.0)}   # not benchmarked itself: its parts summed
    row = concatenation_rows(ev)[0]
    assert [(q, d.verdict) for q, d in row["against"]] == [("a", "better"), ("b", "inconclusive")]
    assert not row["beats_all"]

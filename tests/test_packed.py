"""Padding-free (packed) batches: packing, pooling, planning, and the same embeddings as the padded path."""
import numpy as np
import pytest
import torch

from study.demo import make_article
from study.embedders import (Packed, embed_texts, enable_packing, load_encoder, pack, packing_blocker, plan_batches,
                             pool_packed, random_weight_encoder, varlen_attention)
from study.errors import StudyError


def _texts(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return [make_article(rng, i)["content"] for i in range(n)]


def _cosines(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_pack_lays_sequences_end_to_end_with_restarting_positions():
    batch = pack([[5, 6, 7], [8, 9], [4]], first_position=2)
    assert batch.ids.tolist() == [[5, 6, 7, 8, 9, 4]]
    assert batch.positions.tolist() == [[2, 3, 4, 2, 3, 2]]
    assert batch.cu_seqlens.tolist() == [0, 3, 5, 6] and batch.cu_seqlens.dtype == torch.int32
    assert batch.max_len == 3 and batch.numel() == 6


def test_pool_packed_takes_each_sequences_mean_or_first_token():
    hidden = torch.arange(12, dtype=torch.float32).reshape(6, 2)   # rows 0-2, 3-4, 5
    cu = torch.tensor([0, 3, 5, 6], dtype=torch.int32)
    h = hidden.numpy()
    assert np.allclose(pool_packed(hidden, cu, "mean").numpy(), [h[0:3].mean(0), h[3:5].mean(0), h[5]])
    assert np.allclose(pool_packed(hidden.bfloat16(), cu, "cls").numpy(), h[[0, 3, 5]])


def test_varlen_attention_keeps_each_sequence_to_itself():
    torch.manual_seed(0)
    q, k, v = (torch.randn(7, 2, 4) for _ in range(3))
    cu = torch.tensor([0, 4, 7], dtype=torch.int32)
    out = varlen_attention(q, k, v, cu, 4, None)
    for s, e in ((0, 4), (4, 7)):   # softmax(q k^T / sqrt(d)) v within the sequence, by hand
        w = torch.softmax(torch.einsum("qhd,khd->hqk", q[s:e], k[s:e]) / 2.0, dim=-1)
        assert torch.allclose(out[s:e], torch.einsum("hqk,khd->qhd", w, v[s:e]), atol=1e-6)


def test_a_packed_budget_counts_real_tokens():
    lengths = np.array([100, 90, 80, 10, 10, 10, 10, 5])
    order, batches = plan_batches(lengths, batch_size=4, token_budget=200, packed=True)
    real = [int(lengths[order][s:e].sum()) for s, e in batches]
    assert batches == [(0, 2), (2, 6), (6, 8)] and real == [190, 110, 15]
    assert all(e - s <= 4 for s, e in batches)
    _, padded = plan_batches(lengths, batch_size=4, token_budget=200)       # rows x longest: 80 + 10 is 2 x 80
    assert padded == [(0, 2), (2, 4), (4, 8)]
    assert plan_batches(np.array([500, 3]), 4, 200, packed=True)[1] == [(0, 1), (1, 2)]   # a long one alone


def test_packed_bert_gives_the_padded_embeddings(tiny, monkeypatch):
    import study.embedders as E

    texts = _texts(37, seed=1)
    padded, counts, _ = embed_texts(tiny, texts, max_tokens=64, batch_size=8)
    masks = []
    real = E.varlen_attention
    monkeypatch.setattr(E, "varlen_attention", lambda *a: masks.append(a[0].shape) or real(*a))
    packed_enc = enable_packing(tiny)
    packed, counts2, stats = embed_texts(packed_enc, texts, max_tokens=64, batch_size=8, token_budget=300)
    assert masks, "the packed path never reached variable-length attention"
    np.testing.assert_allclose(packed, padded, rtol=1e-4, atol=1e-5)
    assert (counts == counts2).all() and stats.n_padded_tokens == stats.n_tokens    # not one padded token
    again, _, _ = embed_texts(tiny, texts, max_tokens=64, batch_size=8)                # the padded path still works
    np.testing.assert_array_equal(again, padded)


@pytest.mark.parametrize("kind", ["xlm-roberta", "bert"])
def test_packed_transformers_encoder_gives_the_padded_embeddings(tmp_path, kind):
    """XLM-R positions start after the padding index: a packed batch must number them the same way."""
    from transformers import BertConfig, XLMRobertaConfig

    cls = XLMRobertaConfig if kind == "xlm-roberta" else BertConfig
    cls(vocab_size=500, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=130).save_pretrained(str(tmp_path))
    texts = _texts(30, seed=2)
    enc = random_weight_encoder(tmp_path, texts, torch.device("cpu"), "float32")
    padded, _, _ = embed_texts(enc, texts, max_tokens=96, batch_size=8)
    packed, _, _ = embed_texts(enable_packing(enc), texts, max_tokens=96, batch_size=64, token_budget=1000)
    assert _cosines(packed, padded).min() >= 0.99999
    np.testing.assert_allclose(packed, padded, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_packed_real_minilm_matches_padded_in_bf16_within_the_half_precision_tolerance(real_model):
    texts = [t * 4 for t in _texts(24, seed=3)]
    fp32 = load_encoder("sentence-transformers", str(real_model), torch.device("cpu"), "float32")
    bf16 = load_encoder("sentence-transformers", str(real_model), torch.device("cpu"), "bfloat16")
    ref, _, _ = embed_texts(fp32, texts, max_tokens=256, batch_size=8)
    packed, _, _ = embed_texts(enable_packing(bf16), texts, max_tokens=256, batch_size=64, token_budget=2048)
    assert _cosines(packed, ref).min() >= 0.999
    exact, _, _ = embed_texts(enable_packing(fp32), texts, max_tokens=256, batch_size=64, token_budget=2048)
    assert _cosines(exact, ref).min() >= 0.99999


def test_packing_is_refused_where_it_does_not_apply(tiny):
    import dataclasses

    assert packing_blocker(tiny) is None
    with pytest.raises(StudyError, match="pooling max"):
        enable_packing(dataclasses.replace(tiny, pooling="max"))
    qwen = dataclasses.replace(tiny, model=torch.nn.Linear(2, 2), source="transformers")
    assert "model type None" in packing_blocker(qwen)


def test_packed_batch_moves_as_one():
    batch = pack([[1, 2], [3]]).to(torch.device("cpu"))
    assert isinstance(batch, Packed) and batch.ids.tolist() == [[1, 2, 3]]


def test_phase_1_batches_as_the_benchmark_says_so_in_words_and_packs_on_request(tiny_config, demo_dir, monkeypatch,
                                                                                 capsys):
    """embed_articles.py plans its batches with `batching_for` (here made to plan as on a GPU, where every model
    gets a token budget), prints the batching in words, and with --packed gives the padded caches' embeddings."""
    import study.embedding as phase1
    from conftest import call
    from study.artifacts import read_npz
    from study.embedders import batching_for

    def caches():
        folder = tiny_config.parent / "embeddings"
        return {s: read_npz(folder / f"demo_ds_tiny_{s}.npz", "cache", "")["embeddings"] for s in ("train", "val", "test")}

    common = ["--config", tiny_config, "--data-dir", demo_dir, "--force"]
    assert call("embed_articles", *common) == 0
    out = capsys.readouterr().out
    padded = caches()
    assert "length-sorted batches of up to 16 articles, no token limit" in out and "None" not in out

    asked, used, real_embed = [], [], phase1.embed_texts
    monkeypatch.setattr(phase1, "batching_for", lambda device, rows, budget, max_tokens: asked.append(
        (device.type, rows, budget, max_tokens)) or batching_for(torch.device("cuda"), rows, budget, max_tokens))
    monkeypatch.setattr(phase1, "embed_texts", lambda *a, **k: used.append((k["batch_size"], k["token_budget"]))
                        or real_embed(*a, **k))
    assert call("embed_articles", *common) == 0
    assert asked == [("cpu", 16, None, 64)] and set(used) == {(1024, 65536)}   # 65,536 tokens / 64 = 1,024 rows
    assert "length-sorted batches of up to 1,024 articles and 65,536 tokens (articles x padded length)" in \
        capsys.readouterr().out
    for split, emb in caches().items():   # other batches, the same embeddings
        np.testing.assert_allclose(emb, padded[split], rtol=1e-4, atol=1e-5)

    monkeypatch.undo()
    assert call("embed_articles", *common, "--packed") == 0
    out = capsys.readouterr().out
    assert "padding-free batches of up to 16 articles, no token limit" in out and "None" not in out
    for split, emb in caches().items():
        np.testing.assert_allclose(emb, padded[split], rtol=1e-4, atol=1e-5)
        stats = read_npz(tiny_config.parent / "embeddings" / f"demo_ds_tiny_{split}.npz", "cache", "")["embed_stats"]
        assert '"packed": true' in str(stats)


def test_the_batching_in_words_names_rows_and_tokens_and_never_none():
    from study.embedders import describe_batching

    assert describe_batching(16, None) == "length-sorted batches of up to 16 articles, no token limit"
    assert describe_batching(16, 0) == "length-sorted batches of up to 16 articles, no token limit"
    assert describe_batching(512, 65536) == ("length-sorted batches of up to 512 articles and 65,536 tokens "
                                             "(articles x padded length)")
    assert describe_batching(512, 65536, packed=True) == "padding-free batches of up to 512 articles and 65,536 real tokens"

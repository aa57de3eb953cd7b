"""The encode loop: same numbers as sentence-transformers, token budgets, OOM back-off, several devices."""
import numpy as np
import pytest
import torch

from study.demo import make_article
from study.embedders import EncodeStats, embed_texts, encode_batches, load_encoder, plan_batches, text_ids, tokenize
from study.errors import StudyError


def _texts(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return [make_article(rng, i)["content"] for i in range(n)]


def test_plan_batches_respects_rows_and_token_budget():
    lengths = np.array([5, 300, 20, 300, 40, 7, 1000, 64, 64, 2])
    order, batches = plan_batches(lengths, batch_size=4, token_budget=640)
    assert sorted(order.tolist()) == list(range(10))
    assert (np.diff(lengths[order]) <= 0).all()                       # longest first
    assert [i for s, e in batches for i in range(s, e)] == list(range(10))  # every article once
    for s, e in batches:
        assert e - s <= 4
        assert (e - s) * lengths[order][s] <= 640 or e - s == 1      # rows x padded length
    # the 1000-token article alone, two 300s, then the short ones up to the row cap
    assert batches == [(0, 1), (1, 3), (3, 7), (7, 10)]


def _tokenizer_cut(tok, texts, max_tokens):
    """The tokenizer's own truncation and its count of the whole text: what `tokenize` must reproduce."""
    cut = tok(texts, add_special_tokens=True, truncation=True, max_length=max_tokens, verbose=False)["input_ids"]
    full = tok(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    return cut, [len(f) for f in full]


def test_tokenize_counts_tokens_before_truncation(tiny):
    texts = ["the plan cuts carbon emissions " * 40, "news", "the plan " * 15, ""] + _texts(20)
    ids, counts = tokenize(tiny.tokenizer, texts, max_tokens=32)
    cut, whole = _tokenizer_cut(tiny.tokenizer, texts, 32)
    assert counts.tolist() == whole    # counted before truncation
    assert ids == cut                  # and cut exactly as the tokenizer cuts
    assert counts[0] > 32 and len(ids[0]) == 32
    assert counts[1] == len(ids[1]) == 3  # [CLS] news [SEP]
    assert ids[3] == tiny.tokenizer("")["input_ids"] and counts[3] == 2


@pytest.mark.parametrize("max_tokens", [8, 24, 64])
def test_tokenize_matches_a_sentencepiece_tokenizer_with_the_e5_prefix(max_tokens):
    from test_variants import _sentencepiece_tokenizer

    texts = _texts(30, seed=4)
    tok = _sentencepiece_tokenizer(texts)
    prefixed = ["query: " + t for t in texts] + ["query: ", "query: x"]
    ids, counts = tokenize(tok, prefixed, max_tokens)
    cut, whole = _tokenizer_cut(tok, prefixed, max_tokens)
    assert ids == cut and counts.tolist() == whole
    assert (counts > max_tokens).any() and (counts <= max_tokens).any()
    tok.truncation_side = "left"   # a tokenizer that keeps the end of a text
    ids, _ = tokenize(tok, prefixed, max_tokens)
    assert ids == _tokenizer_cut(tok, prefixed, max_tokens)[0]


def test_tokenize_matches_the_real_tokenizer_and_leaves_its_settings(real_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(real_model))
    texts = [t * 3 for t in _texts(40, seed=9)] + ["Ça coûte 3,5 M€ — naïve café."]
    ids, counts = tokenize(tok, texts, 128)
    cut, whole = _tokenizer_cut(tok, texts, 128)
    assert ids == cut and counts.tolist() == whole and (counts > 128).sum() > 10
    backend = tok.backend_tokenizer    # settings left on the Rust tokenizer neither cut nor pad the pass
    backend.enable_truncation(16)
    backend.enable_padding(length=200)
    before = backend.truncation, backend.padding
    assert [len(t) for t in text_ids(tok, texts)] == [c - 2 for c in counts]
    assert (backend.truncation, backend.padding) == before   # and are put back


def test_tokenize_refuses_max_tokens_without_room_for_text(tiny):
    with pytest.raises(StudyError, match="no room for text"):
        tokenize(tiny.tokenizer, ["news"], max_tokens=2)


def test_loop_matches_sentence_transformers_encode(tiny, tiny_model):
    from sentence_transformers import SentenceTransformer

    texts = _texts(37)
    emb, counts, stats = embed_texts(tiny, texts, max_tokens=64, batch_size=8, token_budget=200)
    st = SentenceTransformer(str(tiny_model), device="cpu")
    st.max_seq_length = 64
    ref = st.encode(texts, batch_size=64, convert_to_numpy=True)
    np.testing.assert_allclose(emb, ref, rtol=1e-4, atol=1e-5)
    assert emb.dtype == np.float32 and stats.n_batches >= 37 // 8
    assert stats.n_tokens == int(np.minimum(counts, 64).sum())


def test_batches_assembled_ahead_in_a_thread_give_the_same_numbers(tiny, monkeypatch):
    import threading

    import study.embedders as E

    texts = _texts(45, seed=8)
    ids, _ = tokenize(tiny.tokenizer, texts, 64)
    order, batches = plan_batches(np.array([len(i) for i in ids]), 4)
    sorted_ids = [ids[i] for i in order]
    where, real_pad = [], E._pad
    monkeypatch.setattr(E, "_pad", lambda *a: where.append(threading.current_thread().name) or real_pad(*a))
    inline = encode_batches(tiny, sorted_ids, batches, overlap=False)
    assert set(where) == {threading.current_thread().name}
    where.clear()
    ahead = encode_batches(tiny, sorted_ids, batches, overlap=True)
    assert len(where) == len(batches) and all(w.startswith("batches") for w in where)   # off the main thread
    np.testing.assert_array_equal(ahead, inline)                                       # bit for bit


def test_prefetch_keeps_order_and_every_item():
    from study.embedders import prefetch

    assert [(i, r) for i, r in prefetch(lambda x: x * x, range(7), depth=3)] == [(i, i * i) for i in range(7)]
    assert list(prefetch(str, [])) == []


class _FlakyEncoder:
    """Wraps an encoder; raises CUDA-style OOM when a batch has more than `cap` tokens."""

    def __init__(self, inner, cap):
        self.inner, self.cap, self.calls = inner, cap, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def forward(self, ids, mask):
        self.calls.append(ids.numel())
        if ids.numel() > self.cap:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.inner.forward(ids, mask)


def test_out_of_memory_halves_the_batch_and_retries(tiny):
    texts = _texts(50, seed=3)
    ref, _, _ = embed_texts(tiny, texts, max_tokens=64, batch_size=32)
    flaky = _FlakyEncoder(tiny, cap=400)
    ids, _ = tokenize(tiny.tokenizer, texts, 64)
    lengths = np.array([len(i) for i in ids])
    order, batches = plan_batches(lengths, 32)
    stats = EncodeStats()
    out = encode_batches(flaky, [ids[i] for i in order], batches, stats=stats)
    got = np.empty_like(out)
    got[order] = out
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    assert stats.oom_retries >= 1
    assert max(c for c in flaky.calls[-stats.n_batches:]) <= 400       # later batches held under the cap
    assert sum(1 for c in flaky.calls if c > 400) == stats.oom_retries  # each OOM cost one failed call


@pytest.mark.slow
def test_two_devices_give_the_same_embeddings_as_one(tiny, tiny_model):
    texts = _texts(30, seed=5)
    one, c1, _ = embed_texts(tiny, texts, max_tokens=64, batch_size=4)
    spec = dict(source="sentence-transformers", location=str(tiny_model), dtype="float32", trust_remote_code=False)
    two, c2, stats = embed_texts(tiny, texts, max_tokens=64, batch_size=4, devices=["cpu", "cpu"], load_spec=spec)
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)
    assert (c1 == c2).all() and stats.devices == ["cpu", "cpu"]


@pytest.mark.slow
def test_bf16_keeps_real_embeddings_close_to_fp32(real_model):
    """Quality guard on the real all-MiniLM-L6-v2: half precision keeps cosine >= 0.999."""
    texts = [t for t in _texts(48, seed=11) if t]
    fp32 = load_encoder("sentence-transformers", str(real_model), torch.device("cpu"), "float32")
    bf16 = load_encoder("sentence-transformers", str(real_model), torch.device("cpu"), "bfloat16")
    a, _, _ = embed_texts(fp32, texts, max_tokens=256, batch_size=16)
    b, _, _ = embed_texts(bf16, texts, max_tokens=256, batch_size=16)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() >= 0.999, cos.min()


def test_frozen_decoder_path_mean_pools_without_padding_leaking(tmp_path):
    """source: transformers (the frozen Qwen2.5 option): a tiny Qwen2 whose tokenizer has no pad token."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2Model

    texts = _texts(12, seed=2)
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<|endoftext|>"],
                                                       show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", unk_token="<unk>")
    assert tok.pad_token is None
    tok.save_pretrained(str(tmp_path))
    torch.manual_seed(0)
    Qwen2Model(Qwen2Config(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           num_key_value_heads=2, intermediate_size=64)).save_pretrained(str(tmp_path))

    enc = load_encoder("transformers", str(tmp_path), torch.device("cpu"), "float32")
    assert enc.pooling == "mean" and enc.dim == 32 and enc.tokenizer.pad_token == "<|endoftext|>"
    batched, counts, _ = embed_texts(enc, texts, max_tokens=48, batch_size=6)
    with torch.no_grad():  # one article at a time, no padding at all
        for i, text in enumerate(texts):
            ids = torch.tensor([enc.tokenizer(text, truncation=True, max_length=48)["input_ids"]])
            alone = enc.model(input_ids=ids).last_hidden_state.mean(1)[0].numpy()
            np.testing.assert_allclose(batched[i], alone, rtol=1e-4, atol=1e-5)

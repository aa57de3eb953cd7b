"""Texts -> embeddings: model loading, tokenization, batching and the encode loop.

The loop is built for throughput on a GPU and stays plain on a CPU:
- every text is tokenized once, whole, up front (the fast tokenizer's batch encoder, on all
  cores); its truncated ids and its token count both come from that one pass;
- articles are sorted by length and cut into batches bounded by a row count and a token
  budget (rows x padded length; the real tokens of a padding-free batch), every model's on
  a GPU (`batching_for`), so a batch of short articles is large and one of 8k tokens small;
- a background thread assembles batch k+1 (padded, or packed without padding for BERT /
  XLM-R encoders: `enable_packing`) while the model runs batch k;
- the model runs in half precision on CUDA (bf16, fp16 where bf16 is missing) and the
  loop never waits on the GPU: inputs go through pinned memory, outputs stay on the device
  until one copy at the end;
- a CUDA out-of-memory error halves the batch (and every later batch) and retries it;
- several devices (`devices=[...]`) share the batches round-robin, one process each,
  so every batch is computed exactly as on one device.
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from study.config import DTYPE_NAMES
from study.errors import StudyError

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
assert tuple(DTYPES) == DTYPE_NAMES


@dataclass
class Encoder:
    """A loaded model with one job: (input_ids, attention_mask) -> pooled embeddings."""
    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    dtype: torch.dtype
    source: str          # "sentence-transformers" | "transformers"
    pooling: str
    dim: int
    normalize: bool = False   # L2-normalised output (an ST Normalize module; applied here for "transformers")
    packed: bool = False      # padding-free batches (see enable_packing)
    layers: tuple[int, ...] = ()   # pool these hidden layers instead of the output, side by side (see `width`)
    runtime: object = None    # the forward pass in another runtime (study/backends.py): (ids, mask) numpy -> numpy
    backend: str = "torch"    # which: torch, onnx, onnx-int8, openvino

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    @property
    def width(self) -> int:
        """Columns of `forward`'s output: `dim`, or `dim` per layer of `layers`."""
        return self.dim * max(1, len(self.layers))

    def pool_layers(self, hidden_states, pool) -> torch.Tensor:
        """hidden_states[k] of each of `layers`, pooled by `pool` (and L2-normalised when the model normalises),
        side by side: every requested layer from one forward pass."""
        out = []
        for k in self.layers:
            pooled = pool(hidden_states[k]).float()
            out.append(torch.nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled)
        return torch.cat(out, dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.runtime is not None:   # the exported forward pass gives the model's own output only
            assert not self.layers, "a layer variant runs in torch"
            return torch.from_numpy(self.runtime(input_ids.numpy(), attention_mask.numpy()))
        if self.layers:
            states = inner_model(self)(input_ids=input_ids, attention_mask=attention_mask,
                                       output_hidden_states=True).hidden_states
            return self.pool_layers(states, lambda h: h[:, 0] if self.pooling == "cls" else mean_pool(h, attention_mask))
        if self.source == "sentence-transformers":
            return self.model({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = mean_pool(hidden, attention_mask)
        return torch.nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled

    def forward_packed(self, batch: "Packed") -> torch.Tensor:
        """Pooled embeddings of a padding-free batch (an encoder made by `enable_packing`)."""
        cu, m = batch.cu_seqlens, batch.max_len
        out = inner_model(self)(input_ids=batch.ids, position_ids=batch.positions, cu_seq_lens_q=cu, cu_seq_lens_k=cu,
                                max_length_q=m, max_length_k=m, output_hidden_states=bool(self.layers))
        if self.layers:
            return self.pool_layers(out.hidden_states, lambda h: pool_packed(h[0], cu, self.pooling))
        hidden = out.last_hidden_state[0]
        pooled = pool_packed(hidden, cu, self.pooling)
        return torch.nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


# -- device and precision ---------------------------------------------------------------
def resolve_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise StudyError(f"device '{setting}' asked for, but torch sees no CUDA GPU (set device: auto or cpu)")
    return torch.device(setting)


def resolve_dtype(device: torch.device, requested: str | None = None) -> str:
    """float32 on CPU; bf16 on CUDA (fp16 where bf16 is missing) unless `requested`."""
    if requested:
        if requested not in DTYPES:
            raise StudyError(f"--dtype must be one of {', '.join(DTYPES)}, found '{requested}'")
        return requested
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


CPU_MAX_BATCH = 16  # on CPU a batch this size keeps every core busy; bigger ones only add padding


def batch_size_for(device: torch.device, configured: int) -> int:
    """The configured (GPU-sized) batch, capped on CPU where padded tokens cost full price."""
    return min(configured, CPU_MAX_BATCH) if device.type == "cpu" else configured


GPU_BATCH_TOKENS = 65536  # tokens per GPU batch when a model sets no budget: enough to keep an H200 busy with a
#                           128-token model (512 full-length articles a batch instead of 256)


def batching_for(device: torch.device, batch_size: int, token_budget: int | None,
                 max_tokens: int) -> tuple[int, int | None]:
    """(rows, token budget) of a model's batches from its config (`batch_size`, `token_budget`).

    CPU: at most CPU_MAX_BATCH rows, the model's own budget (long-context models set one). CUDA: every
    model gets a budget, its own or the larger of batch_size x max_tokens and GPU_BATCH_TOKENS, and rows
    enough for that budget in full-length articles, so a small model's batches grow with the budget
    while a large model's stay as configured."""
    if device.type != "cuda":
        return batch_size_for(device, batch_size), token_budget
    budget = token_budget or max(batch_size * max_tokens, GPU_BATCH_TOKENS)
    return max(batch_size, budget // max_tokens), budget


def describe_batching(rows: int, token_budget: int | None, packed: bool = False) -> str:
    """The encode loop's batching in words, for the console (`batching_for` gives rows and budget)."""
    if packed:
        return f"padding-free batches of up to {rows:,} articles" + (
            f" and {token_budget:,} real tokens" if token_budget else ", no token limit")
    return f"length-sorted batches of up to {rows:,} articles" + (
        f" and {token_budget:,} tokens (articles x padded length)" if token_budget else ", no token limit")


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. under taskset or a container quota)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def use_all_cores() -> int:
    """On CPU, let torch use every core this process may run on."""
    n = available_cores()
    torch.set_num_threads(n)
    return n


# -- loading ----------------------------------------------------------------------------
def _quiet_loading() -> None:
    """No third-party "Loading weights" bar on every model load: the phases print their own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_encoder(source: str, location: str, device: torch.device, dtype: str, *,
                 trust_remote_code: bool = False, name: str = "", normalize: bool = False) -> Encoder:
    """Load a sentence-transformers or plain transformers model for inference.

    A sentence-transformers model pools and normalises as its own modules say; a plain
    transformers model is mean-pooled, and L2-normalised when `normalize`.
    """
    torch_dtype = DTYPES[dtype]
    _quiet_loading()
    if location.startswith(("/", ".", "~")) and not Path(location).expanduser().exists():
        raise StudyError(f"model '{name or location}': the folder {location} does not exist (model_name in config.yaml)")
    try:
        if source == "sentence-transformers":
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(location, device=str(device), trust_remote_code=trust_remote_code)
            tokenizer = model.tokenizer
            pooling = _st_pooling(model)
            normalize = any(type(module).__name__ == "Normalize" for module in model)
            dim = (model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
                   else model.get_sentence_embedding_dimension())
        else:
            from transformers import AutoModel, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
            model = AutoModel.from_pretrained(location, trust_remote_code=trust_remote_code)
            pooling = "mean"
            dim = model.config.hidden_size
    except (OSError, ValueError, ImportError) as exc:
        hint = ("the Hugging Face hub is unreachable or the id is wrong: download the model where the "
                "hub is reachable and set its model_name in config.yaml to the local folder")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StudyError(f"model '{name or location}' could not be loaded from '{location}' ({first}); {hint}") from None
    return _prepare(model, tokenizer, device, torch_dtype, source, pooling, dim, normalize)


def load_model(spec, location: str, device: torch.device, dtype: str, name: str, max_tokens: int) -> Encoder:
    """Load a model of config.yaml (`spec`: its EmbeddingModel entry); check its pooling and normalisation,
    and that `max_tokens` fit its position table."""
    encoder = load_encoder(spec.source, location, device, dtype, trust_remote_code=spec.trust_remote_code, name=name,
                           normalize=spec.normalize)
    check_recipe(encoder, spec.pooling, spec.normalize, name)
    hf = next((m for m in encoder.model.modules() if hasattr(getattr(m, "config", None), "max_position_embeddings")),
              None)
    if hf is not None:
        check_positions(hf.config, max_tokens, name, location)
    return encoder


def position_limit(config) -> int | None:
    """How many tokens a transformers config's position table holds (None: no fixed limit)."""
    limit = getattr(config, "max_position_embeddings", None)
    if limit and getattr(config, "model_type", "") in ("xlm-roberta", "roberta", "camembert"):
        limit -= (getattr(config, "pad_token_id", None) or 0) + 1   # positions start after the padding index
    return limit


def check_positions(config, max_tokens: int, name: str, where: str) -> None:
    """Stop before the first long article when max tokens exceed the model's position table."""
    limit = position_limit(config)
    if limit and max_tokens > limit:
        raise StudyError(f"model '{name}': max tokens {max_tokens} exceed the {limit} positions of {where}; "
                         f"use --max-tokens {limit} or less")


def check_recipe(encoder: Encoder, pooling: str, normalize: bool, name: str) -> None:
    """Stop when the loaded model pools or normalises otherwise than config.yaml says."""
    if (encoder.pooling, encoder.normalize) != (pooling, normalize):
        raise StudyError(f"model '{name}' loaded with pooling {encoder.pooling}, normalize {encoder.normalize}, but "
                         f"config.yaml says pooling {pooling}, normalize {normalize} (a folder holding only Hugging "
                         "Face files becomes mean pooling without normalisation in sentence-transformers; "
                         + ("the transformers source pools by mean only" if encoder.source == "transformers"
                            else "use the model's sentence-transformers files, or correct config.yaml") + ")")


def _prepare(model, tokenizer, device, torch_dtype, source, pooling, dim, normalize=False) -> Encoder:
    if tokenizer.pad_token_id is None:  # decoders (Qwen...) ship without a padding token
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model = model.to(device=device, dtype=torch_dtype).eval()
    return Encoder(model=model, tokenizer=tokenizer, device=device, dtype=torch_dtype,
                   source=source, pooling=pooling, dim=int(dim), normalize=bool(normalize))


def _st_pooling(model) -> str:
    """The pooling mode of a SentenceTransformer in config.yaml's words (mean, cls, max, lasttoken, ...)."""
    for module in model:
        cfg = getattr(module, "get_config_dict", lambda: {})()
        if "pooling_mode" in cfg:
            return str(cfg["pooling_mode"]).removesuffix("_tokens").removesuffix("_token")
        for key, value in cfg.items():
            if key.startswith("pooling_mode_") and value is True:
                return key[len("pooling_mode_"):].removesuffix("_tokens").removesuffix("_token")
    return "unknown"


def random_weight_encoder(arch_dir: str | Path, texts: list[str], device: torch.device, dtype: str,
                          *, seed: int = 0) -> Encoder:
    """A same-shape twin of a model with random weights, for speed and memory work only.

    The architecture comes from `arch_dir/config.json`; the tokenizer is a BPE trained on
    `texts` with the model's vocabulary size, so token counts look like real ones.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import AutoConfig, AutoModel, PreTrainedTokenizerFast

    arch_dir = Path(arch_dir)
    if not (arch_dir / "config.json").is_file():
        raise StudyError(f"no architecture config: {arch_dir / 'config.json'} does not exist")
    config = AutoConfig.from_pretrained(str(arch_dir))
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=int(config.vocab_size), show_progress=False,
                                  special_tokens=["<pad>", "<s>", "</s>", "<unk>"])
    bpe.train_from_iterator(texts, trainer=trainer)
    bpe.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", bpe.token_to_id("<s>")), ("</s>", bpe.token_to_id("</s>"))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", unk_token="<unk>",
                                        bos_token="<s>", eos_token="</s>")
    config.pad_token_id = tokenizer.pad_token_id  # position ids of XLM-R-style models skip padding
    torch.manual_seed(seed)
    model = AutoModel.from_config(config)
    return _prepare(model, tokenizer, device, DTYPES[dtype], "transformers", "mean", config.hidden_size)


# -- tokenization and batching ----------------------------------------------------------
class _Untruncated:
    """The backend tokenizer with truncation and padding off for a block, restored after (the transformers
    wrapper leaves whatever its last call asked for)."""

    def __init__(self, backend):
        self.backend = backend

    def __enter__(self):
        self.truncation, self.padding = self.backend.truncation, self.backend.padding
        self.backend.no_truncation()
        self.backend.no_padding()
        return self.backend

    def __exit__(self, *exc):
        if self.truncation:
            self.backend.enable_truncation(**self.truncation)
        if self.padding:
            self.backend.enable_padding(**self.padding)


def text_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    """Each text's ids, whole and without special tokens: one pass of the fast tokenizer's Rust batch encoder
    (parallel over the cores unless TOKENIZERS_PARALLELISM=false; no offsets computed), else the tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    with _Untruncated(backend) as b:
        encode = getattr(b, "encode_batch_fast", b.encode_batch)
        return [e.ids for e in encode(list(texts), add_special_tokens=False)]


def tokenize(tokenizer, texts: list[str], max_tokens: int) -> tuple[list[list[int]], np.ndarray]:
    """(input ids cut at max_tokens, token count of each text before truncation).

    Each text is tokenized once, whole; its count is that length plus the special tokens, and its ids are
    the special tokens around the first max_tokens of it that fit (the last ones where the tokenizer cuts on
    the left), which is how the tokenizer itself truncates: cut the text's tokens, then add the special ones.
    """
    left, right = special_tokens(tokenizer)
    body = max_tokens - len(left) - len(right)
    if body < 1:
        raise StudyError(f"max tokens {max_tokens} leave no room for text after the {len(left) + len(right)} "
                         "special tokens")
    whole = text_ids(tokenizer, texts)
    from_left = getattr(tokenizer, "truncation_side", "right") == "left"
    ids = [left + (t[-body:] if from_left else t[:body]) + right for t in whole]
    counts = np.fromiter((len(t) for t in whole), dtype=np.int64, count=len(whole)) + len(left) + len(right)
    return ids, counts


@dataclass
class Windows:
    """Every article cut into token windows: the windows' input ids, the article each belongs to, and
    what the cut left out."""
    ids: list[list[int]]
    owner: np.ndarray          # article index of each window
    counts: np.ndarray         # token count of each article, whole (prefix and special tokens included)
    capped: np.ndarray         # articles that needed more than max_windows windows (cut after them)
    capacity: int              # the most tokens of an article the windows can cover


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """(ids before, ids after) the text that the tokenizer adds to a single text (e.g. [CLS] / [SEP])."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(bare) + 1):
        if full[i:i + len(bare)] == bare:
            return full[:i], full[i + len(bare):]
    raise StudyError("the tokenizer's special tokens could not be told apart from the text; chunking needs them")


def prefix_ids(tokenizer, prefix: str) -> list[int]:
    """The ids a prefix gets in front of a text (what `prefix + "a"` holds before the ids of "a" alone)."""
    if not prefix:
        return []
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    joint = tokenizer(prefix + "a", add_special_tokens=False)["input_ids"]
    if joint[len(joint) - len(bare):] == bare:
        return joint[:len(joint) - len(bare)]
    return tokenizer(prefix, add_special_tokens=False)["input_ids"]


def window_ids(tokenizer, texts: list[str], *, window: int, overlap: int, max_windows: int,
               prefix: str = "") -> Windows:
    """Cut each text into windows of at most `window` tokens (special tokens and `prefix` included in each),
    consecutive windows sharing `overlap` tokens of text, at most `max_windows` per text.

    Each text is tokenized once, whole, with its prefix (`prefix + text`, as the truncating path does); each
    window is the model's special tokens around the prefix's ids + a slice of the text's, so a text that fits
    one window gets exactly the ids the truncating path gives it. The prefix's ids are its ids in context
    (a SentencePiece tokenizer gives `"query: "` alone a trailing '▁' that `"query: text"` does not have).
    """
    left, right = special_tokens(tokenizer)
    k = len(prefix_ids(tokenizer, prefix))
    body = window - len(left) - k - len(right)
    stride = body - overlap
    if stride < 1:
        raise StudyError(f"windows of {window} tokens hold {body} tokens of text after the special tokens and "
                         f"prefix: chunking.overlap ({overlap}) must be below that")
    joint = text_ids(tokenizer, [prefix + t for t in texts])
    ids, owner, capped = [], [], np.zeros(len(texts), dtype=bool)
    for i, toks in enumerate(joint):
        head, content = left + toks[:k], toks[k:]
        starts = list(range(0, max(len(content) - overlap, 1), stride))
        if len(starts) > max_windows:
            starts, capped[i] = starts[:max_windows], True
        for start in starts:
            ids.append(head + content[start:start + body] + right)
            owner.append(i)
    counts = np.fromiter((len(t) + len(left) + len(right) for t in joint), dtype=np.int64, count=len(joint))
    return Windows(ids, np.asarray(owner, dtype=np.int64), counts, capped,
                   capacity=window + (max_windows - 1) * stride)


def plan_batches(lengths: np.ndarray, batch_size: int, token_budget: int | None = None,
                 multiple_of: int = 1, packed: bool = False) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Sort by length (longest first) and cut into (start, end) ranges of the sorted order.

    A batch holds at most `batch_size` rows and, with a token budget, at most `token_budget`
    tokens, counted as rows x padded length (its first, longest row), or as the sum of the real
    lengths when `packed` (a padding-free batch holds no padding).
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    sorted_len = np.asarray(lengths)[order]
    ends = np.cumsum(sorted_len)
    batches, start, n = [], 0, len(order)
    while start < n:
        rows = batch_size
        if token_budget and packed:
            before = ends[start - 1] if start else 0
            rows = max(1, min(rows, int(np.searchsorted(ends, before + token_budget, side="right")) - start))
        elif token_budget:
            padded = -(-int(sorted_len[start]) // multiple_of) * multiple_of
            rows = max(1, min(rows, token_budget // max(padded, 1)))
        end = min(n, start + rows)
        batches.append((start, end))
        start = end
    return order, batches


def _pad(seqs: list[list[int]], pad_id: int, multiple_of: int, pin: bool):
    width = -(-max(len(s) for s in seqs) // multiple_of) * multiple_of
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for row, seq in enumerate(seqs):
        ids[row, :len(seq)] = seq
        mask[row, :len(seq)] = 1
    ids, mask = torch.from_numpy(ids), torch.from_numpy(mask)
    return (ids.pin_memory(), mask.pin_memory()) if pin else (ids, mask)


# -- padding-free (packed) batches --------------------------------------------------------
PACKED_MODEL_TYPES = {"bert": 0, "xlm-roberta": None, "roberta": None, "camembert": None}  # first position id
PACKED_ATTENTION = "study_packed"


@dataclass
class Packed:
    """A batch of sequences laid end to end in one row, without padding (the layout of variable-length
    attention): ids and position ids (1, total), cu_seqlens (n + 1,) int32 where sequence i holds tokens
    cu_seqlens[i]:cu_seqlens[i + 1], and the longest sequence's length."""
    ids: torch.Tensor
    positions: torch.Tensor
    cu_seqlens: torch.Tensor
    max_len: int

    def to(self, device: torch.device) -> "Packed":
        return Packed(*(t.to(device, non_blocking=True) for t in (self.ids, self.positions, self.cu_seqlens)),
                      self.max_len)

    def numel(self) -> int:
        return self.ids.numel()


def pack(seqs: list[list[int]], first_position: int = 0, pin: bool = False) -> Packed:
    """Lay `seqs` end to end; each sequence's positions restart at `first_position`."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    cu = np.zeros(len(seqs) + 1, dtype=np.int32)
    np.cumsum(lengths, out=cu[1:])
    total = int(cu[-1])
    ids = np.fromiter((t for s in seqs for t in s), dtype=np.int64, count=total)
    positions = np.arange(total, dtype=np.int64) - np.repeat(cu[:-1].astype(np.int64), lengths) + first_position
    tensors = [torch.from_numpy(a) for a in (ids[None], positions[None], cu)]
    if pin:
        tensors = [t.pin_memory() for t in tensors]
    return Packed(*tensors, max_len=int(lengths.max()))


def pool_packed(hidden: torch.Tensor, cu_seqlens: torch.Tensor, pooling: str) -> torch.Tensor:
    """(total, H) hidden states of a packed batch -> (n, H) in float32: each sequence's mean, or its first token."""
    cu = cu_seqlens.long()
    if pooling == "cls":
        return hidden[cu[:-1]].float()
    lengths = cu.diff()
    owner = torch.repeat_interleave(torch.arange(len(lengths), device=hidden.device), lengths)
    sums = torch.zeros((len(lengths), hidden.shape[-1]), dtype=torch.float32, device=hidden.device)
    return sums.index_add_(0, owner, hidden.float()) / lengths.clamp(min=1)[:, None]


def varlen_attention(q, k, v, cu_seqlens: torch.Tensor, max_len: int, scale: float | None) -> torch.Tensor:
    """Attention within each packed sequence; q, k, v (total, heads, dim). On CUDA PyTorch's variable-length
    flash attention; elsewhere one scaled_dot_product_attention per sequence (the reference)."""
    if q.is_cuda:
        from torch.nn.attention.varlen import varlen_attn

        return varlen_attn(q, k, v, cu_seqlens, cu_seqlens, max_len, max_len, scale=scale)
    out = torch.empty_like(q)
    bounds = cu_seqlens.tolist()
    for s, e in zip(bounds[:-1], bounds[1:]):
        out[s:e] = torch.nn.functional.scaled_dot_product_attention(
            *(t[s:e].transpose(0, 1) for t in (q, k, v)), scale=scale).transpose(0, 1)
    return out


def _packed_or_sdpa(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """The attention function registered as PACKED_ATTENTION: variable-length attention for a packed batch
    (one that carries cu_seq_lens_q), the model's usual SDPA for a padded one."""
    cu = kwargs.pop("cu_seq_lens_q", None)
    if cu is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))   # (1, heads, total, dim) -> (total, heads, dim)
    return varlen_attention(q, k, v, cu, kwargs["max_length_q"], scaling).unsqueeze(0), None


def packing_blocker(encoder: "Encoder") -> str | None:
    """Why `encoder` cannot run padding-free batches (None when it can): a BERT / XLM-R encoder pooled by mean
    or CLS, as a plain transformers model or a sentence-transformers Transformer + Pooling (+ Normalize)."""
    hf = inner_model(encoder)
    kind = getattr(getattr(hf, "config", None), "model_type", None)
    if kind not in PACKED_MODEL_TYPES:
        return f"model type {kind} (padding-free batches cover {', '.join(PACKED_MODEL_TYPES)})"
    if encoder.pooling not in ("mean", "cls"):
        return f"pooling {encoder.pooling} (padding-free batches pool by mean or cls)"
    if encoder.source == "sentence-transformers":
        extra = [type(m).__name__ for m in encoder.model if type(m).__name__ not in ("Transformer", "Pooling", "Normalize")]
        if extra:
            return f"sentence-transformers modules {', '.join(extra)}"
    return None


def enable_packing(encoder: "Encoder") -> "Encoder":
    """The same encoder running padding-free batches (see `pack`); its padded path keeps working (SDPA)."""
    import dataclasses

    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    why = packing_blocker(encoder)
    if why:
        raise StudyError(f"padding-free batches are not available for this model: {why}; drop --packed")
    AttentionInterface.register(PACKED_ATTENTION, _packed_or_sdpa)
    ALL_MASK_ATTENTION_FUNCTIONS.register(PACKED_ATTENTION, sdpa_mask)
    inner_model(encoder).set_attn_implementation(PACKED_ATTENTION)
    return dataclasses.replace(encoder, packed=True)


def with_layers(encoder: "Encoder", layers) -> "Encoder":
    """The same encoder pooling hidden layers `layers` (hidden_states[k], 0 the embedding layer) as the model pools
    its output, all from one forward pass; its `forward` then gives their embeddings side by side (`split_layers`).
    Stops when a layer is out of range, or when the model's output is more than a mean / cls pool (+ normalise) of
    its last hidden layer, so a layer could not be pooled "as the model pools"."""
    import dataclasses

    layers = tuple(int(k) for k in layers)
    hf = inner_model(encoder)
    n = getattr(getattr(hf, "config", None), "num_hidden_layers", None)
    bad = [k for k in layers if k < 0 or (n is not None and k > n)]
    if bad:
        raise StudyError(f"layer {bad[0]} asked for, but the model has {n} hidden layers (0, the embedding layer, to {n})")
    why = None if encoder.pooling in ("mean", "cls") else f"pooling {encoder.pooling} (layers are pooled by mean or cls)"
    if encoder.source == "sentence-transformers" and why is None:
        extra = [type(m).__name__ for m in encoder.model if type(m).__name__ not in ("Transformer", "Pooling", "Normalize")]
        why = f"sentence-transformers modules {', '.join(extra)}" if extra else None
    if why:
        raise StudyError(f"hidden layers cannot be pooled as this model pools its output: {why}")
    return dataclasses.replace(encoder, layers=layers)


def split_layers(emb: np.ndarray, layers) -> dict[int, np.ndarray]:
    """{layer: its embeddings} from `forward`'s side-by-side output of an encoder made by `with_layers`."""
    dim = emb.shape[1] // len(layers)
    return {int(k): np.ascontiguousarray(emb[:, i * dim:(i + 1) * dim]) for i, k in enumerate(layers)}


def inner_model(encoder: "Encoder") -> torch.nn.Module:
    """The transformers model inside an encoder (a SentenceTransformer wraps one)."""
    from transformers import PreTrainedModel

    return next((m for m in encoder.model.modules() if isinstance(m, PreTrainedModel)), encoder.model)


def first_position(encoder: "Encoder") -> int:
    """The position id of a sequence's first token (XLM-R counts from the padding index + 1)."""
    cfg = inner_model(encoder).config
    start = PACKED_MODEL_TYPES.get(cfg.model_type)
    return start if start is not None else (cfg.pad_token_id or 0) + 1


def prefetch(fn, items, depth: int = 2):
    """Yield (item, fn(item)) in order while one background thread computes up to `depth` items ahead."""
    from concurrent.futures import ThreadPoolExecutor
    from itertools import islice

    items = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="batches") as pool:
        ahead = deque((item, pool.submit(fn, item)) for item in islice(items, depth))
        while ahead:
            item, future = ahead.popleft()
            nxt = next(items, None)
            if nxt is not None:
                ahead.append((nxt, pool.submit(fn, nxt)))
            yield item, future.result()


@dataclass
class EncodeStats:
    n_articles: int = 0
    n_tokens: int = 0            # real (unpadded) tokens fed to the model
    n_padded_tokens: int = 0
    n_batches: int = 0
    oom_retries: int = 0
    n_windows: int | None = None   # chunked: windows embedded, articles cut after max_windows, tokens covered
    capped: int | None = None
    capacity: int | None = None
    tokenize_s: float = 0.0
    encode_s: float = 0.0
    devices: list[str] = field(default_factory=list)

    @property
    def articles_per_s(self) -> float:
        return self.n_articles / self.encode_s if self.encode_s else float("nan")

    @property
    def tokens_per_s(self) -> float:
        return self.n_tokens / self.encode_s if self.encode_s else float("nan")


def encode_batches(encoder: Encoder, sorted_ids: list[list[int]], batches: list[tuple[int, int]],
                   progress=None, stats: EncodeStats | None = None, checkpoint=None,
                   overlap: bool | None = None) -> np.ndarray:
    """Embed `sorted_ids` batch by batch; returns float32 (n, dim) in the same order.

    Each batch is assembled (padded, or packed when `encoder.packed`; pinned on CUDA) by a background
    thread while the model runs the one before (`overlap`, default on CUDA); the embeddings stay on the
    device until one copy at the end. On CUDA out-of-memory the failing batch is split in two and every
    later batch is held to half the failing batch's tokens. With a `checkpoint` (see study.cache.Checkpoint)
    the rows done so far are saved every so often and a rerun resumes after them: the same plan, so the
    same batches and the same numbers as an uninterrupted run.
    """
    stats = stats or EncodeStats()
    dev = encoder.device
    cuda = dev.type == "cuda"
    overlap = cuda if overlap is None else overlap
    start_pos = first_position(encoder) if encoder.packed else 0

    def assemble(span):
        seqs = sorted_ids[span[0]:span[1]]
        return pack(seqs, start_pos, cuda) if encoder.packed else _pad(seqs, encoder.pad_id, 8 if cuda else 1, cuda)

    out = torch.empty((len(sorted_ids), encoder.width), dtype=torch.float32, device=dev)
    done, prefix = checkpoint.resume() if checkpoint is not None else (0, None)
    if done:
        out[:done] = torch.from_numpy(prefix).to(dev)
        if progress is not None:
            progress.update(done)
    planned = [(max(start, done), end) for start, end in batches if end > done]
    token_cap = None
    stream = prefetch(assemble, planned) if overlap else ((span, None) for span in planned)
    with torch.inference_mode():
        for span, ready in stream:
            pending = deque([(*span, ready)])
            while pending:
                start, end, batch = pending.popleft()
                width = max(len(s) for s in sorted_ids[start:end])
                if token_cap and end - start > 1 and (end - start) * width > token_cap:
                    mid = start + max(1, min(end - start - 1, token_cap // width))
                    pending.extendleft([(mid, end, None), (start, mid, None)])
                    continue
                batch = batch if batch is not None else assemble((start, end))
                try:
                    emb = _forward(encoder, batch, dev)
                except torch.OutOfMemoryError:
                    if end - start == 1:
                        raise StudyError(f"out of GPU memory on a single article of {width} tokens; "
                                         "lower max_tokens or use a bigger GPU") from None
                    del batch
                    if cuda:
                        torch.cuda.empty_cache()
                    stats.oom_retries += 1
                    token_cap = ((end - start) * width) // 2
                    log.warning("out of memory on a batch of %d x %d tokens: retrying with half the batch",
                                end - start, width)
                    mid = start + (end - start) // 2
                    pending.extendleft([(mid, end, None), (start, mid, None)])
                    continue
                out[start:end] = emb.float()
                stats.n_batches += 1
                stats.n_padded_tokens += int(batch.numel() if encoder.packed else batch[0].numel())
                if progress is not None:
                    progress.update(end - start)
                if checkpoint is not None and checkpoint.due(end):
                    checkpoint.save(end, out[:end].cpu().numpy())
    return out.cpu().numpy()


def _forward(encoder: Encoder, batch, dev: torch.device) -> torch.Tensor:
    if encoder.packed:
        return encoder.forward_packed(batch.to(dev))
    ids, mask = batch
    return encoder.forward(ids.to(dev, non_blocking=True), mask.to(dev, non_blocking=True))


def embed_texts(encoder: Encoder, texts: list[str], *, max_tokens: int, batch_size: int,
                token_budget: int | None = None, progress=None, devices: list[str] | None = None,
                load_spec: dict | None = None, checkpoint=None,
                chunks: dict | None = None, prefix: str = "") -> tuple[np.ndarray, np.ndarray, EncodeStats]:
    """Embed `texts`: (float32 embeddings, token counts before truncation, stats).

    With several `devices`, `load_spec` (source, location, dtype, trust_remote_code) says
    how each worker process loads the model; `encoder` then only lends its tokenizer.
    `checkpoint` (one device only) saves and resumes partial work; it is bound to the plan.
    `chunks` ({"overlap", "max_windows"}): each text is cut into windows of `max_tokens` tokens
    (`prefix` in each; see `window_ids`), every window is embedded in the same length-sorted
    loop, and a text's embedding is the mean of its windows' (L2-normalised again when the
    model normalises). Without `chunks`, `prefix` must already be in the texts.
    """
    multi = bool(devices) and len(devices) > 1
    stats = EncodeStats(n_articles=len(texts), devices=list(devices) if multi else [str(encoder.device)])
    t0 = time.perf_counter()
    if chunks:
        win = window_ids(encoder.tokenizer, texts, window=max_tokens, prefix=prefix, **chunks)
        ids, counts = win.ids, win.counts
        stats.n_windows, stats.capped, stats.capacity = len(ids), int(win.capped.sum()), win.capacity
    else:
        ids, counts = tokenize(encoder.tokenizer, [prefix + t for t in texts] if prefix else texts, max_tokens)
    stats.tokenize_s = time.perf_counter() - t0
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    stats.n_tokens = int(lengths.sum())
    cuda = all(d.startswith("cuda") for d in devices) if multi else encoder.device.type == "cuda"
    if cuda and token_budget is None:   # on a GPU every model's batches are bounded in tokens (0: not bounded)
        token_budget = batching_for(torch.device("cuda"), batch_size, None, max_tokens)[1]
    order, batches = plan_batches(lengths, batch_size, token_budget, 8 if cuda else 1, packed=encoder.packed)
    sorted_ids = [ids[i] for i in order]
    if checkpoint is not None:
        checkpoint.bind(order, batches)
    t0 = time.perf_counter()
    if chunks and progress is not None:   # the bar counts windows: they are what takes the time
        progress.reset(total=len(ids))
        progress.unit = "window"
    if multi:
        sorted_emb = _encode_on_devices({**load_spec, "layers": encoder.layers}, devices, sorted_ids, batches,
                                        encoder.width, progress)
        stats.n_batches = len(batches)
    else:
        sorted_emb = encode_batches(encoder, sorted_ids, batches, progress, stats, checkpoint)
    stats.encode_s = time.perf_counter() - t0
    emb = np.empty_like(sorted_emb)
    emb[order] = sorted_emb
    if chunks:
        emb = average_windows(emb, win.owner, len(texts), encoder.normalize)
    return emb, counts, stats


def average_windows(emb: np.ndarray, owner: np.ndarray, n: int, normalize: bool) -> np.ndarray:
    """One row per article: the mean of its windows' rows (in float64), L2-normalised when `normalize`."""
    sums = np.zeros((n, emb.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, emb)
    out = sums / np.bincount(owner, minlength=n)[:, None]
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32)


def _device_worker(job: dict):
    device = torch.device(job["device"])
    if device.type == "cpu":
        torch.set_num_threads(job["threads"])
    elif device.index is not None:
        torch.cuda.set_device(device)
    enc = load_encoder(job["source"], job["location"], device, job["dtype"],
                       trust_remote_code=job["trust_remote_code"], normalize=job.get("normalize", False))
    if job.get("packed"):
        enc = enable_packing(enc)
    if job.get("layers"):
        enc = with_layers(enc, job["layers"])
    local, offset = [], 0
    for start, end in job["batches"]:
        local.append((offset, offset + end - start))
        offset += end - start
    return job["batches"], encode_batches(enc, job["ids"], local)


def _encode_on_devices(load_spec: dict, devices: list[str], sorted_ids, batches, dim: int, progress) -> np.ndarray:
    """Deal the batches round-robin to one spawned process per device."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // len(devices))
    jobs = []
    for k, device in enumerate(devices):
        mine = batches[k::len(devices)]
        jobs.append(dict(load_spec, device=device, threads=threads, batches=mine,
                         ids=[row for start, end in mine for row in sorted_ids[start:end]]))
    sorted_emb = np.empty((len(sorted_ids), dim), dtype=np.float32)
    with ProcessPoolExecutor(max_workers=len(devices), mp_context=mp.get_context("spawn")) as pool:
        for fut in as_completed([pool.submit(_device_worker, job) for job in jobs]):
            done, emb = fut.result()
            offset = 0
            for start, end in done:
                sorted_emb[start:end] = emb[offset:offset + end - start]
                offset += end - start
            if progress is not None:
                progress.update(offset)
    return sorted_emb

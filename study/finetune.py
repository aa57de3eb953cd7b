"""The study's third arm: a small encoder fine-tuned end to end with a K-output regression head.

The frozen arm embeds once and fits a probe; the fine-tuned arm trains the encoder itself on the training
split (finetune_encoder.py). Without it the study cannot tell "frozen vs fine-tuned" from "small vs large".
Its settings are config.yaml `finetune`; the text is the study's recipe (the model's prefix, title + blank
line + content, cut at the variant's max tokens, as phase 1 embeds it); the loss is L1 like the MLP probe's,
scores are clipped to the score range; each epoch ends with the validation MAE, which chooses the epoch and
stops training after `patience` epochs without improvement. Everything random is seeded from random_seed:
the head's initialisation, dropout and the order of the training articles (a permutation seeded by seed +
epoch), so a run killed at an epoch boundary resumes from its checkpoint to the same result.

What it writes, in results/<ds>_<variant>_finetuned/ (study/paths.py `finetuned`): `model.safetensors` (the
weights of the validation-best epoch, encoder and head; with LoRA the adapters too), `recipe.json` (how to
embed and score an article, the curve of every epoch, the chosen epoch), `checkpoint.pt` while it trains,
and the validation and test predictions under results/predictions/ in the probes' format, so evaluate.py
scores the arm as the probe kind `finetuned` of the variant with every rule of the frozen probes.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from study.embedders import Encoder, tokenize
from study.errors import StudyError

LORA_TARGETS = ("query", "value", "q_proj", "v_proj")   # attention projections of BERT / XLM-R and decoders


@dataclass(frozen=True)
class Options:
    """How one fine-tuning run trains (config.yaml `finetune`, command-line overrides applied)."""
    epochs: int
    learning_rate: float        # the encoder's
    head_learning_rate: float   # the new head's
    batch_size: int
    patience: int
    weight_decay: float
    lora: bool
    lora_r: int
    seed: int
    score_range: tuple[float, float]


class Regressor(torch.nn.Module):
    """An encoder (study/embedders.py Encoder: pooled, normalised as the model does) and a linear head, whose bias
    starts at `start` (finetune_encoder.py: the training median of each dimension, so that the first steps refine
    the best constant instead of climbing from 0 to the score range's middle)."""

    def __init__(self, encoder: Encoder, outputs: int, seed: int, start=None):
        super().__init__()
        self.encoder_model = encoder.model
        self._encoder = encoder
        torch.manual_seed(seed)
        self.head = torch.nn.Linear(encoder.dim, outputs)
        if start is not None:   # the head starts as the best constant for L1: the training median per dimension
            with torch.no_grad():
                self.head.bias.copy_(torch.as_tensor(np.asarray(start, np.float32)))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self._encoder.forward(input_ids, attention_mask).float())


def add_lora(model: torch.nn.Module, r: int, seed: int) -> int:
    """LoRA adapters (peft) on the attention's query and value projections, in place; only they and the head
    train afterwards. Returns how many parameters train."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise StudyError("--lora needs the peft package (pip install -r requirements.txt)") from None
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = [t for t in LORA_TARGETS if t in names]
    if not targets:
        raise StudyError(f"--lora: the model has none of the projections LoRA is put on ({', '.join(LORA_TARGETS)})")
    torch.manual_seed(seed)
    inject_adapter_in_model(LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=targets),
                            model.encoder_model)
    for name, p in model.named_parameters():
        p.requires_grad = "lora_" in name or name.startswith("head.")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def token_ids(encoder: Encoder, texts: list[str], prefix: str, max_tokens: int) -> list[list[int]]:
    """The input ids of each text as phase 1 makes them: prefix in front, cut at max tokens with the special
    tokens kept (study/embedders.py `tokenize`)."""
    return tokenize(encoder.tokenizer, [prefix + t for t in texts] if prefix else texts, max_tokens)[0]


def _batch(ids: list[list[int]], rows, pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids[i]) for i in rows)
    x = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, i in enumerate(rows):
        x[k, :len(ids[i])] = torch.tensor(ids[i])
        mask[k, :len(ids[i])] = 1
    return x.to(device), mask.to(device)


def predict(model: Regressor, ids: list[list[int]], batch_size: int, score_range, device) -> np.ndarray:
    """Clipped scores (n, K), in the order of `ids` (batched by length, no gradients, eval mode)."""
    model.eval()
    order = np.argsort([len(t) for t in ids], kind="stable")
    out = np.empty((len(ids), model.head.out_features), np.float32)
    with torch.no_grad():
        for start in range(0, len(ids), batch_size):
            rows = order[start:start + batch_size]
            x, mask = _batch(ids, rows, model._encoder.pad_id, device)
            with _autocast(device):
                out[rows] = model(x, mask).float().cpu().numpy()
    return np.clip(out, *score_range)


def _autocast(device):
    """bf16 on CUDA, full precision elsewhere."""
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def settings_key(options: Options, recipe: dict, data_sha256: dict) -> str:
    """What a checkpoint must share with the run that resumes it."""
    import hashlib
    blob = json.dumps({"options": asdict(options), "recipe": recipe, "data": data_sha256}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def train(model: Regressor, train_ids, Y: np.ndarray, val_ids, Y_val: np.ndarray, options: Options, device,
          checkpoint: Path, key: str, log=print) -> dict:
    """Fine-tune `model` in place (it ends with the validation-best weights) and return the record of the run:
    {"curve": [{"epoch", "train_loss", "val_mae", "seconds"}], "best_epoch", "val_mae", "epochs_run",
    "stopped_early", "train_seconds", "resumed_from"}. After every epoch the state is saved to `checkpoint`
    (atomically), so a killed run resumes at the next epoch boundary with the same result."""
    params = [{"params": [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")],
               "lr": options.learning_rate},
              {"params": list(model.head.parameters()), "lr": options.head_learning_rate}]
    optimizer = torch.optim.AdamW(params, weight_decay=options.weight_decay)
    Yt = torch.tensor(np.asarray(Y, np.float32))
    state = {"epoch": 0, "curve": [], "best": None, "best_state": None, "resumed_from": None}
    if checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if saved.get("key") == key:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            torch.set_rng_state(saved["rng"])
            state = {**saved["state"], "resumed_from": saved["state"]["epoch"]}
            log(f"resumed after epoch {state['epoch']} from {checkpoint}")
    t_total = sum(c["seconds"] for c in state["curve"])
    for epoch in range(state["epoch"] + 1, options.epochs + 1):
        if state["best"] is not None and epoch - state["best"]["epoch"] > options.patience:
            break
        t0 = time.perf_counter()
        model.train()
        order = np.random.default_rng(options.seed + epoch).permutation(len(train_ids))
        losses = []
        batches = range(0, len(order), options.batch_size)
        for start in tqdm(batches, desc=f"epoch {epoch}/{options.epochs}", unit="batch", leave=False):
            rows = order[start:start + options.batch_size]
            x, mask = _batch(train_ids, rows, model._encoder.pad_id, device)
            with _autocast(device):
                out = model(x, mask)
            loss = torch.nn.functional.l1_loss(out.float(), Yt[rows].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        val_mae = float(np.abs(predict(model, val_ids, options.batch_size, options.score_range, device) - Y_val).mean())
        seconds = time.perf_counter() - t0
        t_total += seconds
        state["curve"].append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_mae": val_mae,
                               "seconds": seconds})
        better = state["best"] is None or val_mae < state["best"]["val_mae"]
        if better:
            state["best"] = {"epoch": epoch, "val_mae": val_mae}
            state["best_state"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        state["epoch"] = epoch
        log(f"epoch {epoch}: train L1 {state['curve'][-1]['train_loss']:.4f}, validation MAE {val_mae:.4f}"
            f"{' (best so far)' if better else ''} in {seconds:.1f}s")
        _save_checkpoint(checkpoint, {"key": key, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                      "rng": torch.get_rng_state(), "state": state})
    model.load_state_dict(state["best_state"])
    return {"curve": state["curve"], "best_epoch": state["best"]["epoch"], "val_mae": state["best"]["val_mae"],
            "epochs_run": state["epoch"], "stopped_early": state["epoch"] < options.epochs,
            "train_seconds": t_total, "resumed_from": state["resumed_from"]}


def _save_checkpoint(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def save_model(model: Regressor, folder: Path, recipe: dict) -> str:
    """Write the weights (safetensors) and the recipe (JSON) atomically; returns the weights' sha256."""
    import hashlib

    from safetensors.torch import save_file

    from study.artifacts import write_json
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = folder / "model.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(folder / "model.safetensors")
    write_json(folder / "recipe.json", recipe)
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def load_arm(folder: Path, test: dict, val: dict, data_sha256: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """(test predictions, validation predictions, what evaluate.py records of the run) of a fine-tuned encoder,
    checked against the articles of the caches phase 3 scores (`test`, `val`) and the current data files."""
    from study.artifacts import read_json
    recipe = read_json(folder / "recipe.json", "the fine-tuned encoder's recipe (rerun finetune_encoder.py)")
    for split in ("train", "val", "test"):
        if (recipe.get("data_sha256") or {}).get(split) != data_sha256.get(split):
            raise StudyError(f"{folder} was fine-tuned on other data than the current {split} split; rerun "
                             "finetune_encoder.py")
    out = [predictions(folder, split, cache["ids"]) for split, cache in (("test", test), ("val", val))]
    run = recipe["training"]
    meta = {"val_mae": run["val_mae"], "train_seconds": run["train_seconds"],
            "selected": {"best_epoch": run["best_epoch"], "epochs_run": run["epochs_run"],
                         "stopped_early": run["stopped_early"], "lora": recipe.get("lora") is not None},
            "seeds": {"n": 1, "seeds": [recipe["options"]["seed"]], "stochastic": True, "val": [run["val_mae"]]},
            "inference_ms_per_article": recipe["inference_ms_per_article"]}
    return out[0], out[1], meta


def predictions(folder: Path, split: str, ids) -> np.ndarray:
    """The arm's recorded predictions of one split, checked to be of the articles `ids` in that order."""
    from study.artifacts import read_npz
    pred = read_npz(folder / f"predictions_{split}.npz", "fine-tuned predictions", "rerun finetune_encoder.py")
    if not np.array_equal(pred["ids"], ids):
        raise StudyError(f"{folder}/predictions_{split}.npz holds other articles than the {split} embeddings; "
                         "rerun finetune_encoder.py")
    return np.asarray(pred["y_pred"], np.float32)


# -- serving the arm as Stage 1 (study/scoring.py `write_stage1_bundles`, score_articles.py --stage1) ---------
def served_weights(folder: Path, recipe: dict) -> tuple[dict, np.ndarray, np.ndarray]:
    """(the encoder's weights keyed as the plain encoder's `state_dict`, LoRA adapters merged into the weights they
    adapt: W + (alpha / r) B A; the head's weight (K, dim); its bias (K,)) of a fine-tuned folder."""
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    weight, bias = state.pop("head.weight"), state.pop("head.bias")
    encoder = {k.removeprefix("encoder_model."): v for k, v in state.items()}
    lora = recipe.get("lora")
    if lora:
        scaling, suffix = lora["alpha"] / lora["r"], ".lora_A.default.weight"
        for key in [k for k in encoder if k.endswith(suffix)]:
            base = key[:-len(suffix)]
            A, B = encoder.pop(key), encoder.pop(base + ".lora_B.default.weight")
            W = encoder.pop(base + ".base_layer.weight")
            encoder[base + ".weight"] = (W.float() + scaling * (B.float() @ A.float())).to(W.dtype)
            if base + ".base_layer.bias" in encoder:
                encoder[base + ".bias"] = encoder.pop(base + ".base_layer.bias")
    if any("lora_" in k for k in encoder):
        raise StudyError(f"{folder}/model.safetensors holds LoRA weights its recipe does not describe; rerun "
                         "finetune_encoder.py")
    return encoder, weight.float().numpy(), bias.float().numpy()


def stage1_parts(folder: Path, encoder_file: str) -> tuple[dict, bytes, str]:
    """(a probe file's bundle of the arm's head: kind `head` on the fine-tuned encoder's pooled output, its metadata
    the recipe with `finetuned` naming `encoder_file`; the encoder's weights as safetensors bytes; the sha256 of
    model.safetensors) of a fine-tuned folder, for its Stage 1 bundle."""
    import hashlib

    from safetensors.torch import save

    from study.artifacts import read_json
    from study.probes import LinearHead
    from study.tasks import ARM
    recipe = read_json(folder / "recipe.json", "the fine-tuned encoder's recipe (rerun finetune_encoder.py)")
    encoder, weight, bias = served_weights(folder, recipe)
    run = recipe["training"]
    metadata = {"dataset": recipe["dataset"], "variant": recipe["variant"], "model": recipe["model"], "probe": ARM,
                "task": "regression", "dimension_names": recipe["dimension_names"],
                "embedding": {**recipe["embedding"], "finetuned": encoder_file},
                "embedding_fingerprint": recipe.get("embedding_fingerprint") or {"dtype": "float32"},
                "val_mae": run["val_mae"], "train_seconds": run["train_seconds"], "n_train": recipe["n_train"],
                "n_val": recipe["n_val"], "data_sha256": recipe["data_sha256"],
                "selected": {"best_epoch": run["best_epoch"], "epochs_run": run["epochs_run"],
                             "lora": recipe.get("lora")}}
    bundle = LinearHead.from_head(weight, bias, recipe["score_range"]).to_bundle(metadata)
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    return bundle, save({k: v.contiguous() for k, v in encoder.items()}), digest


def load_finetuned(encoder: Encoder, blob: bytes, where) -> Encoder:
    """`encoder` (the base model, loaded by its recipe) with the fine-tuned weights of a Stage 1 bundle, in place."""
    from safetensors.torch import load

    try:
        state = load(blob)
        encoder.model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise StudyError(f"{where}: the fine-tuned encoder's weights do not fit the model its recipe names "
                         f"({str(exc).splitlines()[0][:200]}); rerun evaluate.py") from None
    encoder.model.eval()
    return encoder

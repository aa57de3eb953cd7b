"""The third arm: fine-tune a config model end to end with a K-output regression head.

    python finetune_encoder.py --dataset uplifting_v5 --models multilingual-MiniLM-L12-v2
    python finetune_encoder.py --data-dir ../shared/data/sustainability_real --models bge-m3 --epochs 3 --lora
    python run_all.py --dataset uplifting_v5 --finetune multilingual-MiniLM-L12-v2   # inside the six phases

Trains the model (its prefix and text recipe, cut at --max-tokens or its config max tokens) with a linear
head (its bias starting at the training median of each dimension) on the training split: L1 loss, scores clipped to score_range, AdamW (config `finetune`: learning
rates of the encoder and the head, batch size, weight decay), the validation MAE after every epoch choosing
the epoch and stopping the run after `patience` epochs without improvement; seeded by random_seed; bf16 on
CUDA; --lora trains LoRA adapters (peft) on the attention's query and value projections and the head
instead of every weight. A killed run resumes at its last finished epoch with the same result (its
checkpoint is removed once the run is done).

Writes results/<dataset>_<variant>_finetuned/ (model.safetensors, recipe.json) and the validation and test
predictions there; records the arm as the probe kind `finetuned` of the variant in the training summary,
so evaluate.py scores it beside the frozen probes with every rule of the study (it is never a frozen
model's chosen probe: page 1 asks of it "Does a fine-tuned small encoder close the gap?").
"""
from dataclasses import asdict
from datetime import datetime, timezone

import numpy as np

from study import cli, paths
from study.artifacts import save_npz
from study.config import load_config
from study.data import TEXT_RECIPE, load_split, resolve_dataset
from study.embedders import load_model, resolve_device
from study.embedding import embedding_recipe
from study.errors import StudyError
from study.finetune import Options, Regressor, add_lora, predict, save_model, settings_key, token_ids, train
from study.tasks import ARM
from study.provenance import model_revision, record
from study.schemas import TrainingSummary, merge_record

SUMMARY_REMEDY = "remove it and rerun train_probes.py and finetune_encoder.py"


def main():
    parser = cli.parser(__doc__)
    cli.add_models(parser, "default_models of config.yaml")
    parser.add_argument("--epochs", type=cli.positive_int, help="at most this many epochs (default: config finetune.epochs)")
    parser.add_argument("--batch-size", type=cli.positive_int, help="training batch (default: config finetune.batch_size)")
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters and the head instead of every weight")
    parser.add_argument("--device", type=cli.device, help="default: config device (CUDA when present)")
    args = parser.parse_args()

    cfg = load_config(args.config)
    dataset = resolve_dataset(cfg, args.dataset, args.data_dir)
    if dataset.task != "regression":
        raise StudyError(f"finetune_encoder.py trains a score regressor; {dataset.name} has yes/no labels")
    variants = cfg.select_variants(args.models, args.max_tokens)
    for v in variants:
        if v.parts or v.chunked:
            raise StudyError(f"--models {v.name}: a concatenation or a chunked variant cannot be fine-tuned as one "
                             "encoder; name a config model (at a max tokens: <model>-t<N>)")
    splits = {s: load_split(dataset, s, cfg.score_range) for s in ("train", "val", "test")}
    device = resolve_device(args.device or cfg.device)
    settings = cfg.finetune
    options = Options(epochs=args.epochs or settings.epochs, learning_rate=settings.learning_rate,
                      head_learning_rate=settings.head_learning_rate,
                      batch_size=args.batch_size or settings.batch_size, patience=settings.patience,
                      weight_decay=settings.weight_decay, lora=args.lora, lora_r=settings.lora_r,
                      seed=cfg.random_seed, score_range=tuple(cfg.score_range))
    for variant in variants:
        finetune(cfg, dataset, variant, splits, options, device)


def finetune(cfg, dataset, variant, splits, options: Options, device) -> None:
    """Train one variant's encoder, write its folder and predictions, record it in the training summary."""
    spec = cfg.model(variant.model)
    folder = paths.finetuned(cfg, dataset.name, variant.name)
    encoder = load_model(spec, cfg.model_location(variant.model), device, "float32", variant.model, variant.max_tokens)
    ids = {s: token_ids(encoder, split.texts, spec.prefix, variant.max_tokens) for s, split in splits.items()}
    train_split, val_split = splits["train"], splits["val"]
    K = train_split.labels.shape[1]
    model = Regressor(encoder, K, options.seed, start=np.median(train_split.labels, axis=0)).to(device)
    trainable = add_lora(model, options.lora_r, options.seed) if options.lora else \
        sum(p.numel() for p in model.parameters())
    recipe = embedding_recipe(cfg, variant)
    data_sha256 = {s: split.sha256 for s, split in splits.items()}
    print(f"[{variant.name}] fine-tuning {'LoRA adapters and the head' if options.lora else 'every weight'} "
          f"({trainable:,} parameters) on {len(train_split)} training articles, at most {options.epochs} epochs, "
          f"on {device}")
    run = train(model, ids["train"], train_split.labels, ids["val"], val_split.labels, options, device,
                folder / "checkpoint.pt", settings_key(options, recipe, data_sha256),
                log=lambda s: print(f"[{variant.name}] {s}", flush=True))
    predictions = {}
    for s in ("val", "test"):
        t0 = datetime.now(timezone.utc)
        P = predict(model, ids[s], options.batch_size, options.score_range, device)
        seconds = (datetime.now(timezone.utc) - t0).total_seconds()
        predictions[s] = (P, seconds)
        save_npz(folder / f"predictions_{s}.npz", ids=splits[s].ids, y_pred=P.astype(np.float32))
    ms = 1000 * predictions["test"][1] / max(len(splits["test"]), 1)
    meta = {"kind": ARM, "dataset": dataset.name, "variant": variant.name, "model": variant.model,
            "dimension_names": train_split.dimension_names, "score_range": list(options.score_range),
            "embedding": recipe, "head": {"input_dim": encoder.dim, "output_dim": K},
            "embedding_fingerprint": {"revision": model_revision(cfg.model_location(variant.model)),
                                      "dtype": "bfloat16" if device.type == "cuda" else "float32"},
            "lora": {"r": options.lora_r, "alpha": 2 * options.lora_r} if options.lora else None,
            "options": {**asdict(options), "score_range": list(options.score_range)}, "training": run,
            "inference_ms_per_article": ms, "data_sha256": data_sha256, "n_train": len(train_split),
            "n_val": len(val_split), "text": TEXT_RECIPE, "provenance": record(str(device))}
    digest = save_model(model, folder, meta)
    (folder / "checkpoint.pt").unlink(missing_ok=True)
    entry = {"dataset": dataset.name, "model": variant.model, "variant": variant.name, "probe": ARM,
             "dimension_names": train_split.dimension_names, "embedding": recipe,
             "data_sha256": {s: data_sha256[s] for s in ("train", "val")},
             "embedding_fingerprint": {},   # the frozen probes' (the report's fingerprint table reads theirs)
             "hyperparameters": meta["options"],
             "selected": {"best_epoch": run["best_epoch"], "epochs_run": run["epochs_run"],
                          "stopped_early": run["stopped_early"]},
             "seeds": {"n": 1, "seeds": [options.seed], "stochastic": True, "val": [run["val_mae"]]},
             "task": "regression", "val_mae": run["val_mae"], "train_seconds": run["train_seconds"],
             "n_train": len(train_split), "n_val": len(val_split), "embedding_dim": encoder.dim,
             "random_seed": options.seed, "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "provenance": record(str(device)), "file": folder.name, "sha256": digest}
    merge_record(paths.training_summary(cfg, dataset.name), TrainingSummary,
                 {"dataset": dataset.name, "models": {variant.name: {ARM: entry}}}, SUMMARY_REMEDY)
    print(f"[{variant.name}] {ARM}: val MAE {run['val_mae']:.4f} at epoch {run['best_epoch']} of {run['epochs_run']}"
          f"{' (stopped early)' if run['stopped_early'] else ''}, {run['train_seconds']:.0f}s -> {folder}")


if __name__ == "__main__":
    cli.run(main)

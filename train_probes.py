"""Phase 2: train Ridge / MLP / LightGBM probes on cached embeddings.

    python train_probes.py --dataset uplifting_v5 --models multilingual-MiniLM-L12-v2 bge-m3
    python train_probes.py --dataset uplifting_v5 --models bge-m3 --max-tokens 512 8192
    python train_probes.py --data-dir ../shared/data/sustainability_real --models minilm-l6-en-demo --probes ridge mlp
    python train_probes.py --data-dir /tmp/classify-data/sustainability_yes_no --models minilm-l6-en-demo   # yes/no labels

Reads embeddings/<dataset>_<variant>_{train,val}.npz (run embed_articles.py first). Every
choice (ridge alpha, MLP best epoch, LightGBM iterations) is made on the validation split.
A yes/no dataset (task: classification, README "Yes/no datasets") gets logistic regression (C
chosen on validation log-loss), the MLP with a binary cross-entropy loss and LightGBM binary,
each with the threshold on P(yes) that maximises F1 on validation.
Writes results/<dataset>_<variant>_<probe>.pkl (+ .pkl.sha256) and merges the run into
results/<dataset>_training_summary.json.
"""
from datetime import datetime, timezone

from tqdm import tqdm

from study import cli, paths
from study.artifacts import merge_json, read_json_object, save_pickle
from study.cache import load_checked
from study.config import load_config, task_probes
from study.data import TEXT_RECIPE, resolve_dataset
from study.embedders import resolve_device
from study.errors import StudyError
from study.provenance import record
from study.probes import DEFAULT_HIDDEN, describe_selected, make_probe


def main():
    parser = cli.parser(__doc__)
    cli.add_models(parser, "default_models of config.yaml")
    cli.add_probes(parser)
    parser.add_argument("--mlp-device", default="cpu",
                        help="device of the MLP, the only probe that can use a GPU (default cpu: bit-reproducible)")
    args = parser.parse_args()

    cfg = load_config(args.config)
    dataset = resolve_dataset(cfg, args.dataset, args.data_dir)
    variants = cfg.select_variants(args.models, args.max_tokens)
    probes = task_probes(dataset.task, args.probes)
    device = str(resolve_device(args.mlp_device))
    summary_path = paths.training_summary(cfg, dataset.name)

    if summary_path.exists():   # a damaged summary stops the run before any probe file is replaced
        read_json_object(summary_path, "training summary", "remove it and rerun train_probes.py (it lists the "
                         "probes trained so far; retraining them writes it anew)")
    with tqdm(total=len(variants) * len(probes), desc="probes", unit="probe") as bar:
        for variant in variants:
            train = load_checked(cfg, dataset, variant, "train")
            val = load_checked(cfg, dataset, variant, "val")
            if train["dimension_names"] != val["dimension_names"]:
                raise StudyError(f"train and val embeddings of {variant.name} disagree on dimension_names")
            for kind in probes:
                bar.set_postfix_str(f"{variant.name} {kind}")
                tqdm.write(fit_and_save(cfg, dataset, variant, kind, train, val, device, summary_path))
                bar.update()
    print(f"training summary: {summary_path}")


def fit_and_save(cfg, dataset, variant, kind, train, val, device, summary_path) -> str:
    """Fit one probe (choices on validation), write its file and its summary entry; returns the log line."""
    settings = getattr(cfg.probe_methods, kind)
    probe = make_probe(kind, settings, score_range=cfg.score_range, seed=cfg.random_seed, device=device,
                       task=dataset.task)
    probe.fit(train["embeddings"], train["labels"], val["embeddings"], val["labels"])
    if dataset.task == "classification":   # lower is better, like val_mae: what study/results.py ranks on
        fitted = {"task": "classification", "val_log_loss": probe.val_log_loss_, "val_f1": probe.val_f1_,
                  "threshold": probe.threshold_}
        said = f"val log-loss {probe.val_log_loss_:.4f}, val F1 {probe.val_f1_:.4f} at threshold {probe.threshold_:.3f}"
    else:
        fitted = {"val_mae": probe.val_mae_}
        said = f"val MAE {probe.val_mae_:.4f}"
    metadata = {
        "dataset": dataset.name, "model": variant.model, "variant": variant.name, "probe": kind,
        "dimension_names": train["dimension_names"], "embedding": embedding_recipe(cfg, variant),
        "data_sha256": {s: d["fingerprint"]["data_sha256"] for s, d in (("train", train), ("val", val))},
        "embedding_fingerprint": train["fingerprint"], "val_embedding_fingerprint": val["fingerprint"],
        "hyperparameters": settings.model_dump(), "selected": probe.selected(),
        **fitted, "train_seconds": probe.fit_seconds_,
        "n_train": int(len(train["labels"])), "n_val": int(len(val["labels"])),
        "embedding_dim": int(train["embeddings"].shape[1]), "random_seed": cfg.random_seed,
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "provenance": record(device),
    }
    path = paths.probe(cfg, dataset.name, variant.name, kind)
    digest = save_pickle(path, probe.to_bundle(metadata))
    summary = {k: v for k, v in metadata.items() if k != "val_embedding_fingerprint"}
    merge_json(summary_path, {"dataset": dataset.name, "models": {
        variant.name: {kind: {**summary, "file": path.name, "sha256": digest}}}})
    line = (f"[{variant.name}] {kind}: {said} in {probe.fit_seconds_:.1f}s "
            f"({describe_selected(probe.selected())}) -> {path.name}")
    if kind == "mlp" and list(settings.hidden_sizes) != DEFAULT_HIDDEN:
        line += (f"\nnote: hidden sizes {settings.hidden_sizes} differ from {DEFAULT_HIDDEN}: a serving stage that "
                 "assumes the default layout cannot load this MLP (build it from model_config)")
    return line


def embedding_recipe(cfg, variant) -> dict:
    """How a serving stage must embed an article for this probe."""
    spec = cfg.model(variant.model)
    return {"model_name": spec.model_name, "source": spec.source, "prefix": spec.prefix, "pooling": spec.pooling,
            "normalize": spec.normalize, "max_tokens": variant.max_tokens, "dimensions": spec.dimensions,
            "text": TEXT_RECIPE}


if __name__ == "__main__":
    cli.run(main)

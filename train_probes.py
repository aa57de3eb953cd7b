"""Phase 2: train Ridge / MLP / LightGBM probes on cached embeddings.

    python train_probes.py --dataset uplifting_v5 --models multilingual-MiniLM-L12-v2 bge-m3
    python train_probes.py --data-dir ../shared/data/sustainability_real --models minilm-l6-en-demo --probes ridge mlp

Reads embeddings/<dataset>_<model>_{train,val}.npz (run embed_articles.py first). Every
choice (ridge alpha, MLP best epoch, LightGBM iterations) is made on the validation split.
Writes results/<dataset>_<model>_<probe>.pkl (+ .pkl.sha256) and merges the run into
results/<dataset>_training_summary.json.
"""
import argparse
from datetime import datetime, timezone

from tqdm import tqdm

from study import cli
from study.artifacts import merge_json, save_pickle
from study.cache import load_checked, probe_path, variant_name
from study.config import load_config
from study.data import resolve_dataset
from study.embedders import resolve_device
from study.errors import StudyError
from study.probes import PROBES, describe_selected, make_probe, probe_bundle


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common(parser)
    parser.add_argument("--probes", nargs="+", default=list(PROBES), choices=PROBES)
    parser.add_argument("--device", default="cpu", help="device for the MLP (default cpu: small, and bit-reproducible)")
    args = parser.parse_args()

    cfg = load_config(args.config)
    dataset = resolve_dataset(cfg, args.dataset, args.data_dir)
    models = cfg.select_models(args.models)
    device = str(resolve_device(args.device))
    summary_path = cfg.results_path / f"{dataset.name}_training_summary.json"

    jobs = [(m, p) for m in models for p in args.probes]
    bar = tqdm(jobs, desc="probes", unit="probe")
    for model in models:
        max_tokens = args.max_tokens or cfg.model(model).max_tokens
        variant = variant_name(cfg, model, max_tokens)
        train = load_checked(cfg, dataset, model, max_tokens, "train")
        val = load_checked(cfg, dataset, model, max_tokens, "val")
        if train["dimension_names"] != val["dimension_names"]:
            raise StudyError(f"train and val embeddings of {variant} disagree on dimension_names")
        for kind in args.probes:
            bar.set_postfix_str(f"{variant} {kind}")
            settings = getattr(cfg.probe_methods, kind)
            probe = make_probe(kind, settings, score_range=cfg.score_range, seed=cfg.random_seed, device=device)
            probe.fit(train["embeddings"], train["labels"], val["embeddings"], val["labels"])
            metadata = {
                "dataset": dataset.name, "model": model, "variant": variant, "probe": kind,
                "dimension_names": train["dimension_names"],
                "embedding_fingerprint": train["fingerprint"],
                "val_embedding_fingerprint": val["fingerprint"],
                "hyperparameters": settings.model_dump(), "selected": probe.selected(),
                "val_mae": probe.val_mae_, "train_seconds": probe.fit_seconds_,
                "n_train": int(len(train["labels"])), "n_val": int(len(val["labels"])),
                "embedding_dim": int(train["embeddings"].shape[1]), "random_seed": cfg.random_seed,
                "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            path = probe_path(cfg, dataset.name, variant, kind)
            digest = save_pickle(path, probe_bundle(probe, metadata))
            summary = {k: v for k, v in metadata.items() if k not in ("val_embedding_fingerprint",)}
            merge_json(summary_path, {"dataset": dataset.name,
                                      "models": {variant: {kind: {**summary, "file": path.name, "sha256": digest}}}})
            tqdm.write(f"[{variant}] {kind}: val MAE {probe.val_mae_:.4f} in {probe.fit_seconds_:.1f}s "
                       f"({describe_selected(probe.selected())}) -> {path.name}")
            bar.update()
    bar.close()
    print(f"training summary: {summary_path}")


if __name__ == "__main__":
    cli.run(main)

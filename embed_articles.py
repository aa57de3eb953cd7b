"""Phase 1: embed the train/val/test articles of a dataset with each model, cached as .npz.

    python embed_articles.py --dataset uplifting_v5 --models multilingual-MiniLM-L12-v2 bge-m3
    python embed_articles.py --data-dir ../shared/data/sustainability_real --models minilm-l6-en-demo
    python embed_articles.py --dataset uplifting_v5 --models bge-m3 --max-tokens 512 1024   # truncation sweep
    python embed_articles.py --dataset uplifting_v5 --models multilingual-mpnet-base-v2 --chunks  # + chunked twin
    python embed_articles.py --dataset uplifting_v5 --models multilingual-e5-large+bge-m3          # side by side

Writes embeddings/<dataset>_<variant>_<split>.npz, the variant being the model name, with -t<N>
when its max tokens differ from config.yaml. --chunks adds each model's chunked twin
<model>-c<N>: every article cut into windows of N tokens (overlapping by config chunking.overlap
tokens, at most chunking.max_windows of them; the articles cut after them are counted), every
window embedded, the windows' embeddings averaged. `a+b` puts the cached embeddings of a and b
side by side (embedding them first where needed; the same articles in the same order, checked).
A rerun whose inputs and settings match the cache's fingerprint loads nothing and computes
nothing; a changed input file or setting rebuilds; --force always rebuilds. On CUDA the model
runs in bf16 (fp16 where bf16 is missing) unless --dtype float32.
"""
import time

from tqdm import tqdm

from study import cli, paths
from study.cache import CACHE_KEYS, Checkpoint, cache_damage, concatenate, fingerprint, mismatch, read_fingerprint, save_embeddings
from study.config import load_config, with_parts
from study.artifacts import write_json
from study.data import SPLITS, load_splits, resolve_dataset, split_leaks
from study.embedders import batch_size_for, embed_texts, load_model, resolve_device, resolve_dtype, use_all_cores
from study.errors import StudyError
from study.provenance import model_revision


def main():
    parser = cli.parser(__doc__)
    cli.add_models(parser, "default_models of config.yaml")
    cli.add_speed(parser)
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    parser.add_argument("--device", type=cli.device, help="override config device (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--devices", nargs="+", help="several devices (cuda:0 cuda:1 ...), one process each")
    parser.add_argument("--force", action="store_true", help="rebuild caches even when they are valid")
    cli.add_chunks(parser)
    args = parser.parse_args()

    cfg = load_config(args.config)
    dataset = resolve_dataset(cfg, args.dataset, args.data_dir)
    variants = with_parts(cfg.select_variants(args.models, args.max_tokens, chunks=args.chunks))
    splits = load_splits(dataset, cfg.score_range, tuple(args.splits))
    report_leaks(cfg, dataset, splits)
    device = resolve_device(args.devices[0] if args.devices else (args.device or cfg.device))
    dtype = resolve_dtype(device, args.dtype)
    if device.type == "cpu":
        print(f"device cpu ({use_all_cores()} threads), dtype {dtype}")
    else:
        print(f"device {', '.join(args.devices or [str(device)])}, dtype {dtype}")

    for variant in variants:
        if variant.parts:
            for split in splits.values():
                concatenate(cfg, dataset, variant, split, args.force)
            continue
        todo = stale_splits(cfg, dataset, variant, splits.values(), dtype, args.force)
        if not todo:
            continue
        spec, t_load = cfg.model(variant.model), time.perf_counter()
        location = cfg.model_location(variant.model)
        encoder = load_model(spec, location, device if not args.devices else resolve_device("cpu"), dtype,
                             variant.model, variant.max_tokens)
        if encoder.dim != spec.dimensions:
            raise StudyError(f"model '{variant.model}' gives {encoder.dim}-dim embeddings but config.yaml says "
                             f"dimensions: {spec.dimensions}")
        model_revision.cache_clear()   # a hub model downloaded just now has a revision now
        for _, _, expected in todo:
            expected.update({"revision": model_revision(location)} if model_revision(location) else {})
        print(f"[{variant.name}] loaded {location} in {time.perf_counter() - t_load:.1f}s "
              f"(pooling {encoder.pooling}, normalize {encoder.normalize}, max tokens {variant.max_tokens})")
        load_spec = dict(source=spec.source, location=location, dtype=dtype, trust_remote_code=spec.trust_remote_code,
                         normalize=spec.normalize)
        chunks = cfg.chunking.model_dump() if variant.chunked else None
        for split, path, expected in todo:
            texts = split.texts
            checkpoint = None if args.devices and len(args.devices) > 1 else Checkpoint(path, expected)
            with tqdm(total=len(texts), desc=f"{variant.name} {split.name}", unit="article") as bar:
                emb, counts, stats = embed_texts(
                    encoder, texts, max_tokens=variant.max_tokens,
                    batch_size=args.batch_size or batch_size_for(device, spec.batch_size or cfg.batch_size),
                    token_budget=spec.token_budget, progress=bar, devices=args.devices, load_spec=load_spec,
                    checkpoint=checkpoint, chunks=chunks, prefix=spec.prefix)
            record = {"seconds": stats.encode_s + stats.tokenize_s, "articles_per_s": stats.articles_per_s,
                      "tokens_per_s": stats.tokens_per_s, "devices": stats.devices, "dtype": dtype}
            if chunks:
                record.update(windows=stats.n_windows, capped_articles=stats.capped, token_capacity=stats.capacity)
            save_embeddings(path, embeddings=emb, split=split, token_counts=counts, fingerprint=expected, stats=record)
            if checkpoint is not None:
                checkpoint.remove()
            cut = (f"{stats.n_windows} windows of {variant.max_tokens} tokens, {stats.capped} articles cut after "
                   f"{chunks['max_windows']}" if chunks else
                   f"{(counts > variant.max_tokens).mean():.0%} truncated at {variant.max_tokens}")
            print(f"[{variant.name}] {split.name}: {len(texts)} articles in {stats.encode_s:.1f}s "
                  f"({stats.articles_per_s:.1f} articles/s, {stats.tokens_per_s:.0f} tokens/s; tokenizing "
                  f"{stats.tokenize_s:.2f}s; {cut}" + (f"; {stats.oom_retries} OOM retries" if stats.oom_retries else "")
                  + f") -> {path}")
        del encoder


def report_leaks(cfg, dataset, splits) -> None:
    """Say (and record for the report) which articles appear in more than one split."""
    leaks = split_leaks(splits)
    if len(splits) > 1:
        write_json(paths.data_checks(cfg, dataset.name), {"dataset": dataset.name, "splits": list(splits),
                                                          "split_leaks": leaks})
    if leaks["same_id"] or leaks["same_text"]:
        print(f"warning: articles in more than one split: {leaks['same_id']} by id, {leaks['same_text']} by title + "
              "content; e.g. " + "; ".join(f"{'/'.join(e['splits'])}: {', '.join(e['ids'])}" for e in leaks["examples"]))


def stale_splits(cfg, dataset, variant, splits, dtype, force) -> list:
    """(split, cache path, fingerprint) of each split whose cache is missing, out of date or --force'd."""
    todo = []
    for split in splits:
        path = paths.embedding_cache(cfg, dataset.name, variant.name, split.name)
        expected = fingerprint(cfg, variant, dtype, split.name, split.sha256)
        if path.exists() and not force:
            found = read_fingerprint(path)
            why = "unreadable" if found is None else mismatch(found, expected, CACHE_KEYS) or cache_damage(path)
            if why is None:
                print(f"[{variant.name}] {split.name}: cache is valid, skipped ({path.name})")
                continue
            print(f"[{variant.name}] {split.name}: cache out of date ({why}), rebuilding")
        todo.append((split, path, expected))
    return todo


if __name__ == "__main__":
    cli.run(main)

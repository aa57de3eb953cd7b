"""Phase 1: embed the train/val/test articles of a dataset with each model, cached as .npz.

    python embed_articles.py --dataset uplifting_v5 --models multilingual-MiniLM-L12-v2 bge-m3
    python embed_articles.py --data-dir ../shared/data/sustainability_real --models minilm-l6-en-demo
    python embed_articles.py --dataset uplifting_v5 --models bge-m3 --max-tokens 512 1024   # truncation sweep
    python embed_articles.py --dataset uplifting_v5 --models multilingual-mpnet-base-v2 --chunks  # + chunked twin
    python embed_articles.py --dataset uplifting_v5 --models multilingual-e5-large+bge-m3          # side by side
    python embed_articles.py --dataset uplifting_v5 --models multilingual-e5-large --layers 12 18 24  # layer sweep

Writes embeddings/<dataset>_<variant>_<split>.npz, the variant being the model name, with -t<N>
when its max tokens differ from config.yaml. --chunks adds each model's chunked twin
<model>-c<N>: every article cut into windows of N tokens (overlapping by config chunking.overlap
tokens, at most chunking.max_windows of them; the articles cut after them are counted), every
window embedded, the windows' embeddings averaged. `a+b` puts the cached embeddings of a and b
side by side (embedding them first where needed; the same articles in the same order, checked).
--layers K... takes each model instead at its hidden layers K (<model>-L<k>: transformers'
hidden_states[k], 0 the embedding layer, pooled and normalised as the model pools its output),
every layer of a split from one forward pass.
An `unlabelled.jsonl` beside the splits (articles without labels, for train_probes.py --teacher-predictions) is
embedded too, as the split `unlabelled`.
A rerun whose inputs and settings match the cache's fingerprint loads nothing and computes
nothing; a changed input file or setting rebuilds; --force always rebuilds. On CUDA the model
runs in bf16 (fp16 where bf16 is missing) unless --dtype float32. Batches are sorted by length and
bounded in rows and tokens as the speed benchmark's (`batching_for`; every model gets a token budget
on CUDA); --packed lays each batch end to end without padding (BERT / XLM-R encoders). On the CPU,
--backend onnx (--int8) or openvino runs the model's forward pass in onnxruntime or OpenVINO, exported
once from the local model (study/backends.py); the backend is part of the cache's fingerprint.

    python embed_articles.py --data-dir ../shared/data/sustainability_real --models minilm-l6-en-demo --backend openvino
"""
from study import cli
from study.backends import backend_name
from study.config import load_config
from study.data import SPLITS, UNLABELLED, resolve_dataset
from study.embedding import EmbedOptions, Options, embed


def main():
    parser = cli.parser(__doc__)
    cli.add_models(parser, "default_models of config.yaml")
    cli.add_speed(parser)
    parser.add_argument("--splits", nargs="+", choices=(*SPLITS, UNLABELLED),
                        help="default: train val test, and unlabelled where unlabelled.jsonl exists")
    parser.add_argument("--device", type=cli.device, help="override config device (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--devices", nargs="+", help="several devices (cuda:0 cuda:1 ...), one process each")
    parser.add_argument("--force", action="store_true", help="rebuild caches even when they are valid")
    parser.add_argument("--packed", action="store_true",
                        help="padding-free batches (BERT / XLM-R encoders; variable-length attention on CUDA)")
    cli.add_chunks(parser)
    cli.add_layers(parser)
    cli.add_backend(parser, "torch")
    args = parser.parse_args()

    cfg = load_config(args.config)
    cli.hold_results(cfg)   # one run at a time in a results folder
    dataset = resolve_dataset(cfg, args.dataset, args.data_dir)
    tup = lambda xs: tuple(xs) if xs else None   # noqa: E731 (argparse's lists as the options' tuples)
    options = Options(models=tup(args.models), max_tokens=tup(args.max_tokens), chunks=args.chunks,
                      layers=tup(args.layers), splits=tup(args.splits), device=args.device, dtype=args.dtype,
                      force=args.force,
                      encode=EmbedOptions(batch_size=args.batch_size, devices=tuple(args.devices or ()),
                                          packed=args.packed, backend=backend_name(args.backend or "torch", args.int8)))
    embed(cfg, dataset, options)   # says per variant and split what it embedded, rebuilt or found valid


if __name__ == "__main__":
    cli.run(main)

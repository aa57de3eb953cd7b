"""Stage 1 as a tool: score new articles with a probe of the study and route them.

    python score_articles.py --stage1 results/uplifting_v5_stage1_bge-m3_mlp --input articles.jsonl --output scored.jsonl
    python score_articles.py --stage1 results/uplifting_v5_stage1_bge-m3_mlp --weights finetuned_weights.json --no-tiers --input a.jsonl --output s.jsonl
    python score_articles.py --stage1 results/uplifting_v5_stage1_bge-m3_mlp --export embedding_probe.pkl --recall 0.95
    python score_articles.py --probe results/uplifting_v5_bge-m3_mlp.pkl --input articles.jsonl --output scored.jsonl
    python score_articles.py --probe results/uplifting_v5_bge-m3_mlp.pkl --input articles.jsonl --output scored.jsonl --recall 0.95
    python score_articles.py --probe results/demo_yes_no_minilm-l6-en-demo_logistic.pkl --input a.jsonl --output d.jsonl
    python score_articles.py --probe results/demo_minilm-l6-en-demo_ridge.pkl --input demo_data/demo/test.jsonl --output /tmp/s.jsonl --labels

Input: JSON lines with `id` and `title` and/or `content` (other fields are ignored; `labels` too,
unless --labels). Each article is embedded exactly as the probe's recipe says (its metadata:
model, revision, prefix, pooling, normalisation, max tokens, windows of a chunked variant, the parts
of a side-by-side pair), through the study's encode loop, in the dtype the probe's embeddings were
made with and in phase 1's batches (--packed: padding-free, for BERT / XLM-R encoders), then scored by
the probe (clipped to the score range). The fine-tuned encoder arm (probe kind `finetuned`) serves the same way:
its bundle carries the tuned weights (`encoder.safetensors`, loaded over the base model) and its linear head.
On the CPU, --backend onnx (--int8) or openvino runs the encoder in
onnxruntime or OpenVINO (study/backends.py; default: the backend the probe's embeddings were made with).

Output, one line per article in input order:
    scores:  {"id", "scores": {dimension: score}, "article_score", "tier", "route"}
    yes/no:  {"id", "p_yes", "decision": "yes" | "no"}
The article score is the weighted mean of the dimension scores (the dataset's weights, as phase 3
used them); `route` is "fine-tuned" when it is at or above the threshold phase 3 chose on
validation for the --recall target (default: the highest, e.g. 0.99), else "final" (the probe's
scores stand). A yes/no probe says yes where P(yes) is at or above the threshold it chose on
validation. Weights, tiers and thresholds come from the Stage 1 bundle phase 3 wrote (--stage1: the probe
and all it needs in one folder of JSON + safetensors, no pickle) or, with --probe, from the evaluation JSON
beside the probe file. --weights FILE routes as production does, by the fine-tuned scorer's own dimension
weights (a JSON / YAML mapping, summing to 1): the thresholds are chosen again for them on the bundle's
validation predictions, by phase 3's rule. --no-tiers leaves `tier` out of each line.

--export OUT.pkl writes no scores: it writes the bundle in the production loader's layout (llm-distillery's
EmbeddingStage: top-level `scaler`, `state_dict` of torch tensors, `model_config` of an MLP 256 -> 128) with a
.sha256, plus the weights, the threshold of --recall / --rule and the recipe as extra keys. Only an MLP probe
fits it; a seed ensemble is exported as its member with the lowest validation MAE (printed: its MAE against the
ensemble's on validation and test), its threshold chosen again on that member's validation predictions. A recipe
with a prefix is refused (production embeds without one) unless --keep-prefix.

--output may not be the input, the probe file or bundle, nor lie under results/ or embeddings/; one run
at a time writes it (a second is refused, naming the first). Each article's text is cut where the recipe's
tokenizer cannot reach (a 20 MB article costs what a short one does); a line over 64 MiB is refused.
The input is checked whole before anything is loaded (a line without text, a duplicate id: one
`error:` line, nothing written), then streamed `--chunk` articles at a time (memory follows the
chunk, not the file). The output appears only when complete; killed, the same command resumes
after its last finished chunk and gives the same bytes. A probe or bundle file whose checksum differs, a
model that cannot be loaded, or weights of another revision than the probe's (unless
--allow-revision) stop it before the first article.
"""
import argparse
import sys
import time

import numpy as np
from tqdm import tqdm

from study import cli
from study.backends import backend_name
from study.config import DTYPE_NAMES, load_config
from study.embedders import resolve_device, resolve_dtype, use_all_cores
from study.errors import StudyError
from study.scoring import (CHUNK_ARTICLES, RULES, Embedder, check_input, claim_output, hold_output, load_stage1,
                           recipe_parts, resolve_part, score_file, tokens_read)
from study.stage1 import export_production, read_bundle, read_weights


def main():
    parser = cli._Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="config file (default: config.yaml beside the scripts)")
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--stage1", help="a Stage 1 bundle of phase 3, the folder results/<ds>_stage1_<variant>_<probe> "
                                        "(the probe and what phase 3 chose for it; JSON + safetensors, no pickle)")
    given.add_argument("--probe", help="a probe file of phase 2, results/<ds>_<variant>_<probe>.pkl (with the "
                                       "evaluation JSON beside it)")
    parser.add_argument("--input", help="articles, one JSON object a line")
    parser.add_argument("--output", help="scored articles, one JSON object a line")
    parser.add_argument("--export", metavar="OUT.pkl",
                        help="with --stage1: write the production loader's layout instead of scoring (see above)")
    parser.add_argument("--keep-prefix", action="store_true",
                        help="--export: export a probe trained with a prefix (production must then add it)")
    parser.add_argument("--weights", metavar="FILE",
                        help="with --stage1: the fine-tuned scorer's dimension weights (JSON / YAML mapping, sum 1); "
                             "thresholds chosen again for them on validation")
    parser.add_argument("--no-tiers", action="store_true", help="score datasets: leave `tier` out of the output")
    parser.add_argument("--recall", type=cli.unit_float,
                        help="score datasets: the recall target whose threshold routes (default: the highest)")
    parser.add_argument("--rule", choices=RULES, default="guaranteed",
                        help="score datasets: the guaranteed threshold (default: keeps the recall target on new "
                             "articles at the confidence phase 3 recorded) or the plug-in one (met on validation only)")
    parser.add_argument("--labels", action="store_true",
                        help="copy each line's labels into the output and report the error against them")
    parser.add_argument("--allow-revision", action="store_true",
                        help="score even when the model's weights differ from those the probe was trained on")
    parser.add_argument("--device", help="override config device (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--dtype", choices=DTYPE_NAMES, help="default: the dtype of the probe's training embeddings")
    parser.add_argument("--batch-size", type=cli.positive_int, help="override the model's batch_size")
    parser.add_argument("--packed", action="store_true",
                        help="padding-free batches (BERT / XLM-R encoders; variable-length attention on CUDA)")
    cli.add_backend(parser, "the one the probe's embeddings were made with")
    parser.add_argument("--chunk", type=cli.positive_int, default=CHUNK_ARTICLES,
                        help=f"articles between two checkpoints (default {CHUNK_ARTICLES})")
    args = parser.parse_args()

    if args.export and not args.stage1:
        raise StudyError("--export reads a Stage 1 bundle: give it as --stage1")
    if not args.export and not (args.input and args.output):
        raise StudyError("give --input and --output (or --export with --stage1)")
    t_start = time.perf_counter()
    cfg = load_config(args.config)
    if args.export:
        export(args)
        return
    claim_output(cfg, args.output, args.input, args.stage1 or args.probe)
    stage = load_stage1(cfg, args.stage1 or args.probe, args.recall, args.rule,
                        expect="stage1" if args.stage1 else "probe", weights_file=args.weights)
    stage.with_tiers = not args.no_tiers
    n, input_sha = check_input(args.input, args.labels, len(stage.dimension_names))
    device = resolve_device(args.device or cfg.device)
    backend = backend_name(args.backend, args.int8) if args.backend or args.int8 else None
    if args.int8 and not args.backend:
        raise StudyError("--int8 quantizes with onnxruntime: add --backend onnx")
    parts = [resolve_part(cfg, recipe, fp, args.dtype and resolve_dtype(device, args.dtype), backend)
             for recipe, fp in recipe_parts(stage.meta)]
    threads = f" ({use_all_cores()} threads)" if device.type == "cpu" else ""
    embed = Embedder(cfg, parts, device, args.batch_size, args.allow_revision, warn=lambda s: print(s, file=sys.stderr),
                     packed=args.packed, finetuned=stage.encoder, where=stage.path)
    meta = stage.meta
    rule = (f"route fine-tuned where the article score >= {stage.threshold:.4f} (recall target {stage.recall:g}, "
            f"{stage.rule} threshold chosen on validation)" if stage.task == "regression" else
            f"yes where P(yes) >= {stage.threshold:.4f} (chosen on validation)")
    print(f"{meta['variant']} + {meta['probe']} ({meta['dataset']}): {n} articles; device {device}{threads}, dtype "
          f"{'+'.join(p.dtype for p in parts)}, backend {'+'.join(p.backend for p in parts)}; {rule}")
    settings = {"device": device.type, "dtypes": [p.dtype for p in parts], "batch_size": args.batch_size,
                "backends": [p.backend for p in parts],
                "recall": stage.recall, "rule": stage.rule, "packed": args.packed, "tiers": stage.with_tiers,
                "weights": None if stage.weights is None else stage.weights.tolist()}
    hold_output(args.output)
    with tqdm(total=n, desc="scoring", unit="article") as bar:
        summary = score_file(stage, embed, args.input, args.output, n_articles=n, input_sha256=input_sha,
                             settings=settings, chunk=args.chunk, with_labels=args.labels, progress=bar,
                             tokens=tokens_read(meta))

    what = "routed to the fine-tuned model" if stage.task == "regression" else "yes"
    rate = summary["articles_per_s"]
    print(f"{summary['articles']} articles, {summary['positive_share']:.1%} {what}; "
          + (f"resumed after {summary['resumed_after']}; " if summary["resumed_after"] else "")
          + (f"{rate:.1f} articles/s over {summary['scored_now']} scored now; " if rate else "")
          + f"wall time {time.perf_counter() - t_start:.1f}s (scoring {summary['wall_s']:.1f}s); "
          f"peak RSS {summary['peak_rss_mb']:.0f} MB")
    if "label_error" in summary:
        print(("MAE against the input's labels" if stage.task == "regression" else "error rate against the labels")
              + f": {summary['label_error']:.4f}")
    print(f"-> {args.output}")


def export(args):
    """--export: the bundle in the production loader's layout (study/stage1.py `export_production`)."""
    data = read_bundle(args.stage1)
    spec = data["spec"]
    weights = (read_weights(args.weights, spec.dimension_names) if args.weights else
               np.array([spec.weights[d] for d in spec.dimension_names]) if spec.weights else None)
    info = export_production(data, args.export, weights=weights, recall=args.recall, rule=args.rule,
                             keep_prefix=args.keep_prefix)
    m, e = info["member"], info["ensemble"]
    print(f"{spec.variant} + {spec.probe_kind} ({spec.dataset}) -> {args.export} (+ .sha256): member {m['index']} of "
          f"{m['of']} (seed {m['seed']}, the lowest validation MAE)")
    if m["of"] > 1:
        print(f"MAE of the exported member against the ensemble's: validation {m['val_mae']:.4f} vs {e['val_mae']:.4f} "
              f"({m['val_mae'] - e['val_mae']:+.4f}); test " + (f"{m['test_mae']:.4f} vs {e['test_mae']:.4f} "
              f"({m['test_mae'] - e['test_mae']:+.4f})" if m["test_mae"] is not None else "n/a"))
    print(f"EmbeddingStage(embedding_model_name={info['embedding_model_name']!r}, threshold={info['threshold']!r}, "
          f"dimension_names={info['dimension_names']}, dimension_weights={info['dimension_weights']}); threshold "
          f"{info['threshold_rule']} for recall {info['recall_target']:g} of medium+ articles"
          + (f" at {info['threshold_confidence']:.0%} confidence" if info["threshold_rule"] == "guaranteed" else "")
          + f"; text {info['text']}; " + (f"prefix {info['prefix']!r}: production must add it" if info["prefix"] else
                                           "no prefix")
          + f"; max tokens {info['max_tokens']}")


if __name__ == "__main__":
    cli.run(main)

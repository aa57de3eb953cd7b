"""Phase 2: train Ridge / MLP / LightGBM probes on cached embeddings.

    python train_probes.py --dataset uplifting_v5 --models multilingual-MiniLM-L12-v2 bge-m3
    python train_probes.py --dataset uplifting_v5 --models bge-m3 --max-tokens 512 8192
    python train_probes.py --data-dir ../shared/data/sustainability_real --models minilm-l6-en-demo --probes ridge mlp
    python train_probes.py --dataset uplifting_v5 --train-fractions 0.1 0.25 0.5 1.0   # learning curve
    python train_probes.py --data-dir ../shared/data/sustainability_real --train-languages en   # transfer
    python train_probes.py --data-dir /tmp/classify-data/sustainability_yes_no --models minilm-l6-en-demo   # yes/no labels

Reads embeddings/<dataset>_<variant>_{train,val}.npz (run embed_articles.py first). Every
choice (ridge alpha, MLP best epoch, LightGBM iterations) is made on the validation split.
A yes/no dataset (task: classification, README "Yes/no datasets") gets logistic regression (C
chosen on validation log-loss), the MLP with a binary cross-entropy loss and LightGBM binary,
each with the threshold on P(yes) that maximises F1 on validation.
The MLP and LightGBM are fitted with config `probe_seeds` seeds (random_seed, +1, ...; the demo's
datasets `demo.probe_seeds`), together (the MLP's seeds as one batched network, on CUDA when present; LightGBM's
on inputs binned once, in worker processes when they are large), and saved as
their ensemble (the mean of the members' predictions); ridge and logistic regression are fitted once.
Each member's validation score is recorded under `seeds`. A degenerate choice (a ridge alpha or
logistic C at the edge of its grid, a LightGBM dimension stopped after 1 round) prints a `warning:`
line saying what to do and is recorded under `warnings`.
Writes results/<dataset>_<variant>_<probe>.pkl (+ .pkl.sha256) and merges the run into
results/<dataset>_training_summary.json.

--train-fractions also trains each probe on nested subsets of the training split (one
permutation seeded with random_seed, the first ceil(f x n) rows; validation unchanged):
results/<dataset>_<variant>_<probe>_n<rows>.pkl, listed under the probe's `train_subsets`
in the training summary, where evaluate.py finds them (with the same seeds). 1.0 is the normal probe, trained
once. Retraining a probe without --train-fractions empties its `train_subsets` (its subsets
belonged to the run that trained the old full-data probe).

--train-languages en [..] also trains each probe on the training and validation articles of those
languages only (cross-lingual transfer: "train on English, serve Dutch?"):
results/<dataset>_<variant>_<probe>_from-<languages>.pkl, listed under the probe's `transfers`;
evaluate.py tests it on every test language beside the probe trained on all languages.

--teacher-predictions FILE (the fine-tuned model's scores, the layout of --baseline-predictions with article_ids)
also trains each variant's probes as `<variant>+teacher`: on the labelled training articles plus the articles of
unlabelled.jsonl (beside the splits, embedded by phase 1) that the teacher scored, their targets its scores, each
weighing one of config `teacher_weights` (a labelled article weighs 1), the weight chosen on validation labels.
evaluate.py compares it with the label-only probe on the same test articles.
"""
from study import cli
from study.config import load_config
from study.data import resolve_dataset
from study.training import Options, train


def main():
    parser = cli.parser(__doc__)
    cli.add_models(parser, "default_models of config.yaml")
    cli.add_probes(parser)
    cli.add_train_fractions(parser)
    cli.add_train_languages(parser)
    parser.add_argument("--mlp-device", default="auto", type=cli.device,
                        help="device of the MLP, the only probe that can use a GPU (default auto: CUDA when present, "
                             "else the CPU, where it is bit-reproducible)")
    cli.add_teacher(parser)
    args = parser.parse_args()

    cfg = load_config(args.config)
    cli.hold_results(cfg)   # one run at a time in a results folder
    dataset = resolve_dataset(cfg, args.dataset, args.data_dir)
    options = Options(models=tuple(args.models) if args.models else None,
                      max_tokens=tuple(args.max_tokens) if args.max_tokens else None,
                      probes=tuple(args.probes) if args.probes else None,
                      train_fractions=tuple(args.train_fractions or ()),
                      train_languages=tuple(args.train_languages or ()),
                      mlp_device=args.mlp_device, teacher_predictions=args.teacher_predictions)
    done = train(cfg, dataset, options)
    print(f"training summary: {done.path}")


if __name__ == "__main__":
    cli.run(main)

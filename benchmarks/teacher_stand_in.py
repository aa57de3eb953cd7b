"""A stand-in teacher for issue 28's real-data demonstration: a labelled dataset turned into few labels + many
unlabelled articles, and a teacher file that scores every article. Prints the teacher's own MAE.

    python benchmarks/teacher_stand_in.py --data-dir /tmp/real/sus_sub --config /tmp/real/config.yaml \
        --variant multilingual-e5-small-q4-t256 --labelled 500 --out /tmp/tch/real/sus_sub \
        --teacher /tmp/tch/real/teacher.json

Writes to --out: `train.jsonl` (--labelled training articles, a permutation seeded 0), `unlabelled.jsonl` (the other
training articles without `labels` / `dimension_names`), `val.jsonl` and `test.jsonl` copied byte for byte (so their
embedding caches stay valid). The teacher is NOT a fine-tuned model: ridge probes (alpha chosen on validation) on the
variant's cached embeddings of ALL the original training articles (--config's embeddings_dir; run embed_articles.py on
--data-dir first). The held-back articles are scored 5-fold cross-fitted (never by a ridge that saw their labels),
the kept training, validation and test articles by the ridge on all of them. It is a stronger probe of the same
embeddings (4x the labels), nothing more.
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from study import paths  # noqa: E402
from study.cache import read_embeddings  # noqa: E402
from study.config import load_config  # noqa: E402
from study.data import resolve_dataset  # noqa: E402
from study.probes import RidgeProbe  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--labelled", type=int, default=500)
    p.add_argument("--out", required=True)
    p.add_argument("--teacher", required=True)
    args = p.parse_args()
    cfg = load_config(args.config)
    dataset = resolve_dataset(cfg, None, args.data_dir)
    src, out = Path(args.data_dir), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = (src / "train.jsonl").read_text(encoding="utf-8").splitlines()
    perm = np.random.default_rng(0).permutation(len(lines))
    keep, held = sorted(perm[:args.labelled]), sorted(perm[args.labelled:])
    (out / "train.jsonl").write_text("".join(lines[i] + "\n" for i in keep), encoding="utf-8")
    unlabelled = []
    for i in held:
        rec = json.loads(lines[i])
        rec.pop("labels")
        rec.pop("dimension_names", None)
        unlabelled.append(json.dumps(rec, ensure_ascii=False) + "\n")
    (out / "unlabelled.jsonl").write_text("".join(unlabelled), encoding="utf-8")
    for s in ("val", "test"):
        shutil.copyfile(src / f"{s}.jsonl", out / f"{s}.jsonl")

    train, val, test = (read_embeddings(paths.embedding_cache(cfg, dataset.name, args.variant, s))
                        for s in ("train", "val", "test"))
    X, Y, Xv, Yv = train["embeddings"], train["labels"], val["embeddings"], val["labels"]
    held_ids = {str(json.loads(lines[i])["id"]) for i in held}
    is_held = np.array([str(i) in held_ids for i in train["ids"]])
    cross = np.zeros(Y.shape)
    folds = np.random.default_rng(1).permutation(len(X)) % 5
    for f in range(5):
        cross[folds == f] = RidgeProbe().fit(X[folds != f], Y[folds != f], Xv, Yv).predict(X[folds == f])
    full = RidgeProbe().fit(X, Y, Xv, Yv)
    on_train = np.where(is_held[:, None], cross, full.predict(X))
    pv, pt = full.predict(Xv), full.predict(test["embeddings"])
    print(f"teacher: ridge alpha {full.alpha_:g} on {len(X)} labelled articles; MAE on the {int(is_held.sum())} held-back "
          f"articles (cross-fitted) {np.abs(cross[is_held] - Y[is_held]).mean():.4f}, validation "
          f"{np.abs(pv - Yv).mean():.4f}, test {np.abs(pt - test['labels']).mean():.4f}")
    ids = [str(i) for c in (train, val, test) for i in c["ids"]]
    Path(args.teacher).write_text(json.dumps({"predictions": np.vstack([on_train, pv, pt]).round(4).tolist(),
                                              "article_ids": ids, "dimension_names": train["dimension_names"]}))
    print(f"wrote {out} ({len(keep)} labelled, {len(held)} unlabelled) and {args.teacher} ({len(ids)} articles)")


if __name__ == "__main__":
    main()

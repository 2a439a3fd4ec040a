"""Accuracy of a CLEVR-world model for each question family, on a split or on training scenes.

    python -m benchmarks.clevr_families rn_clevr_state                      (validation)
    python -m benchmarks.clevr_families rn_clevr_state --split train --scenes 1500
    python -m benchmarks.clevr_families rn_clevr_state --weights runs/x/artifact/model.keras
    python -m benchmarks.clevr_families rn_clevr --prior --split test    (no model: the answer prior)

The cards report accuracy for each of CLEVR's five categories. This script breaks that down into
the world's question families (`relzoo.datasets.clevr.questions.FAMILY_NAMES`, e.g. `count_and`:
"How many ... are left of X and behind Y?"). It also reports accuracy by the number of objects
in the scene. `--split train --scenes N` asks about the first N training scenes of the card's data
set, which the model trained on. A family that is high there and low on validation is memorised.
A family that is low on both is not learnt.

The split is the one named by the card's dataset spec (seed and sizes), generated as
`relzoo evaluate` generates it. With `--scenes`, that many of its first scenes are used: the data set is
generated in chunks seeded by their position, so these are the split's own first scenes.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def family_accuracy(model, spec, split, num_scenes=None):
    """`(rows, by_objects, overall, count)`: rows `(accuracy, questions, family)` sorted by
    accuracy, and `{objects: (accuracy, questions)}`."""
    import numpy as np

    from relzoo.datasets.clevr import dataset as D
    from relzoo.datasets.clevr.questions import FAMILY_NAMES
    from relzoo.evaluate import predict_logits

    representation = spec.get("options", {}).get("representation", "pixels")
    size = spec[f"{split}_size"] if num_scenes is None else int(num_scenes)
    scenes, questions, _ = D.generate_split(size, seed=spec["seed"], split=split, representation=representation,
                                            progress=False)
    examples = D.features.to_examples(scenes, questions, representation)
    correct = predict_logits(model, examples).argmax(-1) == examples.answers
    family = questions["family"]
    rows = sorted((float(correct[family == f].mean()), int((family == f).sum()), FAMILY_NAMES[f])
                  for f in np.unique(family))
    objects = scenes["object_mask"].sum(1)[questions["scene_index"]]
    by_objects = {int(k): (float(correct[objects == k].mean()), int((objects == k).sum())) for k in np.unique(objects)}
    return rows, by_objects, float(correct.mean()), len(correct)


PRIOR_FIT_SCENES = 5000  # training scenes whose answers give each family's commonest answer


def answer_prior(spec, split, fit_scenes=PRIOR_FIT_SCENES, num_scenes=None):
    """`{category: accuracy, "overall": accuracy}` of the answer prior on `split`: each question
    answered with the commonest training answer of its family (fitted on the training split's first
    `fit_scenes` scenes; the questions alone, no image). A model shown the wrong scene cannot do
    much better than this."""
    import numpy as np

    from relzoo.datasets.clevr import dataset as D
    from relzoo.datasets.clevr.questions import CATEGORIES

    def questions(which, size):
        return D.generate_split(size, seed=spec["seed"], split=which, representation="state", progress=False)[1]

    fit = questions("train", fit_scenes)
    score = questions(split, spec[f"{split}_size"] if num_scenes is None else int(num_scenes))
    commonest = {f: np.bincount(fit["answer"][fit["family"] == f]).argmax() for f in np.unique(fit["family"])}
    guess = np.array([commonest.get(f, -1) for f in score["family"]])
    correct = guess == score["answer"]
    out = {CATEGORIES[c]: float(correct[score["category"] == c].mean()) for c in np.unique(score["category"])}
    return {**out, "overall": float(correct.mean())}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.clevr_families", description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="a zoo model on the CLEVR-format world, e.g. rn_clevr_state")
    p.add_argument("--split", choices=("train", "validation", "test"), default="validation")
    p.add_argument("--scenes", type=int, default=None, help="only the split's first N scenes")
    p.add_argument("--weights", help="a .keras file to measure instead of the published artifact (same card)")
    p.add_argument("--prior", action="store_true",
                   help="no model: the accuracy of answering each question with its family's commonest training answer")
    args = p.parse_args(argv)

    import relzoo
    from relzoo import artifacts, hub, presets

    preset = presets.get(args.name)
    if preset.dataset.get("name") != "clevr_world":
        print(f"clevr_families: {args.name} is not a CLEVR-world model (its data set is {preset.dataset.get('name')}).",
              file=sys.stderr)
        return 2
    if args.prior:
        values = answer_prior(preset.dataset, args.split, num_scenes=args.scenes)
        print(f"the answer prior of {args.name}'s data set (each family's commonest answer on {PRIOR_FIT_SCENES:,} "
              f"training scenes), {args.split} split:")
        for key, acc in values.items():
            print(f"{acc:8.4f}  {key}")
        return 0
    if args.weights:
        model = relzoo.load(args.name, weights=args.weights)  # checked against the preset's specs
        source = args.weights
    else:
        model = relzoo.load(args.name)
        source = f"the published {args.name} (sha256 {artifacts.read_card(hub.artifact_dir(args.name))['sha256'][:12]})"
    rows, by_objects, overall, count = family_accuracy(model, preset.dataset, args.split, args.scenes)
    print(f"{source}, {args.split} split{'' if args.scenes is None else f' (first {args.scenes} scenes)'}: "
          f"{overall:.4f} of {count} questions")
    print("accuracy  questions  family")
    for acc, n, name in rows:
        print(f"{acc:8.4f}  {n:9d}  {name}")
    print("accuracy  questions  objects in the scene")
    for k, (acc, n) in sorted(by_objects.items()):
        print(f"{acc:8.4f}  {n:9d}  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

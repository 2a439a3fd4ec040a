"""Accuracy on a development set: fresh scenes of a zoo model's data set, for comparing recipes.

    python -m benchmarks.dev_accuracy rn_sort_of_clevr --weights runs/X/artifact/model.keras
    python -m benchmarks.dev_accuracy rn_sort_of_clevr --scenes 2000 --seed 7 --json

The card's validation and test splits are small for Sort-of-CLEVR (200 scenes: 2,000 binary
questions, a standard error of about 0.65 points at 90%), too coarse to tell two short runs apart,
and the test split must not steer the choice of a recipe. This script generates `--scenes` scenes
of the preset's data set from the validation stream of another seed (`--seed`, default 7: never
the data set's own seed, whose splits train and score the published model) and reports the
accuracy per group, as `relzoo evaluate` does.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def dev_spec(spec, scenes, seed):
    """The data set spec of the development set: the preset's, with the validation split resized and reseeded."""
    if int(seed) == int(spec.get("seed", 0)):
        raise ValueError(f"dev_accuracy: --seed {seed} is the data set's own seed; its validation split is the "
                         "card's. Pick another seed.")
    return {**spec, "seed": int(seed), "validation_size": int(scenes)}


def main(argv=None):
    from relzoo import hub, presets
    from relzoo.datasets import load_split
    from relzoo.evaluate import evaluate_examples, format_record

    p = argparse.ArgumentParser(prog="python -m benchmarks.dev_accuracy", description=__doc__.split("\n\n")[0])
    p.add_argument("name")
    p.add_argument("--weights", default="pretrained", help="a .keras file instead of the published artifact")
    p.add_argument("--scenes", type=int, default=2000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    preset = presets.get(args.name)
    spec = dev_spec(preset.dataset, args.scenes, args.seed)
    examples = load_split(spec, "validation")
    record = evaluate_examples(hub.load(preset, weights=args.weights), examples, "validation", args.batch_size)
    record.update(dev_set={"seed": args.seed, "scenes": args.scenes}, weights=args.weights)
    print(format_record(args.name, record), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()

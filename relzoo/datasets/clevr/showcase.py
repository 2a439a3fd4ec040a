"""A picture and a few questions of the CLEVR-format world, for the README.

    python -m relzoo.datasets.clevr.showcase --out docs/clevr_world.png

writes a grid of renders (generated scenes, seed 0 of the validation split) and prints, as
Markdown, three questions about the first scene with their programs and answers.
"""

import argparse
from pathlib import Path

import numpy as np

from relzoo.datasets.clevr import executor, questions, render
from relzoo.datasets.clevr.scenes import generate_scenes


def describe_scene(scene):
    """'6 objects' (for captions)."""

    return f"{len(scene['objects'])} objects"


def example_questions(scene, families=("query_1", "count_and", "compare_attribute_0"), seed=0):
    """One question per family about `scene` (question dicts in CLEVR's form)."""
    rng = np.random.default_rng(seed)
    out = []
    for family in families:
        q = questions.generate_question(scene, rng, None, family)
        if q is not None:
            out.append(q)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/clevr_world.png", help="where to write the PNG grid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--width", type=int, default=240)
    parser.add_argument("--height", type=int, default=160)
    args = parser.parse_args(argv)
    scenes = generate_scenes(args.scenes, seed=args.seed, split="validation")
    captions = [f"#{k}: {describe_scene(s)}" for k, s in enumerate(scenes)]
    grid = render.render_grid(scenes, cols=4, width=args.width, height=args.height, supersample=2, captions=captions)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out)
    print(f"wrote {args.out}\n")
    print("| question (scene #0) | program | answer |\n| --- | --- | --- |")
    for q in example_questions(scenes[0], seed=args.seed):
        assert executor.index_to_answer(executor.answer_to_index(executor.execute(scenes[0], q["program"]))) == \
            q["answer"]
        print(f"| {q['question']} | `{executor.program_to_str(q['program'])}` | {q['answer']} |")


if __name__ == "__main__":
    main()

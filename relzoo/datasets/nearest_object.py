"""nearest_object: a tiny relational task for pipeline tests and demos.

Each example is a set of `num_objects` objects in the unit square, each of a
different colour (6 colours). The question names one colour (object A); the
answer is the colour of the object nearest to A (Euclidean distance, A
excluded). Answering needs a comparison across pairs, so a per-object model
cannot solve it; a Relation Network learns it in seconds.

Object features: `[x, y, colour one-hot (6)]` (8 floats). Question: the colour
one-hot of A (6 floats). Answer: a colour index (6 classes).

One seeded numpy generator serves training, evaluation and tests. Splits use
disjoint seed streams: `numpy.random.default_rng([seed, SPLIT_IDS[split]])`.
"""

import numpy as np

COLOURS = ("red", "green", "blue", "orange", "gray", "yellow")
NUM_COLOURS = len(COLOURS)
OBJECT_DIM = 2 + NUM_COLOURS
SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}
VERSION = "1.0.0"


def generate(num_examples, seed=0, split="train", num_objects=6):
    """Returns `({"objects": (N, n, 8), "question": (N, 6)}, answers (N,))`, float32 / int32."""
    if split not in SPLIT_IDS:
        raise ValueError(f"nearest_object: split must be one of {sorted(SPLIT_IDS)}, got {split!r}.")
    if not 2 <= num_objects <= NUM_COLOURS:
        raise ValueError(f"nearest_object: num_objects must be in [2, {NUM_COLOURS}], got {num_objects}.")
    rng = np.random.default_rng([int(seed), SPLIT_IDS[split]])
    n = int(num_examples)
    # distinct colours per example: the first num_objects of a random permutation
    colours = np.argsort(rng.random((n, NUM_COLOURS)), axis=1)[:, :num_objects]  # (N, n)
    xy = rng.random((n, num_objects, 2)).astype(np.float32)  # (N, n, 2)
    objects = np.concatenate([xy, np.eye(NUM_COLOURS, dtype=np.float32)[colours]], axis=-1)  # (N, n, 8)
    a = rng.integers(0, num_objects, size=n)  # index of object A
    dist = np.linalg.norm(xy - xy[np.arange(n), a][:, None, :], axis=-1)  # (N, n)
    dist[np.arange(n), a] = np.inf
    nearest = np.argmin(dist, axis=1)
    question = np.eye(NUM_COLOURS, dtype=np.float32)[colours[np.arange(n), a]]  # (N, 6)
    answers = colours[np.arange(n), nearest].astype(np.int32)
    return {"objects": objects, "question": question}, answers

"""The N-th farthest task (Santoro et al. 2018, "Relational recurrent neural networks").

Eight vectors drawn from U(-1, 1)^16 are shown one per time step. Each vector carries a
label: the labels 0..7 are a random permutation (not the step index). Every step also
shows the question, "which vector is the n-th farthest from vector m?", as one-hots of n
(0 = the farthest, n = 1 in words) and of m (a label). The answer is the label of that
vector (8 classes). Distances are Euclidean; vector m itself is among the candidates
(its distance, 0, makes it the nearest, so n = 8 in words names m itself).

One step's input, 40 floats: `[vector (16), label one-hot (8), n one-hot (8), m one-hot (8)]`.

One seeded numpy generator serves the fixed splits, the training stream and tests:
`generate(num_examples, seed, split)` for the fixed splits (validation and test: 10,000
examples each), `stream(batch_size, seed)` for an endless training stream of fresh
examples. Splits use disjoint seed streams `numpy.random.default_rng([seed, SPLIT_IDS[split], 11])`.
"""

import numpy as np

VERSION = "1.0.0"
NUM_VECTORS = 8
VECTOR_DIM = 16
STEP_DIM = VECTOR_DIM + 3 * NUM_VECTORS  # 40
SPLIT_IDS = {"train": 0, "validation": 1, "test": 2, "stream": 3}
SPLIT_SIZES = {"validation": 10000, "test": 10000}


def _rng(seed, split):
    if split not in SPLIT_IDS:
        raise ValueError(f"nth_farthest: split must be one of {sorted(SPLIT_IDS)}, got {split!r}.")
    return np.random.default_rng([int(seed), SPLIT_IDS[split], 11])


def sample(num_examples, rng):
    """`(sequences (N, 8, 40) float32, answers (N,) int32, parts)` with `parts` the raw draws.

    `parts`: `vectors` (N, 8, 16) in presentation order, `labels` (N, 8), `n` (N,), `m` (N,).
    """
    n_ex = int(num_examples)
    vectors = rng.uniform(-1.0, 1.0, size=(n_ex, NUM_VECTORS, VECTOR_DIM)).astype(np.float32)
    labels = np.argsort(rng.random((n_ex, NUM_VECTORS)), axis=1)  # a random permutation per example
    n = rng.integers(0, NUM_VECTORS, size=n_ex)
    m = rng.integers(0, NUM_VECTORS, size=n_ex)  # the reference, by label
    rows = np.arange(n_ex)
    ref_step = np.argmax(labels == m[:, None], axis=1)  # the step showing label m
    ref = vectors[rows, ref_step]  # (N, 16)
    dist = np.linalg.norm(vectors.astype(np.float64) - ref[:, None, :], axis=-1)  # (N, 8)
    order = np.argsort(-dist, axis=1, kind="stable")  # farthest first
    target_step = order[rows, n]
    answers = labels[rows, target_step].astype(np.int32)
    eye = np.eye(NUM_VECTORS, dtype=np.float32)
    per_step = lambda a: np.broadcast_to(eye[a][:, None, :], (n_ex, NUM_VECTORS, NUM_VECTORS))  # noqa: E731
    sequences = np.concatenate([vectors, eye[labels], per_step(n), per_step(m)], axis=-1)
    return sequences, answers, {"vectors": vectors, "labels": labels, "n": n, "m": m}


def generate(num_examples=None, seed=0, split="test"):
    """A fixed split: `({"sequence": (N, 8, 40)}, answers (N,))`."""
    if num_examples is None:
        if split not in SPLIT_SIZES:
            raise ValueError(f"nth_farthest: give num_examples for the {split!r} split.")
        num_examples = SPLIT_SIZES[split]
    sequences, answers, _ = sample(num_examples, _rng(seed, split))
    return {"sequence": sequences}, answers


def stream(batch_size, seed=0):
    """Endless batches `({"sequence": (B, 8, 40)}, answers (B,))` of fresh examples (the training stream)."""
    rng = _rng(seed, "stream")
    while True:
        sequences, answers, _ = sample(batch_size, rng)
        yield {"sequence": sequences}, answers


def describe(sequence):
    """The question of one example in words (n counted from 1 = the farthest)."""
    s = np.asarray(sequence)
    n = int(np.argmax(s[0, VECTOR_DIM + NUM_VECTORS:VECTOR_DIM + 2 * NUM_VECTORS]))
    m = int(np.argmax(s[0, VECTOR_DIM + 2 * NUM_VECTORS:]))
    return f"Which vector is number {n + 1} in order of distance (farthest first) from vector {m}?"


def _sample_inputs(num_examples, rng):
    sequences, answers, _ = sample(num_examples, rng)
    return {"sequence": sequences}, answers


def generate_examples(num_examples=None, seed=0, split="test"):
    """A split for the trainer and the evaluation: the training split is a `Stream` of fresh
    examples (`num_examples` per epoch); validation and test are fixed `Examples`."""
    from relzoo.datasets.examples import Examples, Stream

    if split == "train":
        if not num_examples:
            raise ValueError("nth_farthest: the training stream needs num_examples (examples per epoch).")
        return Stream(sample=_sample_inputs, size=int(num_examples), seed=int(seed))
    inputs, answers = generate(num_examples, seed, split)
    return Examples(inputs=inputs, answers=answers)

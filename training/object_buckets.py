"""Object-count buckets: batches of questions about scenes with the same number of objects.

A state-description model (e.g. `rn_clevr_state`) takes every scene padded to the same
number of objects (CLEVR: 10) with a mask, and `PairwiseRelation` pays for all `n * n`
pairs, padded ones included: a scene of 3 objects costs what a scene of 10 does. With
`train.feed = "object_buckets"` the trainer groups the training questions by the number of
objects in their scene, batches each group on its own, and cuts every batch's `objects` and
`object_mask` after that number. The relation module then computes only real pairs.

What changes, and what does not:
- Each question's loss is the same function of the same weights: the rows cut off are
  padding, which `PairwiseRelation` leaves out exactly (the model's answers on a cut batch
  equal those on the padded batch; tested).
- A batch holds questions about scenes of one size only. Every question is still seen once
  per epoch; the batches of all sizes come in one shuffled order, so the sizes interleave.
  The order is seeded by `(seed, epoch)`, so a resumed run sees the batches it would have
  seen uninterrupted.
- The model trained is built with `num_objects=None` (any number of objects); it has the
  same weights as the recipe's model, which is what is evaluated, saved and published.

On CLEVR-format scenes (3 to 10 objects) the pairs drop from 100 to 47 a question on
average; `python -m benchmarks.clevr_batches --settings state_cut state_buckets` measures
the questions per second.
"""

import numpy as np

from relzoo.datasets.examples import Examples, trailing_length
from training.batches import EpochBatches
from training.errors import RecipeError

OBJECTS, MASK = "objects", "object_mask"
FEED = 'train.feed = "object_buckets"'


class ObjectBucketsError(RecipeError):
    """The recipe's model or data cannot be trained with object-count buckets."""


def object_counts(examples: Examples, objects=OBJECTS, mask=MASK):
    """The number of objects in each example's scene `(N,)` int, from the boolean `mask` input.

    Raises ValueError when the data has no such inputs, or when a scene's real objects do not
    come first (a cut after the count would then drop real objects)."""
    source = examples.scenes if mask in examples.scenes else examples.inputs
    if mask not in source or objects not in source:
        raise ObjectBucketsError(f"{FEED} needs data with {objects!r} and {mask!r} inputs (state descriptions); "
                                 f"this data has {examples.input_names}.")
    valid = np.asarray(source[mask]).astype(bool)  # (S or N, n)
    if valid.ndim != 2:
        raise ObjectBucketsError(f"{FEED}: {mask!r} must be (rows, objects), got shape {valid.shape}.")
    counts = valid.sum(axis=1)
    packed = np.arange(valid.shape[1])[None, :] < counts[:, None]
    if not np.array_equal(valid, packed):
        bad = int(np.flatnonzero(np.any(valid != packed, axis=1))[0])
        raise ObjectBucketsError(f"{FEED} needs each scene's real objects first and its padding after; row {bad} of "
                                 f"{mask!r} is {valid[bad].astype(int).tolist()}.")
    if source is examples.scenes:
        counts = counts[examples.scene_index]
    return counts.astype(np.int64)


class ObjectBuckets(EpochBatches):
    """Batches of up to `batch_size` questions whose scenes all have the same number of objects.

    Item i: `(inputs, answers)`, with `objects` `(B, c, d)` and `object_mask` `(B, c)` cut
    after the batch's object count c, and the token-id inputs named in `trim` cut after the
    batch's longest question (rounded up to a multiple of `trim_multiple`). With `shuffle`,
    epoch e's batches are drawn from a generator seeded by `(seed, e)`, counting from
    `start_epoch`; without, buckets come in increasing size, each in data order. Every example
    appears once per epoch. On TensorFlow feed `fit` with `tf_dataset()`.
    """

    SALT = 41

    def __init__(self, examples: Examples, batch_size, seed=0, shuffle=False, start_epoch=0, trim=(), trim_multiple=8,
                 objects=OBJECTS, mask=MASK):
        super().__init__(seed, shuffle, start_epoch)
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.examples, self.batch_size = examples, batch_size
        self.objects, self.mask = objects, mask
        self.trim, self.trim_multiple = tuple(trim), int(trim_multiple)
        self.counts = object_counts(examples, objects, mask)
        self.sizes = np.unique(self.counts)
        self.order_epoch()

    def order_epoch(self):
        rng = self.rng()
        batches = []
        for size in self.sizes:
            index = np.flatnonzero(self.counts == size)
            if rng is not None:
                index = rng.permutation(index)
            batches += [(int(size), index[k:k + self.batch_size]) for k in range(0, len(index), self.batch_size)]
        self.batches = [batches[k] for k in rng.permutation(len(batches))] if rng is not None else batches

    def __len__(self):
        return len(self.batches)

    def mean_pairs(self):
        """The average number of object pairs per question the buckets compute (all `n * n` pairs
        of the padded scenes without them)."""
        return float(np.mean(self.counts.astype(np.float64) ** 2))

    def __getitem__(self, i):
        self._check_index(i)
        size, index = self.batches[i]
        x = self.examples.batch(index)
        x[self.objects] = x[self.objects][:, :size]  # (B, size, d)
        x[self.mask] = x[self.mask][:, :size]  # (B, size)
        for k in self.trim:
            x[k] = x[k][:, :trailing_length(x[k], multiple=self.trim_multiple)]
        return x, self.examples.answers[index]

    def tf_dataset(self):
        """Batches whose size, object count and trimmed inputs' length vary, as a `tf.data.Dataset`."""
        return super().tf_dataset({self.objects: (1,), self.mask: (1,), **{k: (1,) for k in self.trim}})

"""Training batches as `keras.utils.PyDataset`s: one base class that draws each epoch's order from
`(seed, epoch)`, so that a resumed run sees the batches the uninterrupted run would have seen.

    EpochBatches      the base: `epoch`, `rng()`, `order_epoch()`, `on_epoch_end`, `tf_dataset`
    ExampleBatches    `Examples` in batches of `batch_size` (the default feed under JAX)
    StreamBatches     a `Stream`'s fresh examples, batch i of epoch e drawn from `(seed, 99, e, i)`

The scene-grouped, object-count and device feeds (`scene_batches.py`, `object_buckets.py`,
`device_feed.py`) are `EpochBatches` too.
"""

import numpy as np

import keras

from relzoo.datasets.examples import trailing_length


class EpochBatches(keras.utils.PyDataset):
    """A PyDataset whose order is drawn anew for every epoch from `(seed, epoch, SALT)`.

    Subclasses set `SALT` (a number that keeps their draws apart), implement `order_epoch()`
    (called for the first epoch and after each `on_epoch_end`), `__len__` and `__getitem__`.
    `start_epoch`: the epoch a resumed run starts at.
    """

    SALT = 0

    def __init__(self, seed=0, shuffle=True, start_epoch=0, **kwargs):
        super().__init__(**kwargs)
        self.seed, self.shuffle, self.epoch = int(seed), bool(shuffle), int(start_epoch)

    def rng(self):
        """This epoch's generator (None without `shuffle`)."""
        return np.random.default_rng([self.seed, self.epoch, self.SALT]) if self.shuffle else None

    def order_epoch(self):
        raise NotImplementedError

    def on_epoch_end(self):
        self.epoch += 1
        self.order_epoch()

    def _check_index(self, i):
        if not 0 <= i < len(self):
            raise IndexError(f"{type(self).__name__}: batch {i} of {len(self)}.")

    def tf_dataset(self, variable=None):
        """A `tf.data.Dataset` of this epoch's batches, then the next epoch's at the next pass (`fit`
        iterates it once per epoch). `variable`: input name -> the axes besides the batch axis whose
        size changes from batch to batch, left unknown in the element spec (Keras's own PyDataset
        adapter fixes the shapes of the first batches, which such batches would not keep)."""
        import tensorflow as tf

        x, y = self[0]
        variable = variable or {}
        spec = {k: tf.TensorSpec((None,) + tuple(None if d in variable.get(k, ()) else n
                                                 for d, n in enumerate(v.shape[1:], start=1)),
                                 tf.as_dtype(v.dtype), name=k)
                for k, v in x.items()}
        passes = []

        def one_epoch():
            # every pass after the first begins the next epoch: `fit` stops after the known number of
            # steps and may never ask past the last batch, so the end of a pass is not a signal
            if passes:
                self.on_epoch_end()
            passes.append(None)
            for i in range(len(self)):
                yield self[i]

        signature = (spec, tf.TensorSpec((None,) + tuple(y.shape[1:]), tf.as_dtype(y.dtype)))
        ds = tf.data.Dataset.from_generator(one_epoch, output_signature=signature)
        # a known length: `fit` counts its steps and does not warn that the data "ran out" at each epoch's end
        return ds.apply(tf.data.experimental.assert_cardinality(len(self))).prefetch(2)


class ExampleBatches(EpochBatches):
    """`Examples` in batches of `batch_size` (the last may be smaller), shuffled per epoch.

    `trim`: token-id inputs cut after the batch's longest row, the length rounded up to a multiple
    of `trim_multiple` (so that a compiled step, e.g. JAX's, meets a few shapes, not one per length).
    """

    SALT = 23

    def __init__(self, examples, batch_size, seed=0, shuffle=False, start_epoch=0, trim=(), trim_multiple=8):
        super().__init__(seed, shuffle, start_epoch)
        self.examples, self.batch_size = examples, int(batch_size)
        self.trim, self.trim_multiple = tuple(trim), int(trim_multiple)
        self.order_epoch()

    def order_epoch(self):
        rng = self.rng()
        self.order = np.arange(len(self.examples)) if rng is None else rng.permutation(len(self.examples))

    def __len__(self):
        return -(-len(self.examples) // self.batch_size)

    def __getitem__(self, i):
        self._check_index(i)
        index = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        x = self.examples.batch(index)
        for k in self.trim:
            x[k] = x[k][:, :trailing_length(x[k], multiple=self.trim_multiple)]
        return x, self.examples.answers[index]


class StreamBatches(EpochBatches):
    """A `Stream`'s examples: `len(stream)` fresh ones an epoch, batch i of epoch e drawn by
    `stream.batch_at(e, i, batch_size)`."""

    def __init__(self, stream, batch_size, start_epoch=0):
        super().__init__(stream.seed, True, start_epoch)
        self.stream, self.batch_size = stream, int(batch_size)

    def order_epoch(self):
        pass  # each batch is drawn from its own (seed, epoch, index)

    def __len__(self):
        return -(-len(self.stream) // self.batch_size)

    def __getitem__(self, i):
        self._check_index(i)
        return self.stream.batch_at(self.epoch, i, self.batch_size)


__all__ = ["EpochBatches", "ExampleBatches", "StreamBatches"]

"""`Examples`: a split of a data set, as the trainer and the evaluation consume it.

Many relational data sets ask many questions about one scene (Sort-of-CLEVR: 30 per
image; CLEVR: about 10). Copying the scene into every example would multiply the
memory by that factor (Sort-of-CLEVR's training images, one per question as float32,
would take 20 GB). `Examples` keeps scene arrays once (`scenes`, e.g. uint8 images) and
per-example arrays (`inputs`, with `scene_index`), and gathers, casts and scales
scene arrays batch by batch: in `tf.data` for TensorFlow training, in numpy for JAX
(`training.batches`), evaluation and export.

`groups` labels each example for per-group accuracy (e.g. question type):
`{"type": (labels (N,), ("non-relational", ...))}`.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Examples:
    """One split. Model inputs per batch are `inputs` plus `scenes` gathered by `scene_index`.

    Attributes:
        inputs: name -> per-example array `(N, ...)` (model inputs).
        answers: `(N,)` int32 class ids.
        scenes: name -> per-scene array `(S, ...)`; gathered per example by `scene_index`.
        scene_index: `(N,)` int, the scene of each example (required with `scenes`).
        scale: name -> factor: a scene or input array of that name is cast to float32
            and multiplied by it (uint8 pixels -> [0, 1] with `1 / 255`).
        groups: group name -> `(labels (N,) int, label names)`, for per-group accuracy.
    """

    inputs: dict
    answers: np.ndarray
    scenes: dict = dataclasses.field(default_factory=dict)
    scene_index: np.ndarray | None = None
    scale: dict = dataclasses.field(default_factory=dict)
    groups: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.answers = np.asarray(self.answers, np.int32)
        n = len(self.answers)
        for name, array in self.inputs.items():
            if len(array) != n:
                raise ValueError(f"Examples: input {name!r} has {len(array)} rows, the answers {n}.")
        if self.scenes:
            if self.scene_index is None or len(self.scene_index) != n:
                raise ValueError("Examples: scenes need a scene_index with one entry per answer.")
            self.scene_index = np.asarray(self.scene_index, np.int32)
            num_scenes = min(len(a) for a in self.scenes.values())
            if n and (self.scene_index.min() < 0 or self.scene_index.max() >= num_scenes):
                raise ValueError(f"Examples: scene_index out of range for {num_scenes} scenes.")
        overlap = set(self.inputs) & set(self.scenes)
        if overlap:
            raise ValueError(f"Examples: {sorted(overlap)} are both per-example inputs and scene arrays.")
        for name, (labels, label_names) in self.groups.items():
            if len(labels) != n:
                raise ValueError(f"Examples: group {name!r} has {len(labels)} labels for {n} examples.")

    def __len__(self):
        return len(self.answers)

    @property
    def input_names(self):
        return sorted(set(self.inputs) | set(self.scenes))

    def finish(self, name, array):
        """A gathered array of input `name`, cast and scaled as the model takes it (see `scale`)."""
        if name in self.scale:
            return array.astype(np.float32) * np.float32(self.scale[name])
        return array

    def batch(self, index):
        """Model inputs for the examples `index` (a slice or an integer array), as numpy."""
        out = {k: self.finish(k, v[index]) for k, v in self.inputs.items()}
        if self.scenes:
            scene = self.scene_index[index]
            out.update({k: self.finish(k, v[scene]) for k, v in self.scenes.items()})
        return out

    def numpy_batches(self, batch_size):
        """Yields `(inputs, answers)` in order, `batch_size` at a time (the last may be smaller)."""
        for start in range(0, len(self), batch_size):
            sl = slice(start, start + batch_size)
            yield self.batch(sl), self.answers[sl]

    def subset(self, index):
        """The examples `index` (an integer array or slice), sharing the scene arrays."""
        return Examples(
            inputs={k: v[index] for k, v in self.inputs.items()},
            answers=self.answers[index],
            scenes=self.scenes,
            scene_index=None if self.scene_index is None else self.scene_index[index],
            scale=self.scale,
            groups={k: (np.asarray(labels)[index], names) for k, (labels, names) in self.groups.items()},
        )

    def save(self, path):
        """Writes the examples to one `.npz` file (atomically); `Examples.load` reads it back.

        Several processes may write the same path at once (the workers of a multi-worker run
        share a run directory): each writes its own temporary file and renames it into place,
        so a reader only ever sees a complete file.
        """
        import json
        import os
        import uuid
        from pathlib import Path

        arrays = {f"inputs/{k}": v for k, v in self.inputs.items()}
        arrays.update({f"scenes/{k}": v for k, v in self.scenes.items()})
        arrays.update({f"groups/{k}": np.asarray(labels) for k, (labels, _) in self.groups.items()})
        arrays["answers"] = self.answers
        if self.scene_index is not None:
            arrays["scene_index"] = self.scene_index
        meta = {"scale": self.scale, "group_names": {k: list(names) for k, (_, names) in self.groups.items()}}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        path = Path(path)
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial.npz")
        try:
            np.savez(tmp, **arrays)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return path

    @classmethod
    def load(cls, path):
        """The `Examples` saved by `save` at `path`."""
        import json

        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            part = {"inputs": {}, "scenes": {}, "groups": {}}
            for key in data.files:
                kind, _, name = key.partition("/")
                if kind in part:
                    part[kind][name] = data[key]
            groups = {k: (labels, tuple(meta["group_names"][k])) for k, labels in part["groups"].items()}
            return cls(inputs=part["inputs"], answers=data["answers"], scenes=part["scenes"],
                       scene_index=data["scene_index"] if "scene_index" in data.files else None,
                       scale=meta["scale"], groups=groups)

    def tf_dataset(self, batch_size, seed=0, shuffle=False, drop_remainder=False, trim=()):
        """A `tf.data.Dataset` of `(inputs, answers)` batches; scene arrays are gathered per batch.

        `trim`: names of `(N, T)` token-id inputs padded with 0 whose batches are cut after
        their last column holding a non-zero id (`trailing_length`): a model that masks id 0
        gives the same answers, and an LSTM over them runs only as many steps as the batch's
        longest question. The batches' second dimension then varies.
        """
        import tensorflow as tf

        per_example = dict(self.inputs)
        if self.scenes:
            per_example["__scene_index"] = self.scene_index
        ds = tf.data.Dataset.from_tensor_slices((per_example, self.answers))
        if shuffle:
            ds = ds.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        scenes = {k: tf.constant(v) for k, v in self.scenes.items()}
        scale = dict(self.scale)

        @tf.autograph.experimental.do_not_convert  # plain graph ops; AutoGraph only warned about the closure
        def finish(x, y):
            x = dict(x)
            index = x.pop("__scene_index", None)
            for k, v in scenes.items():
                x[k] = tf.gather(v, index)
            for k, factor in scale.items():
                if k in x:
                    x[k] = tf.cast(x[k], tf.float32) * factor
            for k in trim:
                used = tf.cast(tf.reduce_any(tf.not_equal(x[k], 0), axis=0), tf.int32)  # (T,)
                length = tf.maximum(1, tf.reduce_max(used * tf.range(1, tf.shape(used)[0] + 1)))
                x[k] = x[k][:, :length]
            return x, y

        return ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def trailing_length(ids, multiple=1):
    """Columns of the token ids `(B, T)` up to and including the last one holding a non-zero id,
    rounded up to a multiple of `multiple` (at least 1, at most T)."""
    used = np.flatnonzero(np.any(np.asarray(ids) != 0, axis=0))
    length = int(used[-1]) + 1 if used.size else 1
    return min(ids.shape[1], -(-length // multiple) * multiple)


@dataclasses.dataclass
class Stream:
    """A training split of fresh examples: `size` per epoch, new ones every epoch.

    Batch `i` of epoch `e` is drawn with `numpy.random.default_rng([seed, 99, e, i])`, so a
    resumed run sees exactly the batches the uninterrupted run would have seen.

    Attributes:
        sample: `sample(num_examples, rng) -> (inputs dict, answers)`.
        size: examples per epoch.
        seed: the stream's seed.
    """

    sample: object
    size: int
    seed: int = 0

    def __len__(self):
        return int(self.size)

    def batch_at(self, epoch, index, batch_size):
        rng = np.random.default_rng([int(self.seed), 99, int(epoch), int(index)])
        count = min(batch_size, len(self) - index * batch_size)
        inputs, answers = self.sample(count, rng)
        return inputs, np.asarray(answers, np.int32)

    def tf_dataset(self, *args, **kwargs):
        raise NotImplementedError(
            "A streamed training split feeds `fit` through training.batches.StreamBatches; the multi_worker "
            "custom loop needs a fixed split (set the dataset's train split to a fixed size)."
        )

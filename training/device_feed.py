"""Batches as an accelerator wants them (`train.feed = "device"`): fixed shapes, raw pixels, jitter on the device.

Under JAX (and XLA generally) every new input shape compiles a new training step, and a GPU
that trains the CLEVR pixel model at about 10,000 questions a second (benchmarks/RESULTS.md)
leaves the host little time per batch. The default feed suits a CPU: question batches cut
after their longest question (a few lengths, a compile each), a partial last batch, images
gathered and scaled to float32 on the host, and image jitter in numpy. With
`train.feed = "device"` the trainer instead:

- feeds batches of exactly `train.batch_size` questions, token ids at full length; an epoch
  is the `floor(N / batch_size)` batches of that epoch's permutation (seeded by
  `(seed, epoch)`, so a resumed run continues the sequence), so each epoch leaves out fewer
  than `batch_size` questions, different ones each epoch;
- sends scaled scene arrays (CLEVR's uint8 images) as they are stored (a quarter of the
  float32 bytes) and casts and scales them inside the compiled step (`CastScale`, float32:
  the same values as `Examples.batch`);
- applies `train.image_shift` / `train.image_rotation` there too (`ImageJitter`: the
  resampling of `training.augment.jitter_images`, in `keras.ops`, with draws from a Keras
  seed generator).

The model being published is not changed: the trainer fits a twin (`device_fed_model`)
that wraps it with those input layers and shares all its weights, and validates the model
itself. The twin is training-only and never saved in an artifact.
"""

import numpy as np

import keras
from keras import ops

from training.augment import jitter_sources
from training.batches import EpochBatches
from training.errors import RecipeError


class CastScale(keras.layers.Layer):
    """`x` cast to float32 and multiplied by `scale` (uint8 pixels -> [0, 1]), as `Examples.batch`
    does on the host. (Keras's `Rescaling` is a tf.data layer that needs TensorFlow installed.)

    Input: any numeric `(K, ...)`. Output: float32, the same shape.
    """

    def __init__(self, scale, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, x):
        return ops.cast(x, "float32") * np.float32(self.scale)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


class ImageJitter(keras.layers.Layer):
    """Training-time random shift and rotation of images, inside the model's step.

    Each image is moved by a whole-pixel shift `(dy, dx)`, each uniform in
    `[-max_shift, max_shift]`, then rotated about its centre by an angle uniform in
    `[-max_rotation, max_rotation]` radians: one bilinear resampling, 0 outside the image
    (`training.augment.apply_jitter` in `keras.ops`). At inference (`training=False`) the
    images pass unchanged.

    Input: float `(K, H, W, C)`. Output: float32 `(K, H, W, C)`.
    """

    def __init__(self, max_shift=0, max_rotation=0.0, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not isinstance(max_shift, (int, np.integer)) or isinstance(max_shift, bool) or max_shift < 0:
            raise ValueError(f"ImageJitter: max_shift must be an integer >= 0 (pixels), got {max_shift!r}.")
        if not np.isfinite(max_rotation) or max_rotation < 0:
            raise ValueError(f"ImageJitter: max_rotation must be a number >= 0 (radians), got {max_rotation!r}.")
        self.max_shift, self.max_rotation, self.seed = int(max_shift), float(max_rotation), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training or (self.max_shift == 0 and self.max_rotation == 0):
            return images
        k = ops.shape(images)[0]
        shift = ops.cast(keras.random.randint((k, 2), -self.max_shift, self.max_shift + 1,
                                              seed=self.seed_generator), "float32")
        angle = keras.random.uniform((k,), -self.max_rotation, self.max_rotation, seed=self.seed_generator)
        return jitter_images_ops(images, shift, ops.cast(angle, "float32"))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_shift": self.max_shift, "max_rotation": self.max_rotation,
                "seed": self.seed}


class MirrorLeftRight(keras.layers.Layer):
    """Training-time mirror of state-description scenes: left becomes right, and the question says so.

    Each example, with probability 1/2, is replaced by its mirror image: every object's ground
    coordinates `(x, y)` (the first two features, in any scale) are reflected across the line
    through the origin along the camera's "behind" direction, `p - 2 (p . r) r` with `r` the
    camera's unit "right" direction on the ground, and the question's "left" and "right" tokens
    are swapped. Every relation along "right" flips sign and those along "behind" stay (the two
    directions are perpendicular); attributes, counts and the padding (all-zero rows) are
    unchanged, so every answer stays true (`tests/test_device_feed.py` checks this with the
    CLEVR executor on generated scenes). At inference the inputs pass unchanged.

    Inputs: objects float `(B, K, D)` (D >= 2), question int `(B, T)`. Outputs: the same shapes.
    """

    def __init__(self, right_xy, left_id, right_id, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        r = np.asarray(right_xy, np.float64).reshape(-1)
        if r.shape != (2,) or not np.isclose(np.linalg.norm(r), 1.0):
            raise ValueError(f"MirrorLeftRight: right_xy must be a unit 2-vector, got {right_xy!r}.")
        self.right_xy, self.left_id, self.right_id, self.seed = [float(v) for v in r], int(left_id), int(right_id), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, objects, question, training=None):
        if not training:
            return objects, question
        flip = keras.random.uniform((ops.shape(question)[0],), seed=self.seed_generator) < 0.5
        r = ops.convert_to_tensor(np.asarray(self.right_xy, np.float32))
        objects = ops.cast(objects, "float32")
        xy = objects[..., :2]
        mirrored = xy - 2.0 * ops.sum(xy * r, axis=-1, keepdims=True) * r
        objects = ops.concatenate([ops.where(flip[:, None, None], mirrored, xy), objects[..., 2:]], axis=-1)
        question = ops.convert_to_tensor(question)
        swapped = ops.where(question == self.left_id, ops.cast(self.right_id, question.dtype),
                            ops.where(question == self.right_id, ops.cast(self.left_id, question.dtype), question))
        return objects, ops.where(flip[:, None], swapped, question)

    def compute_output_shape(self, objects_shape, question_shape):
        return objects_shape, question_shape

    def get_config(self):
        return {**super().get_config(), "right_xy": self.right_xy, "left_id": self.left_id,
                "right_id": self.right_id, "seed": self.seed}


def clevr_mirror(seed=None):
    """`MirrorLeftRight` for the CLEVR-format world's state descriptions and shipped vocabulary."""
    from relzoo.datasets.clevr import camera
    from relzoo.vocab import Vocabulary

    tokens = Vocabulary.shipped("clevr").tokens
    return MirrorLeftRight(camera.DIRECTIONS["right"][:2], tokens.index("left"), tokens.index("right"), seed=seed,
                           name="mirror_left_right")


def jitter_images_ops(images, shift, angle):
    """`training.augment.apply_jitter` in `keras.ops`: images `(K, H, W, C)`, shifts `(K, 2)`
    `(dy, dx)` and angles `(K,)` (float32 tensors) -> float32 `(K, H, W, C)`."""
    images = ops.cast(images, "float32")
    _, h, w, c = images.shape
    src_y, src_x = jitter_sources(h, w, shift, angle, xp=ops)
    y0, x0 = ops.floor(src_y), ops.floor(src_x)
    fy, fx = src_y - y0, src_x - x0
    flat = ops.reshape(images, (-1, h * w, c))
    out = None
    for dy, dx, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yi, xi = ops.cast(y0 + dy, "int32"), ops.cast(x0 + dx, "int32")
        inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        weight = ops.where(inside, weight, ops.zeros_like(weight))
        index = ops.reshape(ops.clip(yi, 0, h - 1) * w + ops.clip(xi, 0, w - 1), (-1, h * w, 1))
        taken = ops.take_along_axis(flat, ops.broadcast_to(index, (ops.shape(index)[0], h * w, c)), axis=1)
        term = ops.reshape(taken, (-1, h, w, c)) * weight[..., None]
        out = term if out is None else out + term
    return out


def device_fed_model(model, examples, max_shift=0, max_rotation=0.0, seed=None, mirror=None):
    """A twin of `model` that takes `examples`' scaled arrays raw and scales (and jitters) them itself.

    Args:
        model: a functional model with named (dict) inputs, e.g. `rn_clevr_pixels`.
        examples: the training `Examples`; each input named in its `scale` (uint8 images) becomes
            an input of the stored dtype, followed by `CastScale(scale)` (float32) and, for
            images `(H, W, C)` with a shift or rotation, `ImageJitter`.
        max_shift, max_rotation, seed: `ImageJitter`'s.
        mirror: a `MirrorLeftRight` applied to the `objects` and `question` inputs (state
            descriptions), or None.

    Returns:
        A `keras.Model` with the same input names as `model` and its output; it calls `model`, so
        training it trains `model`.

    Raises:
        ValueError: when `model`'s inputs are not a dict of `examples`' arrays, or a jitter is
            asked for and no scaled input is an image.
    """
    inputs = model.input
    if not isinstance(inputs, dict):
        raise RecipeError(f"train.feed = \"device\" needs a model with named (dict) inputs; {model.name} has "
                         f"{type(inputs).__name__}.")
    arrays = {**examples.inputs, **examples.scenes}
    missing = sorted(set(inputs) - set(arrays))
    if missing:
        raise RecipeError(f"train.feed = \"device\": the model's inputs {missing} are not in the data ({sorted(arrays)}).")
    new, fed, jittered = {}, {}, []
    for name, spec in inputs.items():
        if name in examples.scale:
            new[name] = keras.Input(tuple(spec.shape[1:]), dtype=str(arrays[name].dtype), name=name)
            x = CastScale(examples.scale[name], name=f"scale_{name}")(new[name])
            if (max_shift or max_rotation) and len(spec.shape) == 4:
                x = ImageJitter(max_shift, max_rotation, seed=seed, name=f"jitter_{name}")(x)
                jittered.append(name)
            fed[name] = x
        else:
            new[name] = keras.Input(tuple(spec.shape[1:]), dtype=spec.dtype, name=name)
            fed[name] = new[name]
    if (max_shift or max_rotation) and not jittered:
        raise RecipeError(f"train.image_shift / image_rotation: {model.name} has no scaled image input "
                         f"(inputs {sorted(inputs)}, scaled {sorted(examples.scale)}) to jitter.")
    if mirror is not None:
        if not {"objects", "question"} <= set(inputs):
            raise RecipeError(f"train.mirror_left_right mirrors state descriptions: {model.name} needs inputs 'objects' and "
                             f"'question' (it has {sorted(inputs)}).")
        fed["objects"], fed["question"] = mirror(fed["objects"], fed["question"])
    return keras.Model(new, model(fed), name=f"{model.name}_device_fed")


class DeviceBatches(EpochBatches):
    """Fixed-shape training batches for `device_fed_model`: `batch_size` examples each, raw arrays.

    Item i of epoch e: the examples `order[i * batch_size:(i + 1) * batch_size]` of a
    permutation seeded by `(seed, e)` (counting from `start_epoch`), as `(inputs, answers)`
    with every input at its stored dtype and full shape (no scaling, no cutting). There are
    `len(examples) // batch_size` batches an epoch.
    """

    SALT = 37

    def __init__(self, examples, batch_size, seed=0, start_epoch=0):
        super().__init__(seed, True, start_epoch)
        if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"DeviceBatches: batch_size must be a positive integer, got {batch_size!r}.")
        if len(examples) < batch_size:
            raise RecipeError(f"train.feed = \"device\": the training split has {len(examples)} examples, fewer than "
                             f"one batch of {batch_size}; lower train.batch_size.")
        self.examples, self.batch_size = examples, int(batch_size)
        self.order_epoch()

    def order_epoch(self):
        self.order = self.rng().permutation(len(self.examples))

    def __len__(self):
        return len(self.examples) // self.batch_size

    def __getitem__(self, i):
        self._check_index(i)
        index = np.sort(self.order[i * self.batch_size:(i + 1) * self.batch_size])
        ex = self.examples
        x = {k: v[index] for k, v in ex.inputs.items()}
        if ex.scenes:
            scene = ex.scene_index[index]
            x.update({k: v[scene] for k, v in ex.scenes.items()})
        return x, ex.answers[index]

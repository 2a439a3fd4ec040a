"""Scene-grouped training: every question of a batch's scenes, with the image encoder run once per scene.

A Relation Network's pixel model encodes the image of every question it sees. CLEVR asks
about 10 questions per scene and Sort-of-CLEVR 30, so a batch of questions drawn at random
encodes almost every image again for each of its questions. With `train.scenes_per_batch`
set, the trainer instead takes K scenes per batch, with all their questions, and trains a
twin of the model (`scene_grouped_model`) that runs the layers before the `PairwiseRelation`
on the K scene images and gives each question the objects of its own scene. The twin shares
every layer, and so every weight, with the model being trained.

What changes, and what does not:
- Each question's forward pass is the same function of the same weights: in inference
  mode the twin's answers equal the model's exactly (tested). Gradients are the same as for
  a batch of these questions with the images repeated, except through BatchNormalization,
  whose training-mode statistics are taken over the K distinct images instead of over one
  copy per question.
- A batch holds K scenes' questions (K x 10 on CLEVR), not `train.batch_size` questions;
  `batch_size` still sets the evaluation and BatchNormalization recalibration batches.
- Which scenes go together changes every epoch: the order is a permutation seeded by
  `(seed, epoch)`, so a resumed run sees the batches it would have seen uninterrupted.

On this project's 2-core CPU it gives `rn_clevr` (5 convs) 1.8x the questions per
CPU-second (`python -m benchmarks.clevr_batches`, `mixed_bfloat16`, 8 scenes a batch).
"""

import numpy as np

import keras

from relzoo.datasets.examples import Examples, trailing_length
from training.augment import jitter_images

SLOT = "scene_slot"  # the extra input: each question's row in the batch's scene arrays


class _TakeScenes(keras.layers.Layer):
    """`(objects (K, ...), slot (B,) int)` -> `objects[slot]` `(B, ...)`: each question's scene.

    Training only (inside `scene_grouped_model`); never saved in an artifact."""

    def call(self, objects, slot):
        return keras.ops.take(objects, slot, axis=0)


def _relation_layer(model):
    from relzoo.layers import PairwiseRelation

    found = [layer for layer in model.layers if isinstance(layer, PairwiseRelation)]
    if len(found) != 1:
        raise ValueError(f"train.scenes_per_batch needs a model with one PairwiseRelation layer; {model.name} has "
                         f"{len(found)}.")
    return found[0]


def scene_grouped_model(model, scene_names):
    """A twin of `model` that encodes each scene once and answers every question about it.

    Args:
        model: a functional model `{scene inputs, question inputs} -> logits` whose scene
            inputs reach the rest only through the first input of its one `PairwiseRelation`
            (the objects), e.g. `rn_pixels` and `rn_clevr_pixels`.
        scene_names: the names of the per-scene inputs (the keys of `Examples.scenes`, e.g.
            `("image",)`).

    Returns:
        A `keras.Model` with inputs: each scene input `(K, ...)` (K scenes), each other input
        `(B, ...)` (B questions) and `scene_slot` int32 `(B,)` (the row of each question's
        scene, 0 <= slot < K); output `(B, num_answers)`, as `model`'s. It calls `model`'s own
        layers: training it trains `model`.

    Raises:
        ValueError: when `model` does not have that structure (a state-description model,
            whose objects are an input, has nothing to share: train it with plain batches).
    """
    inputs = model.input
    if not isinstance(inputs, dict):
        raise ValueError(f"train.scenes_per_batch needs a model with named (dict) inputs; {model.name} has "
                         f"{type(inputs).__name__}.")
    scene_names = sorted(scene_names)
    missing = [n for n in scene_names if n not in inputs]
    if not scene_names or missing:
        raise ValueError(f"train.scenes_per_batch: the data's scene arrays {scene_names} must be inputs of "
                         f"{model.name} (inputs {sorted(inputs)}).")
    relation = _relation_layer(model)
    if len(relation._inbound_nodes) != 1:
        raise ValueError(f"train.scenes_per_batch: {relation.name} is called more than once in {model.name}.")
    node = relation._inbound_nodes[0]
    args = node.arguments.args
    if args and any(args[0] is inputs[n] for n in inputs):
        raise ValueError(f"train.scenes_per_batch: {model.name} takes its objects as an input (a state-description "
                         "model); there is no image encoder to share across questions.")
    if node.arguments.kwargs.get("mask") is not None or len(args) != 2:
        raise ValueError(f"train.scenes_per_batch supports PairwiseRelation(objects, question) without a mask; "
                         f"{model.name}'s relation is called differently.")
    objects, question = args
    per_question = [n for n in sorted(inputs) if n not in scene_names]
    try:
        encoder = keras.Model({n: inputs[n] for n in scene_names}, objects, name=f"{model.name}_scene_encoder")
        if any(question is inputs[n] for n in per_question):
            name = next(n for n in per_question if question is inputs[n])
            question_encoder = lambda x: x[name]  # noqa: E731  the question is an input as it is
        else:
            question_encoder = keras.Model({n: inputs[n] for n in per_question}, question,
                                           name=f"{model.name}_question_encoder")
    except ValueError as err:
        raise ValueError(f"train.scenes_per_batch: in {model.name} the objects must depend only on the scene "
                         f"inputs {scene_names} and the question only on {per_question} ({err}).") from err

    def fresh(name):
        spec = inputs[name]
        return keras.Input(tuple(spec.shape[1:]), dtype=spec.dtype, name=name)

    scene_in = {n: fresh(n) for n in scene_names}
    question_in = {n: fresh(n) for n in per_question}
    slot = keras.Input((), dtype="int32", name=SLOT)
    x = relation(_TakeScenes(name="take_scenes")(encoder(scene_in), slot), question_encoder(question_in))
    # the readout: the chain of layers from the relation's output to the model's output
    tensor, seen = relation.output, 0
    while tensor is not model.output:
        consumers = [layer for layer in model.layers
                     if any(len(n.input_tensors) == 1 and n.input_tensors[0] is tensor for n in layer._inbound_nodes)]
        if len(consumers) != 1 or seen > 100:
            raise ValueError(f"train.scenes_per_batch: {model.name} must go from its relation to its output through "
                             "a chain of single-input layers.")
        x, tensor, seen = consumers[0](x), consumers[0].output, seen + 1
    return keras.Model({**scene_in, **question_in, SLOT: slot}, x, name=f"{model.name}_scene_grouped")


def scene_groups(examples):
    """`(scene ids (S,), questions (S,) lists of example indices)` of `examples`' scenes
    that have at least one question."""
    if not examples.scenes:
        raise ValueError("train.scenes_per_batch needs data with scene arrays (Examples.scenes); this data set has "
                         "none: train it with plain batches (scenes_per_batch = 0).")
    order = np.argsort(examples.scene_index, kind="stable")
    ids, starts = np.unique(examples.scene_index[order], return_index=True)
    return ids, np.split(order, starts[1:])


class SceneBatches(keras.utils.PyDataset):
    """Batches of `scenes_per_batch` scenes with all their questions, for `scene_grouped_model`.

    Item i: `(inputs, answers)` with the scene arrays `(K, ...)`, the per-question inputs
    `(B, ...)`, `scene_slot` `(B,)` and answers `(B,)`, B the number of those scenes'
    questions. With `shuffle`, the scenes of epoch e come in the order of a permutation
    seeded by `(seed, e)`, counting from `start_epoch` (a resumed run continues the sequence);
    without, in data order. Every question appears once per epoch. `trim`: token-id inputs
    cut after the batch's longest row, rounded up to a multiple of `trim_multiple` (see
    `Examples.tf_dataset`). `image_shift` / `image_rotation`: the scene images (`(K, H, W, C)`
    scene arrays) are jittered by `training.augment.jitter_images`, with draws seeded by
    `(seed, epoch, i)`, so a resumed run sees the images it would have seen. On TensorFlow,
    feed `fit` with `tf_dataset()`: the batches' sizes vary, which Keras's own PyDataset
    adapter, inferring shapes from the first batches, does not allow.
    """

    def __init__(self, examples: Examples, scenes_per_batch, seed=0, shuffle=False, start_epoch=0, trim=(),
                 trim_multiple=8, image_shift=0, image_rotation=0.0):
        super().__init__()
        if not isinstance(scenes_per_batch, int) or scenes_per_batch <= 0:
            raise ValueError(f"scenes_per_batch must be a positive integer, got {scenes_per_batch!r}.")
        self.examples = examples
        self.trim, self.trim_multiple = tuple(trim), int(trim_multiple)
        self.scenes_per_batch = scenes_per_batch
        self.image_shift, self.image_rotation = image_shift, float(image_rotation)
        self.seed, self.shuffle, self.epoch = int(seed), shuffle, int(start_epoch)
        self.scene_ids, self.questions = scene_groups(examples)
        self._order()

    def _order(self):
        count = len(self.scene_ids)
        self.order = (np.random.default_rng([self.seed, self.epoch, 29]).permutation(count) if self.shuffle
                      else np.arange(count))

    def __len__(self):
        return -(-len(self.scene_ids) // self.scenes_per_batch)

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError(f"SceneBatches: batch {i} of {len(self)}.")
        groups = self.order[i * self.scenes_per_batch:(i + 1) * self.scenes_per_batch]
        index = np.concatenate([self.questions[g] for g in groups])
        slot = np.repeat(np.arange(len(groups), dtype=np.int32), [len(self.questions[g]) for g in groups])
        ex = self.examples
        x = {k: ex._finish(k, v[index]) for k, v in ex.inputs.items()}
        x.update({k: ex._finish(k, v[self.scene_ids[groups]]) for k, v in ex.scenes.items()})
        if self.image_shift or self.image_rotation:
            rng = np.random.default_rng([self.seed, self.epoch, i, 31])
            for k in sorted(ex.scenes):
                if x[k].ndim == 4:
                    x[k] = jitter_images(x[k], rng, self.image_shift, self.image_rotation)
        x[SLOT] = slot
        for k in self.trim:
            x[k] = x[k][:, :trailing_length(x[k], multiple=self.trim_multiple)]
        return x, ex.answers[index]

    def on_epoch_end(self):
        self.epoch += 1
        self._order()

    def tf_dataset(self):
        """A `tf.data.Dataset` of this epoch's batches, then the next epoch's at the next iteration
        (each pass over it is one epoch and reshuffles for the next, as `fit` iterates per epoch).
        The batch dimension and the trimmed inputs' second dimension are left unknown."""
        from training.epoch_data import epoch_tf_dataset

        return epoch_tf_dataset(self, {k: (1,) for k in self.trim})

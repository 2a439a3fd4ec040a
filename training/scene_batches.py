"""Scene-grouped training: every question of a batch's scenes, with the image encoder run once per scene.

A Relation Network's pixel model encodes the image of every question it sees. CLEVR asks
about 10 questions per scene and Sort-of-CLEVR 30, so a batch of questions drawn at random
encodes almost every image again for each of its questions. With `train.feed = "scenes"`
the trainer instead takes K scenes per batch, with all their questions, and trains a
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
from training.batches import EpochBatches
from training.cell_loss import CELL_TARGETS, CLEVR_READOUT, CellLoss, GradientScale, cell_head, cells_output
from training.errors import RecipeError

SLOT = "scene_slot"  # the extra input: each question's row in the batch's scene arrays


class _TakeScenes(keras.layers.Layer):
    """`(objects (K, ...), slot (B,) int)` -> `objects[slot]` `(B, ...)`: each question's scene.

    Training only (inside `scene_grouped_model`); never saved in an artifact."""

    def call(self, objects, slot):
        return keras.ops.take(objects, slot, axis=0)


def relation_layer(model):
    from relzoo.layers import PairwiseRelation

    found = [layer for layer in model.layers if isinstance(layer, PairwiseRelation)]
    if len(found) != 1:
        raise RecipeError(f"train.feed = \"scenes\" needs a model with one PairwiseRelation layer; {model.name} has "
                         f"{len(found)}.")
    return found[0]


def _scene_and_question_inputs(model, scene_names):
    """`(scene names, question names)` of `model`'s dict inputs, checked against the data's scene arrays."""
    inputs = model.input
    if not isinstance(inputs, dict):
        raise RecipeError(f"train.feed = \"scenes\" needs a model with named (dict) inputs; {model.name} has "
                         f"{type(inputs).__name__}.")
    scene_names = sorted(scene_names)
    missing = [n for n in scene_names if n not in inputs]
    if not scene_names or missing:
        raise RecipeError(f"train.feed = \"scenes\": the data's scene arrays {scene_names} must be inputs of "
                         f"{model.name} (inputs {sorted(inputs)}).")
    return scene_names, [n for n in sorted(inputs) if n not in scene_names]


def _split(model, relation, scene_names, per_question, extra):
    """`(scene encoder, question encoder, readout)`: the parts of `model` before its relation's
    inputs (the encoder gives a dict: `objects`, `mask` when the relation takes one, and the
    `extra` tensors) and after its output, as models over the same layers."""
    inputs = model.input
    given = list(relation.input) if isinstance(relation.input, (list, tuple)) else [relation.input]
    objects, question, mask = (given + [None, None])[:3]
    if question is None or any(objects is inputs[n] for n in inputs):
        raise RecipeError(f"train.feed = \"scenes\": {model.name} takes its objects as an input (a state-description "
                         "model) or calls its relation without a question; there is no image encoder to share.")
    try:
        per_scene = {"objects": objects, **({"mask": mask} if mask is not None else {}), **extra}
        encoder = keras.Model({n: inputs[n] for n in scene_names}, per_scene, name=f"{model.name}_scene_encoder")
        if any(question is inputs[n] for n in per_question):
            name = next(n for n in per_question if question is inputs[n])
            question_encoder = lambda x: x[name]  # noqa: E731  the question is an input as it is
        else:
            question_encoder = keras.Model({n: inputs[n] for n in per_question}, question,
                                           name=f"{model.name}_question_encoder")
        readout = keras.Model(relation.output, model.output, name=f"{model.name}_readout")
    except ValueError as err:
        raise RecipeError(f"train.feed = \"scenes\": in {model.name} the objects must depend only on the scene "
                         f"inputs {scene_names}, the question only on {per_question}, and the output only on the "
                         f"relation ({err}).") from err
    return encoder, question_encoder, readout


def scene_grouped_model(model, scene_names, cell_loss=0.0, cell_readout=CLEVR_READOUT, cell_loss_grad=1.0):
    """A twin of `model` that encodes each scene once and answers every question about it.

    Args:
        model: a functional model `{scene inputs, question inputs} -> logits` whose scene
            inputs reach the rest only through the first input of its one `PairwiseRelation`
            (the objects), e.g. `rn_pixels` and `rn_clevr_pixels`.
        scene_names: the names of the per-scene inputs (the keys of `Examples.scenes`, e.g.
            `("image",)`).
        cell_loss: > 0: the weight of `training.cell_loss.CellLoss` on the output of `model`'s
            `cells` layer, or without one of a training-only `Dense` head (`cell_readout`) on the
            objects the relation sees, against an extra input `cell_targets` `(K, cells, width)`.
        cell_readout: what each cell predicts (`training.cell_loss.Readout`; CLEVR's by default).
        cell_loss_grad: the fraction of the per-cell loss's gradient that reaches `model` (0: with
            a head, only the head learns from it; `training.cell_loss.GradientScale`).

    Returns:
        A `keras.Model` with inputs: each scene input `(K, ...)` (K scenes), each other input
        `(B, ...)` (B questions) and `scene_slot` int32 `(B,)` (the row of each question's
        scene, 0 <= slot < K); output `(B, num_answers)`, as `model`'s. It calls `model`'s own
        layers (and, with a `cell_readout` head, that head's too): training it trains `model`.

    Raises:
        ValueError: when `model` does not have that structure (a state-description model,
            whose objects are an input, has nothing to share: train it with plain batches).
    """
    scene_names, per_question = _scene_and_question_inputs(model, scene_names)
    relation = relation_layer(model)
    cells = cells_output(model, cell_readout) if cell_loss else None
    extra = {"cells": cells} if cells is not None else {}
    encoder, question_encoder, readout = _split(model, relation, scene_names, per_question, extra)

    def fresh(name):
        spec = model.input[name]
        return keras.Input(tuple(spec.shape[1:]), dtype=spec.dtype, name=name)

    scene_in = {n: fresh(n) for n in scene_names}
    question_in = {n: fresh(n) for n in per_question}
    slot = keras.Input((), dtype="int32", name=SLOT)
    encoded = encoder(scene_in)
    take = _TakeScenes(name="take_scenes")
    objects = take(encoded["objects"], slot)  # (B, n, d): each question's scene
    mask = take(encoded["mask"], slot) if "mask" in encoded else None  # (B, n)
    x = readout(relation(objects, question_encoder(question_in), mask=mask))
    if cell_loss:
        scale = GradientScale(cell_loss_grad, name="cell_loss_grad")
        if "cells" in encoded:
            cells = scale(encoded["cells"])  # (K, n, w)
        else:
            cells = cell_head(cell_readout)(scale(encoded["objects"]))  # (K, n, d) -> (K, n, w)
        targets = keras.Input(tuple(cells.shape[1:]), name=CELL_TARGETS)
        x = CellLoss(cell_loss, cell_readout, name="cell_loss")(cells, targets, x)
        scene_in[CELL_TARGETS] = targets
    return keras.Model({**scene_in, **question_in, SLOT: slot}, x, name=f"{model.name}_scene_grouped")


def scene_groups(examples):
    """`(scene ids (S,), questions (S,) lists of example indices)` of `examples`' scenes
    that have at least one question."""
    if not examples.scenes:
        raise RecipeError("train.feed = \"scenes\" needs data with scene arrays (Examples.scenes); this data set has "
                         "none: train it with plain batches (train.feed = \"examples\").")
    order = np.argsort(examples.scene_index, kind="stable")
    ids, starts = np.unique(examples.scene_index[order], return_index=True)
    return ids, np.split(order, starts[1:])


class ScenesInBatches(EpochBatches):
    """The scenes of `examples` that have questions, `scenes_per_batch` a batch, each once an epoch:
    the order that `SceneBatches` and `training.cell_feed.CellBatches` share. With `shuffle`, epoch e's
    order is a permutation drawn from `(seed, e)`, counting from `start_epoch`; without, data order."""

    def __init__(self, examples: Examples, scenes_per_batch, seed=0, shuffle=False, start_epoch=0):
        super().__init__(seed, shuffle, start_epoch)
        if not isinstance(scenes_per_batch, int) or scenes_per_batch <= 0:
            raise ValueError(f"scenes_per_batch must be a positive integer, got {scenes_per_batch!r}.")
        self.examples, self.scenes_per_batch = examples, scenes_per_batch
        self.scene_ids, self.questions = scene_groups(examples)
        self.order_epoch()

    def order_epoch(self):
        rng = self.rng()
        count = len(self.scene_ids)
        self.order = np.arange(count) if rng is None else rng.permutation(count)

    def __len__(self):
        return -(-len(self.scene_ids) // self.scenes_per_batch)

    def groups(self, i):
        """Batch i's scenes, as positions in `scene_ids` / `questions`."""
        self._check_index(i)
        return self.order[i * self.scenes_per_batch:(i + 1) * self.scenes_per_batch]


class SceneBatches(ScenesInBatches):
    """Batches of `scenes_per_batch` scenes with all their questions, for `scene_grouped_model`.

    Item i: `(inputs, answers)` with the scene arrays `(K, ...)`, the per-question inputs
    `(B, ...)`, `scene_slot` `(B,)` and answers `(B,)`, B the number of those scenes'
    questions. With `shuffle`, the scenes of epoch e come in the order of a permutation
    seeded by `(seed, e)`, counting from `start_epoch` (a resumed run continues the sequence);
    without, in data order. Every question appears once per epoch. `trim`: token-id inputs
    cut after the batch's longest row, rounded up to a multiple of `trim_multiple` (see
    `Examples.tf_dataset`). `image_shift` / `image_rotation`: the scene images (`(K, H, W, C)`
    scene arrays) are jittered by `training.augment.jitter_images`, with draws seeded by
    `(seed, epoch, i)`, so a resumed run sees the images it would have seen. `cell_targets`: a
    function of scene ids that gives their `cell_targets` input (`training.cell_loss`). On TensorFlow,
    feed `fit` with `tf_dataset()`: the batches' sizes vary, which Keras's own PyDataset
    adapter, inferring shapes from the first batches, does not allow.
    """

    SALT = 29

    def __init__(self, examples: Examples, scenes_per_batch, seed=0, shuffle=False, start_epoch=0, trim=(),
                 trim_multiple=8, image_shift=0, image_rotation=0.0, cell_targets=None):
        super().__init__(examples, scenes_per_batch, seed, shuffle, start_epoch)
        self.trim, self.trim_multiple = tuple(trim), int(trim_multiple)
        self.image_shift, self.image_rotation = image_shift, float(image_rotation)
        self.cell_targets = cell_targets

    def __getitem__(self, i):
        groups = self.groups(i)
        index = np.concatenate([self.questions[g] for g in groups])
        slot = np.repeat(np.arange(len(groups), dtype=np.int32), [len(self.questions[g]) for g in groups])
        ex = self.examples
        x = {k: ex.finish(k, v[index]) for k, v in ex.inputs.items()}
        x.update({k: ex.finish(k, v[self.scene_ids[groups]]) for k, v in ex.scenes.items()})
        if self.image_shift or self.image_rotation:
            rng = np.random.default_rng([self.seed, self.epoch, i, 31])
            for k in sorted(ex.scenes):
                if x[k].ndim == 4:
                    x[k] = jitter_images(x[k], rng, self.image_shift, self.image_rotation)
        x[SLOT] = slot
        if self.cell_targets is not None:
            x[CELL_TARGETS] = self.cell_targets(self.scene_ids[groups])
        for k in self.trim:
            x[k] = x[k][:, :trailing_length(x[k], multiple=self.trim_multiple)]
        return x, ex.answers[index]

    def tf_dataset(self):
        """Batches whose size and trimmed inputs' length vary, as a `tf.data.Dataset` (`EpochBatches`)."""
        return super().tf_dataset({k: (1,) for k in self.trim})

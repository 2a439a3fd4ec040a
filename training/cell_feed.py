"""`train.feed = "cells"`: pre-train a pixel model's image stem on the training scenes' annotations alone.

The relation module costs almost all of a pixel RN's step (every pair, for every question); the stem
that makes the objects costs little. This feed trains only the stem, with the per-cell loss of
`training.cell_loss` and no answers: `cell_model` is a twin from the image to the `cells` layer (or,
without one, to a training-only head on the relation's objects), and `CellBatches` gives each epoch
the training scenes (each once) with their cell targets. The rest of the model keeps the weights it
has (from `train.init_from`), and each epoch ends, as with every twin, with the whole model's
validation accuracy on the answers (`training.callbacks.ValidateModel`).
"""

import numpy as np

import keras

from training.cell_loss import CLEVR_READOUT, cell_head, cell_loss, cells_output
from training.errors import RecipeError
from training.scene_batches import ScenesInBatches, relation_layer


class CellBatches(ScenesInBatches):
    """The scenes of `examples` that have questions, `scenes_per_batch` a batch, with their targets.

    Item i: `({scene input: (K, ...)}, targets (K, cells, width))`; `targets` is a function of scene
    ids (`training.cell_loss.scene_cell_targets`). With `shuffle`, epoch e's order is drawn from
    `(seed, e)`, counting from `start_epoch`."""

    SALT = 37

    def __init__(self, examples, scenes_per_batch, targets, seed=0, shuffle=False, start_epoch=0):
        super().__init__(examples, scenes_per_batch, seed, shuffle, start_epoch)
        self.targets = targets

    def __getitem__(self, i):
        ids = self.scene_ids[self.groups(i)]
        ex = self.examples
        return {k: ex.finish(k, v[ids]) for k, v in ex.scenes.items()}, np.asarray(self.targets(ids), "float32")


def cell_model(model, scene_names, readout=CLEVR_READOUT):
    """A twin of `model` from its scene inputs to its per-cell logits `(K, cells, readout.width)`: its
    `cells` layer, or a training-only `Dense` head (`cell_readout`) on the objects its relation sees."""
    cells = cells_output(model, readout)
    if cells is None:
        cells = cell_head(readout)(relation_layer(model).input[0])  # (K, n, d) -> (K, n, width)
    missing = [n for n in scene_names if n not in model.input]
    if missing:
        raise RecipeError(f"train.feed = \"cells\": {model.name} has no input {missing[0]!r}.")
    try:
        return keras.Model({n: model.input[n] for n in scene_names}, cells, name=f"{model.name}_cells")
    except ValueError as err:
        raise RecipeError(f"train.feed = \"cells\" trains a stem whose objects depend on the scene inputs "
                          f"{list(scene_names)} alone; in {model.name} they do not ({err}).") from err


class CellLossFn(keras.losses.Loss):
    """`training.cell_loss.cell_loss` as a Keras loss: targets `(K, cells, width)`, logits the same."""

    def __init__(self, readout=CLEVR_READOUT, name="cell_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.readout = readout

    def call(self, y_true, y_pred):
        return cell_loss(y_true, y_pred, self.readout)

"""`train.cell_loss`: teach each image cell what it holds, from the training scenes' annotations.

A model with a `cells` layer (`relzoo.models.rn.build_rn_clevr_detect`) gives every cell of its
image map an objectness logit, the 3D position and the attribute logits of an object. Beside the
answers, the scene-grouped twin (`training/scene_batches.py`) then takes, for each scene of the
batch, the per-cell targets of `relzoo.datasets.clevr.cells` (`[present, state row]`: the object
whose centre lies in the cell) and adds

    weight * mean over scenes of [ sum over cells of BCE(present, objectness) / objects
                                   + sum over the object's cells of (POSITION_WEIGHT * squared error of
                                     the position + cross-entropy of each attribute) / objects ]

to the loss (both sums divided by the scene's number of objects, so that a scene's few object
cells are not drowned by its many empty ones). Only the training scenes' annotations are used: what a user of real CLEVR has too.
"""

import os
from pathlib import Path

import numpy as np

import keras
from keras import ops

from relzoo.models.rn import CLEVR_GROUPS, CLEVR_VALUES

CELL_TARGETS = "cell_targets"  # the twin's extra input
POSITION_WEIGHT = 10.0  # positions are in state units (coordinates / 3): errors of a few hundredths matter
VALUES, GROUPS = CLEVR_VALUES, CLEVR_GROUPS  # x, y, z; colour, shape, material, size: the builder's readout


def cells_output(model):
    """The output of `model`'s `cells` layer, `(batch, cells, 1 + 3 + 15)`; a clear error without one."""
    try:
        layer = model.get_layer("cells")
    except ValueError:
        raise ValueError(f"train.cell_loss needs a model with a `cells` layer (builder rn_clevr_detect); "
                         f"{model.name} has none.") from None
    width = 1 + VALUES + sum(GROUPS)
    if len(layer.output.shape) != 3 or layer.output.shape[-1] != width:
        raise ValueError(f"train.cell_loss: the `cells` layer of {model.name} gives {tuple(layer.output.shape)}; "
                         f"expected (batch, cells, {width}).")
    return layer.output


def cell_loss(targets, logits):
    """Per-scene loss `(K,)` of the cell logits `(K, n, 19)` against the targets `(K, n, 19)`."""
    targets, logits = ops.cast(targets, "float32"), ops.cast(logits, "float32")
    present = targets[..., 0]  # (K, n)
    objects = ops.maximum(ops.sum(present, axis=-1), 1.0)  # (K,)
    found = ops.sum(ops.binary_crossentropy(present, logits[..., 0], from_logits=True), axis=-1)  # (K,)
    per_cell = POSITION_WEIGHT * ops.sum(ops.square(targets[..., 1:1 + VALUES] - logits[..., 1:1 + VALUES]), -1)
    start = 1 + VALUES
    for size in GROUPS:
        per_cell = per_cell + ops.categorical_crossentropy(targets[..., start:start + size],
                                                           logits[..., start:start + size], from_logits=True)
        start += size
    return (found + ops.sum(per_cell * present, axis=-1)) / objects


class CellLoss(keras.layers.Layer):
    """Adds `weight * mean(cell_loss)` to the model's losses and passes `answers` through.

    Training only (inside the scene-grouped twin); never saved in an artifact."""

    def __init__(self, weight, **kwargs):
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, cells, targets, answers):
        self.add_loss(self.weight * ops.mean(cell_loss(targets, cells)))
        return answers

    def compute_output_spec(self, cells, targets, answers):
        return keras.KerasTensor(answers.shape, dtype=answers.dtype)


def _annotations(module, spec, split, num_scenes, grid):
    """`(index (S, grid, grid) int8, states (S, n, 18) float32)` of the split's scenes."""
    from relzoo.datasets.clevr import cells, features

    if not hasattr(module, "split_scenes"):
        raise ValueError(f"train.cell_loss needs the scenes' annotations; the data set {spec['name']!r} does not "
                         "give them (no split_scenes).")
    scenes = module.split_scenes(spec, split)
    if len(scenes) != num_scenes:
        raise ValueError(f"train.cell_loss: the {split} split has {num_scenes} scene arrays but {len(scenes)} "
                         "annotated scenes.")
    index, hidden = cells.cell_objects(scenes, grid)
    if hidden:
        print(f"train: cell_loss: {hidden} objects share a {grid}x{grid} cell with a nearer one and are not "
              "taught.", flush=True)
    return index, np.stack([features.scene_state(s)[0] for s in scenes])


def scene_cell_targets(module, spec, split, num_scenes, grid, cache=None):
    """A function of scene ids that gives their targets `(K, grid * grid, 19)` float32, from the
    scenes the data set module reports for the split (`module.split_scenes(spec, split)`).

    `cache`: an `.npz` path where the annotations are kept once made (scenes of the generated world
    take minutes to place again); name it after the split's data fingerprint and the grid."""
    if cache is not None and Path(cache).is_file():
        with np.load(cache) as kept:
            index, states = kept["index"], kept["states"]
    else:
        index, states = _annotations(module, spec, split, num_scenes, grid)
        if cache is not None:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(cache).with_name(Path(cache).name + ".partial.npz")
            np.savez(tmp, index=index, states=states)
            os.replace(tmp, cache)
    if len(index) != num_scenes or index.shape[1:] != (grid, grid):
        raise ValueError(f"train.cell_loss: annotations of {index.shape} for {num_scenes} scenes on a {grid}x{grid} "
                         f"grid ({cache}); delete that file to make them again.")

    from relzoo.datasets.clevr.cells import cell_targets

    def targets(ids):
        return cell_targets(index[ids], states[ids]).reshape(len(ids), grid * grid, -1)

    return targets

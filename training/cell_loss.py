"""`train.cell_loss`: teach each image cell what it holds, from the training scenes' annotations.

Every cell of a pixel model's object grid predicts, per slot, a presence logit, a few values (a
position) and the logits of some one-hot groups (attributes): the `Readout`. Two sources:

- CLEVR (one slot: 3D position; colour, shape, material, size): the object whose centre lies in the
  cell (`relzoo.datasets.clevr.cells`, from the scenes `split_scenes` gives). A model with a `cells`
  layer (`relzoo.models.rn.build_rn_clevr_detect`) predicts them itself.
- a data set module with `CELL_READOUT` and `cell_annotations(spec, split, grid)` (Sort-of-CLEVR:
  one slot per colour, each with the centre's offset in the cell and the shape).

A model without a `cells` layer (`rn_pixels`, `rn_clevr_pixels`) gets, in the scene-grouped twin
only (`training/scene_batches.py`), a `Dense` head `cell_readout` on the objects its relation sees:
the loss then shapes those objects, and the published model is unchanged. The loss added is

    weight * mean over scenes of [ sum over cells and slots of BCE(present, presence logit)
                                   + sum over present slots of (POSITION_WEIGHT * squared error of
                                     the values + cross-entropy of each group) ] / objects

(divided by the scene's number of objects, so that a scene's few object cells are not drowned by its
many empty ones). Only the training scenes' annotations are used: what a user of real CLEVR has too.
"""

import dataclasses
import os
from pathlib import Path

import numpy as np

import keras
from keras import ops

from relzoo.models.rn import CLEVR_GROUPS, CLEVR_VALUES

CELL_TARGETS = "cell_targets"  # the twin's extra input
HEAD = "cell_readout"  # the twin's head, for a model without a `cells` layer
POSITION_WEIGHT = 10.0  # positions are in state units (coordinates / 3): errors of a few hundredths matter


@dataclasses.dataclass(frozen=True)
class Readout:
    """What each cell predicts: `slots` x `[presence, values..., group logits...]`."""

    slots: int = 1
    values: int = CLEVR_VALUES
    groups: tuple = CLEVR_GROUPS

    def __post_init__(self):
        object.__setattr__(self, "groups", tuple(self.groups))  # a list from a config or a module reads the same

    @property
    def slot_width(self):
        return 1 + self.values + sum(self.groups)

    @property
    def width(self):
        return self.slots * self.slot_width


CLEVR_READOUT = Readout()  # x, y, z; colour, shape, material, size: rn_clevr_detect's `cells` layer


def readout_of(module):
    """The `Readout` of a data set module: its `CELL_READOUT`, else CLEVR's."""
    given = getattr(module, "CELL_READOUT", None)
    return CLEVR_READOUT if given is None else Readout(**given)


def cells_output(model, readout=CLEVR_READOUT):
    """The output of `model`'s `cells` layer, `(batch, cells, readout.width)`, or None without one."""
    try:
        layer = model.get_layer("cells")
    except ValueError:
        return None
    if len(layer.output.shape) != 3 or layer.output.shape[-1] != readout.width:
        raise ValueError(f"train.cell_loss: the `cells` layer of {model.name} gives {tuple(layer.output.shape)}; "
                         f"expected (batch, cells, {readout.width}) for the data's annotations.")
    return layer.output


def cell_head(readout):
    """The twin's training-only head on the relation's objects `(K, n, d)` -> `(K, n, readout.width)`."""
    return keras.layers.Dense(readout.width, dtype="float32", name=HEAD)


def cell_loss(targets, logits, readout=CLEVR_READOUT):
    """Per-scene loss `(K,)` of the cell logits `(K, n, width)` against the targets `(K, n, width)`."""
    targets, logits = ops.cast(targets, "float32"), ops.cast(logits, "float32")
    shape = (ops.shape(targets)[0], -1, readout.slot_width)
    targets, logits = ops.reshape(targets, shape), ops.reshape(logits, shape)  # (K, n * slots, slot_width)
    present = targets[..., 0]  # (K, n * slots)
    objects = ops.maximum(ops.sum(present, axis=-1), 1.0)  # (K,)
    found = ops.sum(ops.binary_crossentropy(present, logits[..., 0], from_logits=True), axis=-1)  # (K,)
    values = slice(1, 1 + readout.values)
    per_slot = POSITION_WEIGHT * ops.sum(ops.square(targets[..., values] - logits[..., values]), -1)
    start = 1 + readout.values
    for size in readout.groups:
        per_slot = per_slot + ops.categorical_crossentropy(targets[..., start:start + size],
                                                           logits[..., start:start + size], from_logits=True)
        start += size
    return (found + ops.sum(per_slot * present, axis=-1)) / objects


class GradientScale(keras.layers.Layer):
    """Identity forward; backward, `fraction` of the gradient (`train.cell_loss_grad`).

    Between the model and the per-cell loss it sets how hard that loss pulls the model, apart from how
    fast the head learns: 0 trains the head alone (a probe of what the objects carry), 1 is plain."""

    def __init__(self, fraction, **kwargs):
        super().__init__(**kwargs)
        self.fraction = float(fraction)

    def get_config(self):
        return {**super().get_config(), "fraction": self.fraction}

    def call(self, x):
        if self.fraction == 1.0:
            return x
        held = ops.stop_gradient(x)
        return held + self.fraction * (x - held)  # value x; gradient fraction * upstream


class CellLoss(keras.layers.Layer):
    """Adds `weight * mean(cell_loss)` to the model's losses and passes `answers` through.

    Training only (inside the scene-grouped twin); never saved in an artifact."""

    def __init__(self, weight, readout=CLEVR_READOUT, **kwargs):
        super().__init__(**kwargs)
        self.weight = float(weight)
        self.readout = readout if isinstance(readout, Readout) else Readout(**readout)

    def get_config(self):
        return {**super().get_config(), "weight": self.weight, "readout": dataclasses.asdict(self.readout)}

    def call(self, cells, targets, answers):
        self.add_loss(self.weight * ops.mean(cell_loss(targets, cells, self.readout)))
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
    """A function of scene ids that gives their targets `(K, grid * grid, width)` float32: from the
    data set module's `cell_annotations(spec, split, grid)` when it has one, else (CLEVR, width 19)
    from the scenes it reports for the split (`module.split_scenes(spec, split)`).

    `cache`: an `.npz` path where the annotations are kept once made (scenes of the generated world
    take minutes to place again); name it after the split's data fingerprint and the grid."""
    if hasattr(module, "cell_annotations"):  # made again in moments: no cache
        made = np.asarray(module.cell_annotations(spec, split, grid), np.float32)
        if len(made) != num_scenes:
            raise ValueError(f"train.cell_loss: the {split} split has {num_scenes} scene arrays but {len(made)} "
                             "annotated scenes.")
        return lambda ids: made[ids]
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

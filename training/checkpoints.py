"""The resumable checkpoint: one weights file that carries its epoch count, replaced atomically.

A run killed at any moment leaves either the old checkpoint or the new one, each whole and
agreeing with its epoch; the same command then resumes with `fit(initial_epoch=done)`.
`EpochCheckpoint` is the callback that restores it when training begins and writes it after
every epoch (never after a NaN loss); it uses public Keras APIs only.
"""

import json
import os
from pathlib import Path

import keras

from training.errors import CheckpointError

CHECKPOINT_WEIGHTS = "latest.weights.h5"
CHECKPOINT_META = "training_metadata.json"  # the epoch, for readers of checkpoints older than the stamp
CHECKPOINT_EPOCH_ATTR = "relzoo_completed_epochs"


def write_checkpoint(model, backup_dir, epoch):
    """Writes the checkpoint of a model that has completed `epoch` epochs.

    The weights (the optimizer's state included, as `save_weights` writes it for a compiled model)
    are written in full to a partial file, stamped with the epoch, synced, and renamed over the
    previous checkpoint in one step.
    """
    import h5py

    backup_dir = Path(backup_dir)
    backup_dir.mkdir(parents=True, exist_ok=True)
    partial = backup_dir / "partial.weights.h5"  # what a kill during the write leaves; never read
    model.save_weights(str(partial), overwrite=True)
    with h5py.File(partial, "a") as f:
        f.attrs[CHECKPOINT_EPOCH_ATTR] = int(epoch)
    with open(partial, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(partial, backup_dir / CHECKPOINT_WEIGHTS)
    meta = backup_dir / f"{CHECKPOINT_META}.partial"
    meta.write_text(json.dumps({"epoch": int(epoch), "batch": 0}))
    os.replace(meta, backup_dir / CHECKPOINT_META)


def completed_epochs(backup_dir):
    """Epochs completed according to a checkpoint folder (0 when none): the count stamped in the
    weights file, or for older checkpoints the metadata file beside them."""
    weights = Path(backup_dir) / CHECKPOINT_WEIGHTS
    if not weights.is_file():
        return 0
    import h5py

    try:
        with h5py.File(weights, "r") as f:
            stamped = f.attrs.get(CHECKPOINT_EPOCH_ATTR)
    except OSError:
        stamped = None  # unreadable: reported when the run tries to load it
    if stamped is not None:
        return int(stamped)
    try:
        return int(json.loads((Path(backup_dir) / CHECKPOINT_META).read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


class EpochCheckpoint(keras.callbacks.Callback):
    """Restores the checkpoint when training begins (the optimizer's state included) and writes one
    after every epoch, unless `guard` saw a non-finite loss."""

    def __init__(self, backup_dir, guard):
        super().__init__()
        self.backup_dir, self.guard = Path(backup_dir), guard

    def on_train_begin(self, logs=None):
        weights = self.backup_dir / CHECKPOINT_WEIGHTS
        if not weights.is_file():
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:  # its slots must exist to take the saved state
            optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(str(weights))
        except (OSError, ValueError) as err:
            raise CheckpointError(
                f"the checkpoint {weights} cannot be loaded into this run's model ({err}). It was not changed. "
                f"To continue the run, restore a good copy there; to start it over, run the same command with "
                f"--restart (or move the folder {self.backup_dir} away).") from err

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.bad is None:
            write_checkpoint(self.model, self.backup_dir, epoch + 1)

"""The callbacks of a `fit` run: NaN guard, epoch log, validation after BatchNormalization
recalibration, TensorBoard with the run's hyperparameters."""

import json
import math
import time
from pathlib import Path

import keras

from training import batch_norm
from training.run_folder import read_epoch_log


class NaNGuard(keras.callbacks.Callback):
    """Stops at the first non-finite training loss and remembers where (`bad`)."""

    def __init__(self):
        super().__init__()
        self.bad = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad = {"epoch": self.epoch + 1, "batch": batch + 1, "loss": float(loss)}
            self.model.stop_training = True


class EpochLog(keras.callbacks.Callback):
    """Each epoch's time and logs, kept in `epochs.json` across resumed invocations.

    Samples per second count the epochs that were not the first of an invocation (the first one
    includes graph building and compilation). Written before the checkpoint: a run killed between
    the two has logged an epoch the checkpoint lacks (dropped on resume, and that epoch runs
    again), never the reverse.
    """

    def __init__(self, samples_per_epoch, path, done):
        super().__init__()
        self.samples_per_epoch = samples_per_epoch
        self.path = Path(path)
        self.epochs = read_epoch_log(self.path)[:done]  # a crash may have logged an epoch the checkpoint lacks
        self.first = True

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({"epoch": epoch + 1, "seconds": round(time.perf_counter() - self._start, 2),
                            "first_in_invocation": self.first,
                            "logs": {k: float(v) for k, v in (logs or {}).items()}})
        self.first = False
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.epochs, indent=1))
        tmp.replace(self.path)

    def samples_per_s(self):
        steady = [e["seconds"] for e in self.epochs if not e["first_in_invocation"]]
        times = steady or [e["seconds"] for e in self.epochs]
        return self.samples_per_epoch * len(times) / sum(times) if times else None

    def train_time_s(self):
        return sum(e["seconds"] for e in self.epochs)


class ValidateModel(keras.callbacks.Callback):
    """At each epoch's end: recompute `target`'s BatchNormalization statistics (unless `batches` is 0),
    then validate `target`, so that `val_*`, the checkpoint and the logs reflect what the model does
    at inference. `target` is the model being fit, or the model whose layers a fitted twin shares."""

    def __init__(self, target, examples, batches, batch_size, seed, val_data):
        super().__init__()
        self.target, self.examples, self.batches, self.batch_size = target, examples, batches, batch_size
        self.seed, self.val_data = seed, val_data

    def on_epoch_end(self, epoch, logs=None):
        if self.batches:
            batch_norm.recalibrate(self.target, self.examples, self.batches, self.batch_size, self.seed + epoch)
        result = self.target.evaluate(self.val_data, verbose=0, return_dict=True)
        if logs is not None:
            logs.update({f"val_{k}": float(v) for k, v in result.items()})


def flat_hparams(recipe):
    """Scalar hyperparameters for TensorBoard's HParams plugin (lists as JSON strings)."""
    out = {"seed": recipe.seed, "dataset": recipe.dataset["name"], "builder": recipe.builder, "preset": recipe.preset.name}
    out.update({f"model.{k}": v for k, v in recipe.model.items()})
    out.update({f"train.{k}": v for k, v in recipe.train.to_dict().items()})
    return {k: (v if isinstance(v, (bool, int, float, str)) else json.dumps(v)) for k, v in out.items() if v is not None}


def write_hparams(log_dir, recipe):
    """The run's hyperparameters, at the root of the log folder (the plugin finds the session's
    metrics in train/ and validation/)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    with tf.summary.create_file_writer(str(Path(log_dir))).as_default():
        hp.hparams(flat_hparams(recipe), trial_id=recipe.name)

"""The relzoo trainer: every published artifact is produced by this program.

    python -m training.train RECIPE [dotted.path=value ...] [options]

    python -m training.train training/recipes/rn_nearest_object.toml
    python -m training.train training/recipes/rn_nearest_object.toml train.epochs=5 --strategy mirrored --cpu-devices 2
    TF_CONFIG=... python -m training.train RECIPE --strategy multi_worker     (on each worker)
    KERAS_BACKEND=jax python -m training.train RECIPE                         (no TensorFlow needed)

Strategies (TensorFlow backend): `default` and `mirrored` (one machine, several
devices) train with `model.fit`; `multi_worker` (several machines, `TF_CONFIG`)
uses a custom loop with `strategy.run`, since Keras 3's `fit` does not run under
`MultiWorkerMirroredStrategy`. On JAX only `default` exists, fed with numpy.

The run folder (`--run-dir`, default `runs/<name>`) holds:
  backup/           the resumable checkpoint: killed at any point, the same command
                    continues from the last completed epoch;
  logs/             TensorBoard: train/ and validation/ scalars, the learning rate,
                    and the run's hyperparameters (HParams plugin);
  data/             the generated splits (.npz, keyed by the data spec and the data set
                    code), reused when the run resumes; `--prepare-data` only fills it;
  artifact/         the trained model.keras and its card.json (or saved_models/<name>/
                    with --publish).
A NaN loss stops the run with a message; the last good checkpoint is kept.
Exit codes: 0 done, 2 bad recipe or arguments, 3 NaN loss, 4 unreadable checkpoint.
"""

import argparse
import contextlib
import hashlib
import json
import math
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from training.object_buckets import ObjectBucketsError  # noqa: E402  (no Keras import at module level)

ROOT = Path(__file__).resolve().parent.parent
EXIT_BAD_INPUT = 2
EXIT_NAN = 3
EXIT_BAD_CHECKPOINT = 4


class NaNLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class CheckpointError(RuntimeError):
    """The run folder's checkpoint cannot be read."""


# --------------------------------------------------------------------------- setup
def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train a relzoo model from a recipe (resumable; writes TensorBoard logs and a carded artifact).",
    )
    p.add_argument("recipe", help="a recipe file, e.g. training/recipes/rn_nearest_object.toml")
    p.add_argument("overrides", nargs="*", help="recipe overrides, dotted.path=value (value in TOML syntax)")
    p.add_argument("--strategy", choices=("default", "mirrored", "multi_worker"), help="overrides train.strategy")
    p.add_argument("--run-dir", help="checkpoints, logs and the artifact (default: runs/<name>)")
    p.add_argument("--publish", action="store_true",
                   help="write the artifact to saved_models/<name>/ (the recipe must match the zoo entry)")
    p.add_argument("--cpu-devices", type=int, default=0,
                   help="split the CPU into this many logical devices (to run `mirrored` without GPUs)")
    p.add_argument("--restart", action="store_true",
                   help="discard the run's checkpoint, logs and artifact and start over (its generated data is kept)")
    p.add_argument("--no-data-cache", action="store_true",
                   help="generate the data on every start instead of keeping it in RUN_DIR/data/")
    p.add_argument("--prepare-data", action="store_true",
                   help="only generate the recipe's data into RUN_DIR/data/ (the cache a later run reuses), then exit")
    p.add_argument("--renderer", choices=("numpy", "jax"), default="numpy",
                   help="what renders the training split's images (image data sets): numpy (the CPU renderer, "
                        "in worker processes) or jax (relzoo.datasets.clevr.render_jax, for a GPU); validation and "
                        "test are always rendered by numpy")
    p.add_argument("--prepare-scenes", action="store_true",
                   help="only generate the training split's scenes and questions, without images, into RUN_DIR/data/ "
                        "(a few MB to carry to a GPU machine, where --renderer jax renders them), then exit")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                   help="Keras verbosity: 1 progress bar, 2 one line per epoch (default: 1 on a terminal, else 2)")
    return p.parse_args(argv)


def configure_cpu_devices(count):
    """Splits the physical CPU into `count` logical devices (before TensorFlow starts)."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)


def make_strategy(name, cpu_devices):
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = None
        if cpu_devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        elif not tf.config.list_logical_devices("GPU"):
            print("train: mirrored without GPUs or --cpu-devices runs one replica on the CPU.", file=sys.stderr)
        return tf.distribute.MirroredStrategy(devices=devices)
    if "TF_CONFIG" not in os.environ:
        raise SystemExit("train: --strategy multi_worker needs TF_CONFIG (the cluster and this worker's task).")
    communication = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=communication)


def worker_role():
    """(is_chief, task index) from TF_CONFIG; (True, 0) without it."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in config.get("cluster", {})), index


# ---------------------------------------------------------------------- model & data
def takes_any_object_count(recipe):
    """Whether the recipe's builder takes `num_objects` (and so can be built for any number)."""
    import inspect

    from relzoo.models import get_builder

    return "num_objects" in inspect.signature(get_builder(recipe["model"]["builder"])).parameters


def build_model(recipe, dtype_policy=None, any_object_count=False):
    """The recipe's model, its layers built under `dtype_policy` (default: train.dtype_policy).

    `any_object_count`: built with `num_objects=None`, so that it takes batches cut to any number
    of objects (`train.object_buckets`); its weights are those of the recipe's model."""
    import keras

    from relzoo.models import get_builder

    builder = get_builder(recipe["model"]["builder"])
    kwargs = dict(recipe["model"]["kwargs"])
    if any_object_count:
        if not takes_any_object_count(recipe):
            raise ObjectBucketsError(f"train.object_buckets needs a model whose builder takes num_objects (a "
                                     f"state-description model); {recipe['model']['builder']} does not.")
        kwargs["num_objects"] = None
    policy = dtype_policy or recipe["train"].get("dtype_policy", "float32")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return builder(**kwargs)
    finally:
        keras.config.set_dtype_policy(previous)


def float32_copy(model, recipe):
    """A plain float32 copy of a trained model (the weights are float32 already), outside any
    distribution strategy.

    Published artifacts, their evaluation and exports run in float32, whatever precision
    the training steps used.
    """
    copy = build_model(recipe, "float32")
    copy.set_weights(model.get_weights())
    return copy


def batch_norm_layers(model):
    import keras

    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]


def recalibrate_batch_norm(model, examples, batches, batch_size, seed=0):
    """Sets every BatchNormalization layer's moving mean and variance to the average of its
    batch statistics over `batches` random training batches, under the current weights.

    The moving averages that training keeps lag behind the weights; the Relation Network sums
    g over hundreds of pairs of CNN objects, so a small lag in the CNN's normalisation becomes a
    large error at inference (measured on rn_sort_of_clevr at epoch 12: 56.9% validation
    accuracy with the moving averages, 77.8% with recomputed statistics). Only the statistics
    change; the trained weights do not. Returns the number of BatchNormalization layers.
    """
    import numpy as np

    layers = batch_norm_layers(model)
    if not layers or batches <= 0:
        return len(layers)
    rng = np.random.default_rng(seed)
    count = min(batches, max(1, len(examples) // batch_size))
    index = rng.permutation(len(examples))[: count * batch_size]
    momentum = [layer.momentum for layer in layers]
    import keras

    try:
        if keras.backend.backend() == "jax":
            _recalibrate_jitted(model, layers, examples, index, count, batch_size)
            return len(layers)
        for i in range(count):
            for layer in layers:  # moving = the running average of the batch statistics seen so far
                layer.momentum = i / (i + 1)
            model(examples.batch(index[i * batch_size:(i + 1) * batch_size]), training=True)
    finally:
        for layer, m in zip(layers, momentum):
            layer.momentum = m
    return len(layers)


def _recalibrate_jitted(model, layers, examples, index, count, batch_size):
    """`recalibrate_batch_norm` on JAX: one compiled forward pass for every batch.

    Called eagerly, a JAX model dispatches op by op and compiles its LSTM's scan anew on every
    call (measured on the CPU, 4-conv rn_clevr: about 7 s a batch of 64, one scan compile each);
    the trainer recalibrates at every epoch's end. Here each batch's statistics come from a
    jitted stateless call with momentum 0 (the moving statistics := the batch's), and their
    arithmetic mean is assigned at the end: what the eager loop's momentum i / (i + 1) computes.
    """
    import jax
    import numpy as np

    for layer in layers:
        layer.momentum = 0.0
    targets = {id(v): k for k, v in enumerate(model.non_trainable_variables)}
    slots = [targets[id(v)] for layer in layers for v in (layer.moving_mean, layer.moving_variance)]
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    @jax.jit
    def batch_statistics(trainable, non_trainable, x):
        _, updated = model.stateless_call(trainable, non_trainable, x, training=True)
        return [updated[k] for k in slots]

    sums = None
    for i in range(count):
        stats = batch_statistics(trainable, non_trainable, examples.batch(index[i * batch_size:(i + 1) * batch_size]))
        stats = [np.asarray(s, np.float64) for s in stats]
        sums = stats if sums is None else [a + b for a, b in zip(sums, stats)]
    variables = [v for layer in layers for v in (layer.moving_mean, layer.moving_variance)]
    for v, total in zip(variables, sums):
        v.assign((total / count).astype(v.dtype))


def make_optimizer(train):
    import keras

    from training.schedules import WarmupConstant, WarmupCosine

    if train["decay_steps"]:
        schedule = WarmupCosine(train["learning_rate"], train["warmup_steps"], train["decay_steps"], train["decay_to"])
    else:
        schedule = WarmupConstant(train["learning_rate"], train["warmup_steps"])
    kwargs = {}
    if train["clipnorm"]:
        kwargs["clipnorm"] = float(train["clipnorm"])
    if train["weight_decay"]:
        return keras.optimizers.AdamW(schedule, weight_decay=float(train["weight_decay"]), **kwargs)
    return keras.optimizers.Adam(schedule, **kwargs)


def loss_fn():
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compile_for_training(model, train):
    """Compiles `model` for `fit` with the recipe's optimizer, loss and metrics."""
    model.compile(optimizer=make_optimizer(train), loss=loss_fn(), metrics=["accuracy"],
                  jit_compile=bool(train["jit_compile"]))
    return model


def compiled_model(recipe, any_object_count=False):
    """The recipe's model, compiled for `fit` as every trainer and tuner run compiles it."""
    return compile_for_training(build_model(recipe, any_object_count=any_object_count), recipe["train"])


def _data_code():
    """The data set code, as bytes: every .py and .json file of relzoo/datasets, path and content."""
    parts = []
    for path in sorted((ROOT / "relzoo" / "datasets").rglob("*")):
        if path.suffix in (".py", ".json") and path.is_file():
            parts += [str(path.relative_to(ROOT)).encode(), path.read_bytes()]
    return b"".join(parts)


def _data_fingerprint(spec, split, code=None, renderer="numpy"):
    """What a generated split depends on: its spec, the data set code (`_data_code`) and, when it
    is not the default, the renderer of its images, so a cached copy is used only when it would
    be generated identically."""
    fields = {"spec": spec, "split": split}
    if renderer != "numpy":
        fields["renderer"] = renderer
    key = json.dumps(fields, sort_keys=True).encode()
    return hashlib.sha256(key + (_data_code() if code is None else code)).hexdigest()[:16]


def load_data(recipe, cache_dir=None, renderer="numpy"):
    """The train, validation and test `Examples` of the recipe's data set.

    With `cache_dir`, each generated split is kept there as `.npz` (keyed by the spec and the
    data set code) and reused by a resumed run instead of being generated again. Streams
    (fresh examples every epoch) are not cached. `renderer` ("numpy" or "jax") renders the
    training split's images, for data sets with images; the other splits use numpy.
    """
    import numpy as np

    from relzoo.datasets.examples import Examples, Stream
    from relzoo.evaluate import dataset_split

    spec = recipe["dataset"]
    code = None if cache_dir is None else _data_code()  # read the code once, not per split
    data = {}
    for split in ("train", "validation", "test"):
        split_renderer = renderer if split == "train" else "numpy"
        path = None if cache_dir is None else \
            Path(cache_dir) / f"{split}-{_data_fingerprint(spec, split, code, split_renderer)}.npz"
        if path is not None and path.is_file():
            try:
                data[split] = Examples.load(path)
                print(f"train: {split} split from the cache {path.name}", flush=True)
                continue
            except Exception as err:  # noqa: BLE001  a damaged cache file (any reader error) is regenerated, never used
                print(f"train: the cached {split} split {path} is unreadable ({err}); generating it again", flush=True)
        started = time.perf_counter()
        scenes_file = None if path is None else unrendered_path(path)
        if split_renderer == "jax" and scenes_file.is_file():  # scenes and questions made ahead (--prepare-scenes)
            from relzoo.datasets import get_dataset

            with np.load(scenes_file) as parts:
                data[split] = get_dataset(spec["name"]).render_unrendered(parts)
            print(f"train: rendered the {split} split's images from {scenes_file.name} with the jax renderer in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
        else:
            data[split] = dataset_split(spec, split, renderer=None if split_renderer == "numpy" else split_renderer)
        if path is not None and not isinstance(data[split], Stream):
            path.parent.mkdir(parents=True, exist_ok=True)
            data[split].save(path)
            how = "" if split_renderer == "numpy" else f" (images by the {split_renderer} renderer)"
            print(f"train: generated the {split} split{how} in {time.perf_counter() - started:.0f} s; cached as "
                  f"{path.name}", flush=True)
    return data


def unrendered_path(path):
    """Where `--prepare-scenes` keeps a split's scenes and questions: beside its cache `path`."""
    return Path(path).with_name(Path(path).name.replace(".npz", ".unrendered.npz"))


def prepare_scenes(recipe, cache_dir):
    """Writes the training split's scenes and questions, without images (`generate_unrendered`),
    where a `--renderer jax` run with the same recipe and code finds them. Returns the path."""
    import numpy as np

    from relzoo.datasets import get_dataset

    spec = recipe["dataset"]
    module = get_dataset(spec["name"])
    if not hasattr(module, "generate_unrendered"):
        raise ValueError(f"--prepare-scenes: the dataset {spec['name']!r} has no unrendered form (only clevr_world "
                         "with the pixels representation).")
    if spec.get("options", {}).get("representation", "pixels") != "pixels":
        raise ValueError("--prepare-scenes is for image data (representation = \"pixels\"); state descriptions "
                         "need no rendering: use --prepare-data.")
    path = unrendered_path(Path(cache_dir) / f"train-{_data_fingerprint(spec, 'train', _data_code(), 'jax')}.npz")
    parts = module.generate_unrendered(spec["train_size"], seed=spec["seed"], split="train", progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(tmp, **parts)
    os.replace(tmp, path)
    return path


def fit_inputs(examples, batch_size, seed, shuffle, backend, drop_remainder=False, start_epoch=0, trim=()):
    """What `fit` consumes: a tf.data pipeline on TensorFlow, a numpy PyDataset elsewhere.

    A `Stream` (fresh examples each epoch) is always a PyDataset, starting at `start_epoch`.
    `trim`: token-id inputs whose batches are cut after their longest row (`padded_id_inputs`).
    """
    from relzoo.datasets.examples import Stream

    if isinstance(examples, Stream):
        return examples.py_dataset(batch_size, start_epoch=start_epoch)
    if backend == "tensorflow":
        return examples.tf_dataset(batch_size, seed=seed, shuffle=shuffle, drop_remainder=drop_remainder, trim=trim)
    return examples.py_dataset(batch_size, seed=seed, shuffle=shuffle, trim=trim)


def padded_id_inputs(model):
    """The inputs of `model` that batches may cut after their longest row: token ids of any
    length `(batch, None)` read only by Embedding layers that mask id 0 (so the trailing padding
    changes no output; for the CLEVR models, an LSTM then runs fewer steps)."""
    import keras

    inputs = model.input if isinstance(model.input, dict) else {}
    names = []
    for name, tensor in inputs.items():
        if len(tensor.shape) != 2 or tensor.shape[1] is not None or "int" not in str(tensor.dtype):
            continue
        readers = [layer for layer in model.layers
                   if any(any(t is tensor for t in node.input_tensors) for node in layer._inbound_nodes)]
        if readers and all(isinstance(r, keras.layers.Embedding) and r.mask_zero for r in readers):
            names.append(name)
    return names


# ------------------------------------------------------------------------- logging
def flat_hparams(recipe):
    """Scalar hyperparameters for the HParams plugin (lists as strings)."""
    out = {"seed": recipe["seed"], "dataset": recipe["dataset"]["name"], "builder": recipe["model"]["builder"]}
    for key, value in recipe["model"]["kwargs"].items():
        out[f"model.{key}"] = value
    for key, value in recipe["train"].items():
        out[f"train.{key}"] = value
    return {k: (v if isinstance(v, (bool, int, float, str)) else json.dumps(v)) for k, v in out.items() if v is not None}


def write_hparams(log_dir, recipe, run_name):
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    # At the root of the log folder: the plugin finds the session's metrics in train/ and validation/.
    with tf.summary.create_file_writer(str(Path(log_dir))).as_default():
        hp.hparams(flat_hparams(recipe), trial_id=run_name)


def print_header(recipe, strategy_name, replicas, run_dir, backend):
    t = recipe["train"]
    print(
        f"train: {recipe['name']} | backend {backend} | strategy {strategy_name} ({replicas} replica"
        f"{'s' if replicas != 1 else ''}) | epochs {t['epochs']} | batch {t['batch_size']} | lr {t['learning_rate']} "
        f"| seed {recipe['seed']} | run dir {run_dir}",
        flush=True,
    )


# ------------------------------------------------------------------ fit (default, mirrored, JAX)
def _keras_callbacks():
    import keras

    class NaNGuard(keras.callbacks.Callback):
        """Stops at the first non-finite training loss and remembers where."""

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

    class GuardedBackup(keras.callbacks.BackupAndRestore):
        """BackupAndRestore that never saves a state reached through a NaN loss."""

        def __init__(self, guard, **kwargs):
            super().__init__(**kwargs)
            self.guard = guard

        def _save_model(self):
            if self.guard.bad is None:
                write_checkpoint(self.model, self.backup_dir, self._current_epoch)

        def on_train_begin(self, logs=None):
            weights = Path(self.backup_dir) / CHECKPOINT_WEIGHTS
            if not weights.is_file():
                return
            try:
                self._load_model()
            except (OSError, ValueError) as err:
                raise CheckpointError(
                    f"the checkpoint {weights} cannot be loaded into this run's model ({err}). It was not changed. "
                    f"To continue the run, restore a good copy there; to start it over, run the same command with "
                    f"--restart (or move the folder {self.backup_dir} away).") from err
            self.model._initial_epoch = completed_epochs(self.backup_dir)

    class Throughput(keras.callbacks.Callback):
        """Per-epoch time and logs, kept in `epochs.json` across resumed invocations.

        Samples per second count the epochs that were not the first of an invocation
        (the first one includes graph building and compilation).
        """

        def __init__(self, samples_per_epoch, path, done):
            super().__init__()
            self.samples_per_epoch = samples_per_epoch
            self.path = Path(path)
            self.epochs = read_epoch_log(self.path)[:done]  # a crash may have logged an epoch the backup lacks
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
            os.replace(tmp, self.path)

        def samples_per_s(self):
            steady = [e["seconds"] for e in self.epochs if not e["first_in_invocation"]]
            times = steady or [e["seconds"] for e in self.epochs]
            return self.samples_per_epoch * len(times) / sum(times) if times else None

        def train_time_s(self):
            return sum(e["seconds"] for e in self.epochs)

    class PreciseBatchNorm(keras.callbacks.Callback):
        """At each epoch's end: recompute BatchNormalization statistics (`recalibrate_batch_norm`,
        unless `batches` is 0), then validate, so that `val_*` (and the checkpoint) reflect what the
        model does at inference. `target` is the model to recalibrate and validate: the model being
        fit, or the model whose layers it shares (scene-grouped training fits a twin)."""

        def __init__(self, target, examples, batches, batch_size, seed, val_data):
            super().__init__()
            self.target, self.examples, self.batches, self.batch_size = target, examples, batches, batch_size
            self.seed, self.val_data = seed, val_data

        def on_epoch_end(self, epoch, logs=None):
            if self.batches:
                recalibrate_batch_norm(self.target, self.examples, self.batches, self.batch_size, self.seed + epoch)
            result = self.target.evaluate(self.val_data, verbose=0, return_dict=True)
            if logs is not None:
                logs.update({f"val_{k}": float(v) for k, v in result.items()})

    return NaNGuard, GuardedBackup, Throughput, PreciseBatchNorm


def read_epoch_log(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []


CHECKPOINT_WEIGHTS = "latest.weights.h5"  # the names BackupAndRestore reads
CHECKPOINT_META = "training_metadata.json"
CHECKPOINT_EPOCH_ATTR = "relzoo_completed_epochs"


def write_checkpoint(model, backup_dir, epoch):
    """Writes the resumable checkpoint of a model that has completed `epoch` epochs.

    The weights file carries its epoch count and replaces the previous one in a single rename,
    after being written in full and synced: a run killed at any moment leaves either the old
    checkpoint or the new one, each whole and agreeing with its epoch. (Keras's BackupAndRestore
    overwrites its one weights file in place and writes the epoch in a second file after it; a
    kill during the first write leaves no readable checkpoint, and one between the two resumes
    with an epoch count one short of the weights.) The epoch is also written, afterwards, to
    BackupAndRestore's metadata file, which is only read for checkpoints older than this stamp.
    """
    import h5py

    backup_dir = Path(backup_dir)
    backup_dir.mkdir(parents=True, exist_ok=True)
    final = backup_dir / CHECKPOINT_WEIGHTS
    partial = backup_dir / "partial.weights.h5"  # what a kill during the write leaves; never read
    model.save_weights(str(partial), overwrite=True)
    with h5py.File(partial, "a") as f:
        f.attrs[CHECKPOINT_EPOCH_ATTR] = int(epoch)
    with open(partial, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(partial, final)
    meta = backup_dir / f"{CHECKPOINT_META}.partial"
    meta.write_text(json.dumps({"epoch": int(epoch), "batch": 0}))
    os.replace(meta, backup_dir / CHECKPOINT_META)


def discard_run(run_dir):
    """Empties a run folder for `--restart`: the checkpoint, logs, epoch log and artifact go; the
    generated data (data/, keyed by its spec and code, so valid for any run of that spec) stays."""
    for entry in Path(run_dir).iterdir():
        if entry.name == "data" and entry.is_dir():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def completed_epochs(backup_dir):
    """Epochs completed according to a checkpoint folder (0 when none).

    The count stamped in the weights file is the truth; checkpoints written before the stamp
    existed fall back to the metadata file beside them.
    """
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
    meta = Path(backup_dir) / CHECKPOINT_META
    if not meta.is_file():
        return 0
    try:
        return int(json.loads(meta.read_text())["epoch"])
    except (ValueError, KeyError, OSError):
        return 0


INIT_RECORD = "init_from.json"  # in the run folder: the weights a warm-started run began from


def _init_source(spec):
    """The model and the record of `train.init_from`: a zoo name with a published artifact (loaded
    by `relzoo.load`, which checks it against its card) or a path to a .keras file (checked against
    a card beside it when there is one)."""
    from relzoo import artifacts, zoo

    path = Path(spec).expanduser()
    try:
        if spec in zoo.REGISTRY and not path.suffix:
            source = zoo.load(spec)
            directory = zoo.artifact_dir(spec)
            card = artifacts.read_card(directory)
            path, sha256 = directory / card["weights_file"], card["sha256"]
        else:
            if not path.is_file() or path.suffix != ".keras":
                raise CheckpointError(f"train.init_from = {spec!r} is neither a zoo model with a published "
                                      "artifact nor a path to a .keras file.")
            card = None
            if (path.parent / artifacts.CARD_FILE).is_file():
                card = artifacts.read_card(path.parent)
            if card is not None and card.get("weights_file") == path.name:
                sha256 = artifacts.verify_weights(path, card["sha256"], card.get("size_bytes"))
            else:
                card, sha256 = None, artifacts.sha256_file(path)
            source = zoo._load_keras_file(path)
    except artifacts.ArtifactError as err:
        raise CheckpointError(f"train.init_from = {spec!r}: {err}") from err
    record = {"init_from": spec, "file": str(path), "sha256": sha256,
              "size_bytes": path.stat().st_size, "git_commit": _git_commit_of(path)}
    if card is not None:
        training = card.get("training") or {}
        test = next((m["values"] for m in card.get("metrics", []) if m.get("split") == "test"), None)
        record.update({
            "card_created": card.get("created"),
            "epochs": training.get("epochs"),
            # the whole chain: a source that was itself warm-started counts its own sources' epochs
            "epochs_total": training.get("epochs_total", training.get("epochs")),
            "train_time_s": training.get("train_time_s"),
            "train_time_total_s": training.get("train_time_total_s", training.get("train_time_s")),
            "hardware": training.get("hardware"),
            "recipe_values": training.get("recipe_values"),
            "test_metrics": test,
            "earlier_sources": _earlier_sources(training.get("init_from")),
        })
    return source, record


# what identifies each earlier source in a card; the rest (its recipe, hardware, ...) is in the card
# that its git_commit published
EARLIER_SOURCE_KEYS = ("init_from", "sha256", "git_commit", "card_created", "epochs", "test_metrics")


def _earlier_sources(init):
    """The chain of weights before a warm-start source, newest first, as a flat list: each entry
    keeps only what identifies it (EARLIER_SOURCE_KEYS), so a card does not grow by a whole nested
    record at every restart. `init` is the source card's own `training.init_from`; cards written
    before this list existed nest the chain under `source_init_from`, and are flattened the same way."""
    chain = []
    while isinstance(init, dict):
        chain.append({k: init.get(k) for k in EARLIER_SOURCE_KEYS})
        if "earlier_sources" in init:
            chain.extend(init["earlier_sources"] or [])
            break
        init = init.get("source_init_from")
    return chain


def _git_commit_of(path):
    """The last commit of this source tree that wrote `path`, when the file is unchanged since
    (so that a card can say which published weights a run began from); None otherwise."""
    import subprocess

    try:
        rel = Path(path).resolve().relative_to(ROOT)
        run = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=30)
        if run("status", "--porcelain", "--", str(rel)).stdout.strip():
            return None  # modified or untracked
        commit = run("log", "-1", "--format=%H", "--", str(rel)).stdout.strip()
        return commit or None
    except (ValueError, OSError, subprocess.SubprocessError):
        return None


def warm_start(model, recipe, run_dir, done):
    """Starts a run from `train.init_from`'s weights; returns the record of that source (None when
    the recipe has none).

    A fresh run (`done == 0`) copies every weight of the source (BatchNormalization statistics
    included; the optimizer starts anew) after checking that each variable's shape matches, and
    writes the source's record to the run folder. A resumed run takes its weights from its
    checkpoint, and the record from the run folder; a checkpoint that began from other weights than
    the recipe names is refused, so that the card never credits the wrong source.
    """
    spec = recipe["train"].get("init_from")
    record_path = Path(run_dir) / INIT_RECORD
    recorded = json.loads(record_path.read_text()) if record_path.is_file() else None
    if done:
        began = None if recorded is None else recorded["init_from"]
        if began != spec:
            raise CheckpointError(
                f"The checkpoint in {Path(run_dir) / 'backup'} began from {began or 'a fresh initialisation'}, "
                f"but train.init_from is {spec!r}: set it back, or start again with --restart.")
        return recorded
    if spec is None:
        record_path.unlink(missing_ok=True)
        return None
    source, record = _init_source(spec)
    mine, theirs = model.weights, source.weights
    if len(mine) != len(theirs):
        raise CheckpointError(f"train.init_from = {spec!r}: its model has {len(theirs)} weights, "
                              f"the recipe's {len(mine)}; the architectures differ.")
    for a, b in zip(mine, theirs):
        if tuple(a.shape) != tuple(b.shape):
            raise CheckpointError(f"train.init_from = {spec!r}: weight {b.path} has shape {tuple(b.shape)}, "
                                  f"the recipe's {a.path} {tuple(a.shape)}; the architectures differ.")
    model.set_weights(source.get_weights())
    tmp = record_path.with_name(INIT_RECORD + ".partial")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, record_path)
    print(f"train: starting from the weights of {record['file']} (sha256 {record['sha256'][:12]}...).", flush=True)
    return record


def train_with_fit(recipe, data, strategy, run_dir, verbose, backend):
    import keras

    train = recipe["train"]
    NaNGuard, GuardedBackup, Throughput, PreciseBatchNorm = _keras_callbacks()
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    grouped, buckets, device_feed = train["scenes_per_batch"], train["object_buckets"], train["device_feed"]
    with scope:
        model = compiled_model(recipe, any_object_count=buckets)
        fit_model = model
        if grouped:  # a twin sharing the model's layers, fed K scenes with all their questions a batch
            from training.scene_batches import scene_grouped_model

            fit_model = compile_for_training(scene_grouped_model(model, data["train"].scenes), train)
        elif device_feed:  # a twin sharing the model's layers that scales (and jitters) raw inputs itself
            from training.device_feed import device_fed_model

            from training.device_feed import clevr_mirror

            mirror = clevr_mirror(seed=recipe["seed"]) if train["mirror_left_right"] else None
            fit_model = compile_for_training(device_fed_model(model, data["train"], train["image_shift"],
                                                              train["image_rotation"], seed=recipe["seed"],
                                                              mirror=mirror), train)
    guard = NaNGuard()
    backup_dir = run_dir / "backup"
    done = completed_epochs(backup_dir)
    init = warm_start(model, recipe, run_dir, done)
    if done:
        print(f"train: resuming from the checkpoint in {backup_dir}: {done} of {train['epochs']} epochs done.", flush=True)
    throughput = Throughput(len(data["train"]), run_dir / "epochs.json", done)
    # The epoch log is written before the checkpoint: a run killed between the two has logged an
    # epoch the checkpoint lacks (dropped on resume, and that epoch runs again), never the reverse,
    # which would leave the resumed run's curves and training time one epoch short.
    callbacks = [guard, throughput, GuardedBackup(guard, backup_dir=str(backup_dir), delete_checkpoint=False)]
    if backend == "tensorflow":
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), update_freq="epoch"))
        write_hparams(run_dir / "logs", recipe, recipe["name"])
    else:  # JAX (or another backend): numpy batches, no TensorFlow
        print("train: TensorBoard logs need TensorFlow; not written on this backend.", flush=True)
    trim = padded_id_inputs(model)
    if grouped:
        from training.scene_batches import SceneBatches

        batches = SceneBatches(data["train"], grouped, seed=recipe["seed"], shuffle=True, start_epoch=done,
                               trim=trim, trim_multiple=1 if backend == "tensorflow" else 8,
                               image_shift=train["image_shift"], image_rotation=train["image_rotation"])
        jitter = (f"; images jittered by up to {train['image_shift']} pixels and {train['image_rotation']} radians"
                  if train["image_shift"] or train["image_rotation"] else "")
        print(f"train: scene-grouped batches: {grouped} scenes with all their questions a batch, "
              f"{len(batches)} batches an epoch{jitter}.", flush=True)
        fit_data = batches.tf_dataset() if backend == "tensorflow" else batches
    elif buckets:
        from training.object_buckets import ObjectBuckets

        batches = ObjectBuckets(data["train"], train["batch_size"], seed=recipe["seed"], shuffle=True, start_epoch=done,
                                trim=trim, trim_multiple=1 if backend == "tensorflow" else 8)
        print(f"train: object-count buckets: batches of up to {train['batch_size']} questions about scenes of one "
              f"size ({', '.join(map(str, batches.sizes))} objects), cut to that size; {len(batches)} batches an "
              f"epoch, {batches.mean_pairs():.1f} pairs a question on average against "
              f"{data['train'].batch(slice(0, 1))['objects'].shape[1] ** 2} padded.", flush=True)
        fit_data = batches.tf_dataset() if backend == "tensorflow" else batches
    elif device_feed:
        from training.device_feed import DeviceBatches

        fit_data = DeviceBatches(data["train"], train["batch_size"], seed=recipe["seed"], start_epoch=done)
        raw = sorted(data["train"].scale)
        jitter = (f"; images jittered on the device by up to {train['image_shift']} pixels and "
                  f"{train['image_rotation']} radians" if train["image_shift"] or train["image_rotation"] else "")
        mirrored = "; half the questions mirrored left to right" if train["mirror_left_right"] else ""
        print(f"train: device feed: {len(fit_data)} batches of {train['batch_size']} an epoch (the last "
              f"{len(data['train']) % train['batch_size']} examples of each epoch's order left out), full-length "
              f"questions{', ' + ', '.join(raw) + ' sent raw and scaled in the step' if raw else ''}{jitter}"
              f"{mirrored}.", flush=True)
    else:
        fit_data = fit_inputs(data["train"], train["batch_size"], recipe["seed"], True, backend, start_epoch=done,
                              trim=trim)
    val_data = fit_inputs(data["validation"], max(train["batch_size"], 256), recipe["seed"], False, backend,
                          trim=() if device_feed else trim)  # the device feed: one question length, one compile
    recalibrate = bool(batch_norm_layers(model) and train["bn_recalibration_batches"] and train["strategy"] == "default")
    if recalibrate or grouped or device_feed:
        # validation (of the model itself when a twin is fit) after recomputing the BatchNormalization
        # statistics (first, so that every later callback, the checkpoint and the logs see the
        # recalibrated model and metrics)
        callbacks.insert(0, PreciseBatchNorm(model, data["train"], train["bn_recalibration_batches"] if recalibrate
                                             else 0, train["batch_size"], recipe["seed"], val_data))
        fit_validation = None
    else:
        fit_validation = val_data
    # fit_data reshuffles itself each epoch (tf.data or the PyDataset)
    history = fit_model.fit(fit_data, validation_data=fit_validation, epochs=train["epochs"], callbacks=callbacks,
                        shuffle=False, verbose=verbose)
    if guard.bad is not None:
        raise NaNLossError(nan_message(guard.bad, backup_dir, completed_epochs(backup_dir)))
    # the whole run's curves, resumed invocations included
    full = {}
    for e in throughput.epochs:
        for k, v in e["logs"].items():
            full.setdefault(k, []).append(v)
    return model, {"history": full or {k: [float(v) for v in vs] for k, vs in history.history.items()},
                   "samples_per_s": throughput.samples_per_s(), "resumed_at_epoch": done,
                   "train_time_s": throughput.train_time_s(), "init_from": init}


def nan_message(bad, backup_dir, good_epochs):
    where = f"the end of epoch {good_epochs}" if good_epochs else "none yet: no epoch had completed"
    return (
        f"training stopped: the loss became {bad['loss']} at epoch {bad['epoch']}, batch {bad['batch']}. "
        f"The last good checkpoint ({where}) is kept in {backup_dir}; nothing was saved from the diverged state. "
        "Lower train.learning_rate, raise train.warmup_steps or set train.clipnorm, then run the same "
        "command to resume from that checkpoint."
    )


# ------------------------------------------------------------- custom loop (multi_worker)
def train_custom_loop(recipe, data, strategy, run_dir, verbose):
    """Keras 3's fit does not run under MultiWorkerMirroredStrategy: a loop with strategy.run."""
    import keras
    import numpy as np
    import tensorflow as tf

    train = recipe["train"]
    is_chief, index = worker_role()
    global_batch = train["batch_size"]
    steps_per_epoch = len(data["train"]) // global_batch
    with strategy.scope():
        model = build_model(recipe)
        optimizer = make_optimizer(train)
        optimizer.build(model.trainable_variables)
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    losses = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train_ds = data["train"].tf_dataset(global_batch, seed=recipe["seed"], shuffle=True, drop_remainder=True)
    val_ds = data["validation"].tf_dataset(global_batch, seed=recipe["seed"], shuffle=False, drop_remainder=True)
    train_dist = strategy.experimental_distribute_dataset(train_ds.with_options(options))
    val_dist = strategy.experimental_distribute_dataset(val_ds.with_options(options))

    def step_fn(batch, training):
        x, y = batch
        with tf.GradientTape() as tape:
            logits = model(x, training=training)
            per_example = losses(y, logits)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        if training:
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(y, tf.int32)),
                                        tf.float32))
        return tf.reduce_sum(per_example), correct, tf.cast(tf.shape(y)[0], tf.float32)

    @tf.function
    def distributed_step(batch, training):
        sums = strategy.run(step_fn, args=(batch, training))
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, s, axis=None) for s in sums]

    # Checkpoints: the chief writes run_dir/backup_mw; the other workers write to
    # their own temporary folders (all must save; only the chief's is kept).
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var)
    chief_dir = run_dir / "backup_mw"
    write_dir = chief_dir if is_chief else run_dir / "workers" / f"tmp_ckpt_{index}"
    manager = tf.train.CheckpointManager(checkpoint, str(write_dir), max_to_keep=2)
    latest = tf.train.latest_checkpoint(str(chief_dir))
    if latest:
        checkpoint.restore(latest)
        print(f"train: resuming from {latest}: {int(epoch_var.numpy())} of {train['epochs']} epochs done.", flush=True)
    done = int(epoch_var.numpy())
    writers = {}
    if is_chief:
        writers = {k: tf.summary.create_file_writer(str(run_dir / "logs" / k)) for k in ("train", "validation")}
        write_hparams(run_dir / "logs", recipe, recipe["name"])

    def run_epoch(dataset, training, progbar=None):
        total_loss = total_correct = total_n = 0.0
        for step, batch in enumerate(dataset):
            loss_sum, correct, n = distributed_step(batch, training)
            total_loss += float(loss_sum)
            total_correct += float(correct)
            total_n += float(n)
            if training and not math.isfinite(float(loss_sum)):
                return {"nan_at_batch": step + 1, "loss": float(loss_sum)}
            if progbar is not None:
                progbar.update(step + 1, [("loss", total_loss / total_n), ("accuracy", total_correct / total_n)])
        return {"loss": total_loss / max(total_n, 1.0), "accuracy": total_correct / max(total_n, 1.0)}

    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    epoch_times = []
    for epoch in range(done, train["epochs"]):
        print(f"Epoch {epoch + 1}/{train['epochs']}", flush=True)
        progbar = keras.utils.Progbar(steps_per_epoch, verbose=verbose if is_chief else 0)
        start = time.perf_counter()
        logs = run_epoch(train_dist, True, progbar)
        epoch_times.append(time.perf_counter() - start)
        if "nan_at_batch" in logs:  # checkpoints are saved after each epoch: `epoch` epochs are good
            bad = {"epoch": epoch + 1, "batch": logs["nan_at_batch"], "loss": logs["loss"]}
            raise NaNLossError(nan_message(bad, chief_dir, epoch))
        val = run_epoch(val_dist, False)
        lr = float(optimizer.learning_rate.numpy()) if hasattr(optimizer.learning_rate, "numpy") else float(
            keras.ops.convert_to_numpy(optimizer.learning_rate))
        for key, value in (("loss", logs["loss"]), ("accuracy", logs["accuracy"]), ("val_loss", val["loss"]),
                           ("val_accuracy", val["accuracy"])):
            history[key].append(value)
        if is_chief:
            print(f"  loss {logs['loss']:.4f} accuracy {logs['accuracy']:.4f} val_loss {val['loss']:.4f} "
                  f"val_accuracy {val['accuracy']:.4f} lr {lr:.3g}", flush=True)
            with writers["train"].as_default():
                tf.summary.scalar("epoch_loss", logs["loss"], step=epoch)
                tf.summary.scalar("epoch_accuracy", logs["accuracy"], step=epoch)
                tf.summary.scalar("epoch_learning_rate", lr, step=epoch)
            with writers["validation"].as_default():
                tf.summary.scalar("epoch_loss", val["loss"], step=epoch)
                tf.summary.scalar("epoch_accuracy", val["accuracy"], step=epoch)
        epoch_var.assign(epoch + 1)
        manager.save()
    if not is_chief:
        shutil.rmtree(write_dir, ignore_errors=True)
    for w in writers.values():
        w.flush()
    # every worker records its final weights (the multi-worker test compares them)
    worker_dir = run_dir / "workers" / str(index)
    worker_dir.mkdir(parents=True, exist_ok=True)
    np.savez(worker_dir / "final_weights.npz", *[np.asarray(w) for w in model.get_weights()])
    times = epoch_times[1:] or epoch_times
    sps = steps_per_epoch * global_batch * len(times) / sum(times) if times else None

    # Evaluation and saving use a plain copy (no collectives); every worker then waits at a
    # last all-reduce, so none exits while the chief still writes the artifact.
    plain = build_model(recipe, "float32")
    plain.set_weights(model.get_weights())

    @tf.function
    def barrier():
        ones = strategy.run(lambda: tf.constant(1.0))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None)

    return plain, {"history": history, "samples_per_s": sps, "resumed_at_epoch": done, "is_chief": is_chief,
                   "barrier": barrier}


# ---------------------------------------------------------------------- artifact
def check_publishable(recipe):
    from relzoo import zoo

    entry = zoo.get_entry(recipe["name"])
    problems = []
    if recipe["model"]["builder"] != entry.builder:
        problems.append(f"builder {recipe['model']['builder']!r} != entry's {entry.builder!r}")
    if recipe["model"]["kwargs"] != entry.kwargs:
        problems.append(f"model.kwargs {recipe['model']['kwargs']} != entry's {entry.kwargs}")
    if recipe["dataset"] != entry.dataset:
        problems.append(f"dataset {recipe['dataset']} != entry's {entry.dataset}")
    if problems:
        raise SystemExit("train: --publish needs the recipe to match the zoo entry: " + "; ".join(problems))
    return entry


def write_outputs(model, recipe, info, args, run_dir, wall_time, strategy_name, replicas, backend, data):
    """Evaluates on the held-out splits and writes model.keras + card.json.

    `data`: the run's splits (`load_data`). Its held-out splits are exactly what the generator
    makes (the cache is keyed by the spec and the data set code), so they are evaluated as they
    are rather than generated again (rendering CLEVR's two held-out splits takes about 2 minutes).
    """
    from relzoo import artifacts, zoo
    from relzoo.evaluate import evaluate_examples, evaluation_command

    entry = zoo.REGISTRY.get(recipe["name"])
    out_dir = zoo.SAVED_MODELS / recipe["name"] if args.publish else run_dir / "artifact"
    metrics = []
    for split in ("test", "validation"):
        record = evaluate_examples(model, data[split], split)
        if entry is not None and recipe["dataset"] == entry.dataset:
            record["command"] = evaluation_command(recipe["name"], split)
            if not args.publish:
                record["command"] += f" --weights {shlex.quote(str(out_dir / artifacts.WEIGHTS_FILE))}"
        else:  # not the zoo entry's data: the same code, on the card's own dataset spec
            record["command"] = (f"relzoo.evaluate.evaluate_model(model, card['dataset'], '{split}') "
                                 "(this run's dataset differs from any zoo entry's)")
        metrics.append(record)
    recipe_path = Path(args.recipe)
    try:
        recipe_rel = str(recipe_path.resolve().relative_to(ROOT))
    except ValueError:
        recipe_rel = str(recipe_path)
    card = {
        "name": recipe["name"],
        "description": entry.description if entry else f"trained from {recipe_rel}",
        "paper": entry.paper if entry else None,
        "dataset": recipe["dataset"],
        "metrics": metrics,
        "paper_metrics": entry.paper_metrics if entry else {},
        "answer_vocab": list(entry.answer_vocab) if entry and entry.answer_vocab else None,
        "training": {
            "recipe": recipe_rel,
            "recipe_values": recipe,
            "notes": recipe.get("notes"),
            "bn_recalibration": info.get("bn_recalibration"),
            "command": "python -m training.train " + shlex.join(sys.argv[1:] if args.argv is None else args.argv),
            "seed": recipe["seed"],
            "strategy": strategy_name,
            "replicas": replicas,
            "backend": backend,
            "epochs": recipe["train"]["epochs"],
            "resumed_at_epoch": info["resumed_at_epoch"],
            "wall_time_s": round(wall_time, 1),
            "wall_time_note": "this invocation only (a resumed run counts the time since resuming)",
            "train_time_s": None if info.get("train_time_s") is None else round(info["train_time_s"], 1),
            "train_time_note": "all epochs of the run, over every invocation (training and per-epoch validation)",
            "samples_per_s": None if info["samples_per_s"] is None else round(info["samples_per_s"], 1),
            "hardware": artifacts.hardware_description(),
            "final": {k: (round(v[-1], 6) if v else None) for k, v in info["history"].items()},
        },
    }
    if getattr(args, "renderer", "numpy") != "numpy":
        card["training"]["train_images_renderer"] = (f"{args.renderer}: the training split's images by "
                                                     "relzoo.datasets.clevr.render_jax (float64); validation and "
                                                     "test by relzoo.datasets.clevr.render (numpy)")
    init = info.get("init_from")
    if init is not None:  # a warm-started run: its source, and the totals over the whole chain
        training = card["training"]
        training["init_from"] = {k: v for k, v in init.items() if k != "file"}
        training["epochs_total"] = training["epochs"] + (init.get("epochs_total") or 0)
        own = training["train_time_s"]
        before = init.get("train_time_total_s")
        training["train_time_total_s"] = None if own is None or before is None else round(own + before, 1)
        training["epochs_total_note"] = ("this run's epochs plus those of the weights it started from "
                                         "(init_from, and its own sources)")
    extra = {}
    if entry is not None and entry.question_vocab is not None:  # the vocabulary travels with the weights
        from relzoo.text import shipped_vocabulary_path

        extra["vocabulary"] = shipped_vocabulary_path(entry.question_vocab)
    card = artifacts.write_artifact(model, out_dir, card, extra_files=extra)
    print(f"train: wrote {out_dir / card['weights_file']} and card.json (sha256 {card['sha256'][:12]}...)")
    for record in metrics:
        print(f"train: {record['split']}: " + ", ".join(f"{k} {v:.4f}" for k, v in record["values"].items())
              + f" ({record['num_examples']} examples)")
    return out_dir


# -------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    args.argv = argv
    from training import recipe as recipes

    try:
        recipe = recipes.load(args.recipe, args.overrides)
    except recipes.RecipeError as err:
        print(f"train: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    strategy_name = args.strategy or recipe["train"]["strategy"]
    recipe["train"]["strategy"] = strategy_name
    run_dir = Path(args.run_dir or ROOT / "runs" / recipe["name"]).resolve()
    if args.restart and run_dir.exists():
        discard_run(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow" and args.cpu_devices:
        configure_cpu_devices(args.cpu_devices)
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow" and strategy_name != "default":
        print(f"train: error: the {strategy_name} strategy needs TensorFlow; on {backend} use --strategy default.",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.publish:
        check_publishable(recipe)
    if recipe["train"]["init_from"] is not None and strategy_name == "multi_worker":
        print("train: error: train.init_from works with the default and mirrored strategies, not multi_worker.",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if recipe["train"]["scenes_per_batch"] and strategy_name != "default":
        print(f"train: error: train.scenes_per_batch works with the default strategy only, not {strategy_name}; "
              "set train.scenes_per_batch=0 to train with plain batches.", file=sys.stderr)
        return EXIT_BAD_INPUT
    if recipe["train"]["object_buckets"] and not takes_any_object_count(recipe):
        print(f"train: error: train.object_buckets needs a model whose builder takes num_objects (a state-description "
              f"model); {recipe['model']['builder']} does not. Set train.object_buckets=false.", file=sys.stderr)
        return EXIT_BAD_INPUT
    if recipe["train"]["object_buckets"] and strategy_name != "default":
        print(f"train: error: train.object_buckets works with the default strategy only, not {strategy_name}; "
              "set train.object_buckets=false to train with plain batches.", file=sys.stderr)
        return EXIT_BAD_INPUT
    if recipe["train"]["device_feed"] and strategy_name != "default":
        print(f"train: error: train.device_feed works with the default strategy only, not {strategy_name}; "
              "set train.device_feed=false.", file=sys.stderr)
        return EXIT_BAD_INPUT
    if strategy_name == "mirrored" and args.cpu_devices and recipe["train"]["jit_compile"]:
        # XLA cannot compile a replica whose variables sit on another logical CPU device.
        print("train: jit_compile off: XLA does not run across logical CPU devices.", flush=True)
        recipe["train"]["jit_compile"] = False
    keras.utils.set_random_seed(recipe["seed"])
    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)

    strategy = make_strategy(strategy_name, args.cpu_devices) if backend == "tensorflow" else None
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    print_header(recipe, strategy_name, replicas, run_dir, backend)
    (run_dir / "recipe.json").write_text(json.dumps(recipe, indent=2))
    if args.prepare_scenes:
        started = time.perf_counter()
        try:
            path = prepare_scenes(recipe, run_dir / "data")
        except ValueError as err:
            print(f"train: error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"train: the training split's scenes and questions are in {path} ({path.stat().st_size / 1e6:.1f} MB, "
              f"{time.perf_counter() - started:.0f} s); a run with --renderer jax and the same recipe, run folder and "
              "code renders their images.", flush=True)
        return 0
    if args.prepare_data:
        if args.no_data_cache:
            print("train: error: --prepare-data writes the data cache; it cannot be combined with --no-data-cache.",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        started = time.perf_counter()
        load_data(recipe, cache_dir=run_dir / "data", renderer=args.renderer)
        print(f"train: data ready in {run_dir / 'data'} ({time.perf_counter() - started:.0f} s); "
              f"the same command without --prepare-data trains on it.", flush=True)
        return 0
    data = load_data(recipe, cache_dir=None if args.no_data_cache else run_dir / "data", renderer=args.renderer)

    start = time.perf_counter()
    try:
        if strategy_name == "multi_worker":
            model, info = train_custom_loop(recipe, data, strategy, run_dir, verbose)
        else:
            model, info = train_with_fit(recipe, data, strategy, run_dir, verbose, backend)
    except NaNLossError as err:
        print(f"train: {err}", file=sys.stderr)
        return EXIT_NAN
    except CheckpointError as err:
        print(f"train: error: {err}", file=sys.stderr)
        return EXIT_BAD_CHECKPOINT
    except ObjectBucketsError as err:
        print(f"train: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    wall = time.perf_counter() - start
    model = float32_copy(model, recipe)
    info["bn_recalibration"] = None
    if batch_norm_layers(model) and recipe["train"]["bn_recalibration_batches"]:
        layers = recalibrate_batch_norm(model, data["train"], recipe["train"]["bn_recalibration_batches"],
                                        recipe["train"]["batch_size"], recipe["seed"])
        info["bn_recalibration"] = {"layers": layers, "batches": recipe["train"]["bn_recalibration_batches"],
                                    "batch_size": recipe["train"]["batch_size"],
                                    "note": "BatchNormalization statistics recomputed under the final weights "
                                            "(float32) before evaluation and saving"}
    if info.get("is_chief", True):
        write_outputs(model, recipe, info, args, run_dir, wall, strategy_name, replicas, backend, data)
        (run_dir / "history.json").write_text(json.dumps(info["history"], indent=2))
    if "barrier" in info:
        info["barrier"]()
    return 0


if __name__ == "__main__":
    sys.exit(main())

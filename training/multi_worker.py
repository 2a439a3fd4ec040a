"""Training under `MultiWorkerMirroredStrategy` (several machines, `TF_CONFIG`).

Keras 3's `fit` does not run under that strategy, so this is a loop of its own with
`strategy.run`: every worker computes its share of the global batch, gradients are all-reduced,
and the chief writes the checkpoint (`backup_mw/`, with the optimizer's state and the epoch),
the TensorBoard logs and, at the end, the artifact. A killed cluster resumes from the last
completed epoch when every worker runs the same command again.
"""

import json
import math
import os
import shutil
import time

import numpy as np

import keras

from training.callbacks import write_hparams
from training.errors import NaNLossError
from training.fit_run import nan_message
from training.optimizer import make_optimizer


def worker_role():
    """`(is_chief, task index)` from TF_CONFIG; `(True, 0)` without it."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in config.get("cluster", {})), index


def _distributed_datasets(recipe, data, strategy):
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    batch = recipe.train.batch_size
    train = data["train"].tf_dataset(batch, seed=recipe.seed, shuffle=True, drop_remainder=True)
    val = data["validation"].tf_dataset(batch, seed=recipe.seed, shuffle=False, drop_remainder=True)
    return (strategy.experimental_distribute_dataset(train.with_options(options)),
            strategy.experimental_distribute_dataset(val.with_options(options)))


def _step(model, optimizer, strategy, global_batch):
    """A `tf.function` `(batch, training) -> [loss sum, correct, count]`, summed over the replicas."""
    import tensorflow as tf

    losses = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    def replica_step(batch, training):
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
        hits = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(y, tf.int32))
        return tf.reduce_sum(per_example), tf.reduce_sum(tf.cast(hits, tf.float32)), tf.cast(tf.shape(y)[0], tf.float32)

    @tf.function
    def distributed_step(batch, training):
        sums = strategy.run(replica_step, args=(batch, training))
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, s, axis=None) for s in sums]

    return distributed_step


def _run_epoch(step, dataset, training, progbar=None):
    """Loss and accuracy over one pass; `{"nan_at_batch", "loss"}` at a non-finite training loss."""
    total_loss = total_correct = total_n = 0.0
    for k, batch in enumerate(dataset):
        loss_sum, correct, n = step(batch, training)
        total_loss, total_correct, total_n = total_loss + float(loss_sum), total_correct + float(correct), \
            total_n + float(n)
        if training and not math.isfinite(float(loss_sum)):
            return {"nan_at_batch": k + 1, "loss": float(loss_sum)}
        if progbar is not None:
            progbar.update(k + 1, [("loss", total_loss / total_n), ("accuracy", total_correct / total_n)])
    return {"loss": total_loss / max(total_n, 1.0), "accuracy": total_correct / max(total_n, 1.0)}


def _log_epoch(writers, epoch, logs, val, lr):
    import tensorflow as tf

    print(f"  loss {logs['loss']:.4f} accuracy {logs['accuracy']:.4f} val_loss {val['loss']:.4f} "
          f"val_accuracy {val['accuracy']:.4f} lr {lr:.3g}", flush=True)
    for split, values in (("train", logs), ("validation", val)):
        with writers[split].as_default():
            tf.summary.scalar("epoch_loss", values["loss"], step=epoch)
            tf.summary.scalar("epoch_accuracy", values["accuracy"], step=epoch)
            if split == "train":
                tf.summary.scalar("epoch_learning_rate", lr, step=epoch)


def _barrier(strategy):
    """A last all-reduce, so that no worker exits while the chief still writes the artifact."""
    import tensorflow as tf

    @tf.function
    def barrier():
        ones = strategy.run(lambda: tf.constant(1.0))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None)

    return barrier


def multi_worker_run(recipe, data, strategy, run, verbose):
    """Trains (or resumes) on every worker; returns `(plain float32 model, result)` like `fit_run`."""
    import tensorflow as tf

    train = recipe.train
    is_chief, index = worker_role()
    steps_per_epoch = len(data["train"]) // train.batch_size
    with strategy.scope():
        model = recipe.build()
        optimizer = make_optimizer(train)
        optimizer.build(model.trainable_variables)
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    train_dist, val_dist = _distributed_datasets(recipe, data, strategy)
    step = _step(model, optimizer, strategy, train.batch_size)
    # the chief writes run/backup_mw; the others, which must save too, write to folders of their own
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var)
    chief_dir = run.root / "backup_mw"
    write_dir = chief_dir if is_chief else run.root / "workers" / f"tmp_ckpt_{index}"
    manager = tf.train.CheckpointManager(checkpoint, str(write_dir), max_to_keep=2)
    latest = tf.train.latest_checkpoint(str(chief_dir))
    if latest:
        checkpoint.restore(latest)
        print(f"train: resuming from {latest}: {int(epoch_var.numpy())} of {train.epochs} epochs done.", flush=True)
    done = int(epoch_var.numpy())
    writers = {}
    if is_chief:
        writers = {k: tf.summary.create_file_writer(str(run.logs / k)) for k in ("train", "validation")}
        write_hparams(run.logs, recipe)
    history, epoch_times = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}, []
    for epoch in range(done, train.epochs):
        print(f"Epoch {epoch + 1}/{train.epochs}", flush=True)
        start = time.perf_counter()
        logs = _run_epoch(step, train_dist, True, keras.utils.Progbar(steps_per_epoch, verbose=verbose if is_chief else 0))
        epoch_times.append(time.perf_counter() - start)
        if "nan_at_batch" in logs:  # checkpoints are saved after each epoch: `epoch` epochs are good
            raise NaNLossError(nan_message({"epoch": epoch + 1, "batch": logs["nan_at_batch"], "loss": logs["loss"]},
                                           chief_dir, epoch))
        val = _run_epoch(step, val_dist, False)
        for key, value in (("loss", logs["loss"]), ("accuracy", logs["accuracy"]), ("val_loss", val["loss"]),
                           ("val_accuracy", val["accuracy"])):
            history[key].append(value)
        if is_chief:
            _log_epoch(writers, epoch, logs, val, float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
        epoch_var.assign(epoch + 1)
        manager.save()
    return _finish(recipe, model, run, index, is_chief, write_dir, writers, history, epoch_times, done, strategy,
                   steps_per_epoch)


def _finish(recipe, model, run, index, is_chief, write_dir, writers, history, epoch_times, done, strategy,
            steps_per_epoch):
    """Cleans up, records every worker's final weights (the multi-worker test compares them) and
    returns the plain float32 copy that the chief evaluates and saves (no collectives)."""
    if not is_chief:
        shutil.rmtree(write_dir, ignore_errors=True)
    for writer in writers.values():
        writer.flush()
    worker_dir = run.root / "workers" / str(index)
    worker_dir.mkdir(parents=True, exist_ok=True)
    np.savez(worker_dir / "final_weights.npz", *[np.asarray(w) for w in model.get_weights()])
    times = epoch_times[1:] or epoch_times  # the first epoch of an invocation includes tracing
    sps = steps_per_epoch * recipe.train.batch_size * len(times) / sum(times) if times else None
    plain = recipe.build("float32")
    plain.set_weights(model.get_weights())
    return plain, {"history": history, "samples_per_s": sps, "resumed_at_epoch": done, "is_chief": is_chief,
                   "barrier": _barrier(strategy)}

"""Training with `model.fit`: the default and mirrored strategies on TensorFlow, and JAX.

A run resumes with `fit(initial_epoch=done)` from its checkpoint (`EpochCheckpoint` restores the
weights and the optimizer's state when training begins). A feed (training/feeds.py) decides what
`fit` trains and on what; with a twin, or BatchNormalization to recalibrate, validation runs on
the model itself after each epoch (`ValidateModel`).
"""

import contextlib

import keras

from training import batch_norm
from training.callbacks import EpochLog, NaNGuard, ValidateModel, write_hparams
from training.checkpoints import EpochCheckpoint, completed_epochs
from training.errors import NaNLossError
from training.feeds import make_feed
from training.optimizer import compile_for_training, compiled_model
from training.run_folder import history_of
from training.warm_start import warm_start


def nan_message(bad, backup_dir, good_epochs):
    where = f"the end of epoch {good_epochs}" if good_epochs else "none yet: no epoch had completed"
    return (
        f"training stopped: the loss became {bad['loss']} at epoch {bad['epoch']}, batch {bad['batch']}. "
        f"The last good checkpoint ({where}) is kept in {backup_dir}; nothing was saved from the diverged state. "
        "Lower train.learning_rate, raise train.warmup_steps or set train.clipnorm, then run the same "
        "command to resume from that checkpoint."
    )


def _callbacks(recipe, model, feed, data, run, done, backend):
    """`(NaN guard, epoch log, every callback in order, validation data for fit or None)`."""
    train = recipe.train
    guard = NaNGuard()
    log = EpochLog(feed.samples_per_epoch(), run.epoch_log, done)
    callbacks = [guard, log, EpochCheckpoint(run.backup, guard)]
    if backend == "tensorflow":
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run.logs), update_freq="epoch"))
        write_hparams(run.logs, recipe)
    else:  # JAX (or another backend): numpy batches, no TensorFlow
        print("train: TensorBoard logs need TensorFlow; not written on this backend.", flush=True)
    validation = feed.validation(model)
    recalibrate = bool(batch_norm.batch_norm_layers(model) and train.bn_recalibration_batches
                       and train.strategy == "default")
    if not (recalibrate or feed.twin):
        return guard, log, callbacks, validation
    # first, so that every later callback, the checkpoint and the logs see the recalibrated model and metrics
    batches = train.bn_recalibration_batches if recalibrate else 0
    callbacks.insert(0, ValidateModel(model, data["train"], batches, train.batch_size, recipe.seed, validation))
    return guard, log, callbacks, None


def fit_run(recipe, data, strategy, run, verbose, backend):
    """Trains (or resumes) the run; returns `(model, result)` with the model being published (its
    weights as trained, possibly in mixed precision) and the result the card records."""
    train = recipe.train
    feed = make_feed(recipe, data, backend, run.data)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = compiled_model(recipe, **feed.model_kwargs)
        loss, metrics = feed.loss()
        fit_model = compile_for_training(feed.fit_model(model), train, loss, metrics) if feed.twin else model
    done = completed_epochs(run.backup)
    init = warm_start(model, train.init_from, run, done, train.init_layers,
                      resumes_all={id(w) for w in model.weights} <= {id(w) for w in fit_model.weights})
    if done:
        print(f"train: resuming from the checkpoint in {run.backup}: {done} of {train.epochs} epochs done.", flush=True)
    guard, log, callbacks, validation = _callbacks(recipe, model, feed, data, run, done, backend)
    batches, line = feed.batches(model, done)
    if line:
        print(f"train: {line}", flush=True)
    history = fit_model.fit(batches, validation_data=validation, epochs=train.epochs, initial_epoch=done,
                            callbacks=callbacks, shuffle=False, verbose=verbose)
    if guard.bad is not None:
        raise NaNLossError(nan_message(guard.bad, run.backup, completed_epochs(run.backup)))
    full = history_of(log.epochs)  # the whole run's curves, resumed invocations included
    return model, {"history": full or {k: [float(v) for v in vs] for k, vs in history.history.items()},
                   "samples_per_s": log.samples_per_s(), "resumed_at_epoch": done,
                   "train_time_s": log.train_time_s(), "init_from": init, "model_kwargs": feed.model_kwargs}

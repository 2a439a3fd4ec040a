"""The optimizer, loss and compile settings every training run (and tuner trial) uses."""

import keras

from training.schedules import WarmupConstant, WarmupCosine


def make_optimizer(train):
    """Adam (AdamW with `train.weight_decay`) on a warm-up schedule, with optional gradient clipping.

    `train`: the recipe's `TrainSettings`."""
    if train.decay_steps:
        schedule = WarmupCosine(train.learning_rate, train.warmup_steps, train.decay_steps, train.decay_to)
    else:
        schedule = WarmupConstant(train.learning_rate, train.warmup_steps)
    kwargs = {"clipnorm": float(train.clipnorm)} if train.clipnorm else {}
    if train.weight_decay:
        return keras.optimizers.AdamW(schedule, weight_decay=float(train.weight_decay), **kwargs)
    return keras.optimizers.Adam(schedule, **kwargs)


def loss_fn(reduction="sum_over_batch_size"):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=reduction)


def compile_for_training(model, train, loss=None, metrics=("accuracy",)):
    """Compiles `model` for `fit` with the recipe's optimizer, the loss (the answers' by default) and metrics."""
    model.compile(optimizer=make_optimizer(train), loss=loss_fn() if loss is None else loss, metrics=list(metrics),
                  jit_compile=bool(train.jit_compile))
    return model


def freeze(model, names):
    """Marks the named layers of `model` not trainable (`train.freeze`); a clear error for a name it lacks."""
    for name in names or ():
        try:
            model.get_layer(name).trainable = False
        except ValueError:
            raise ValueError(f"train.freeze: {model.name} has no layer {name!r}; its layers: "
                             f"{[layer.name for layer in model.layers]}.") from None
    return model


def compiled_model(recipe, **kwargs):
    """The recipe's model (`kwargs` replace builder arguments; `train.freeze`'s layers not trainable),
    compiled as every run compiles it."""
    return compile_for_training(freeze(recipe.build(**kwargs), recipe.train.freeze), recipe.train)


def float32_copy(model, recipe, **kwargs):
    """A plain float32 copy of a trained model (its weights are float32 already), outside any
    distribution strategy: published artifacts, their evaluation and exports run in float32,
    whatever precision the training steps used."""
    copy = recipe.build("float32", **kwargs)
    copy.set_weights(model.get_weights())
    return copy

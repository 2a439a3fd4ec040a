"""Learning-rate schedules of the recipes."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="relzoo_training")
class WarmupConstant(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from `peak / warmup_steps` to `peak` over `warmup_steps`, then constant.

    RN ports that plateaued early trained once a warm-up was added (DESIGN.md).
    A schedule, not a float, so that a resumed run takes a changed
    `train.learning_rate` (a float learning rate is restored from the checkpoint).
    """

    def __init__(self, peak, warmup_steps=0):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        if self.warmup_steps <= 0:
            return ops.full((), self.peak, "float32")
        return self.peak * ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps))

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps}


@keras.saving.register_keras_serializable(package="relzoo_training")
class WarmupCosine(WarmupConstant):
    """Linear warm-up to `peak`, then a half cosine down to `peak * final_fraction`.

    Steps count from the run's first step: the warm-up (WarmupConstant's) takes steps
    `0 .. warmup_steps - 1`, Keras's `CosineDecay` runs from `warmup_steps` to `decay_steps`, and
    the rate stays at `peak * final_fraction` afterwards. The last epochs of a continuation anneal
    with it.
    """

    def __init__(self, peak, warmup_steps, decay_steps, final_fraction=0.0):
        super().__init__(peak, warmup_steps)
        self.decay_steps = int(decay_steps)
        self.final_fraction = float(final_fraction)
        if self.decay_steps <= self.warmup_steps:
            raise ValueError(f"decay_steps ({self.decay_steps}) must exceed warmup_steps ({self.warmup_steps}).")
        if not 0.0 <= self.final_fraction <= 1.0:
            raise ValueError(f"final_fraction must be in [0, 1], got {self.final_fraction}.")
        self._cosine = keras.optimizers.schedules.CosineDecay(
            self.peak, self.decay_steps - self.warmup_steps, alpha=self.final_fraction)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        after_warmup = ops.maximum(step - float(self.warmup_steps), 0.0)
        return ops.where(step < float(self.warmup_steps), super().__call__(step), self._cosine(after_warmup))

    def get_config(self):
        return {**super().get_config(), "decay_steps": self.decay_steps, "final_fraction": self.final_fraction}

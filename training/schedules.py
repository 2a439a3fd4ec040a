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

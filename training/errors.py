"""The trainer's errors, each with its exit code (`python -m training.train` prints the message)."""


class TrainError(Exception):
    """A run that cannot go on; the message says what to change."""

    exit_code = 1


class RecipeError(TrainError, ValueError):
    """A recipe file, an override or an option is malformed or does not fit the model or data."""

    exit_code = 2


class NaNLossError(TrainError, RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 3


class CheckpointError(TrainError, RuntimeError):
    """The run folder's checkpoint cannot be read, or belongs to another run."""

    exit_code = 4

"""Zoo model builders: plain functions that take hyperparameters and return a `keras.Model`.

One file per family (`rn.py`, `rmc.py`), shared pieces in `blocks.py`. `BUILDERS` maps the
builder names that presets refer to onto the functions.
"""

from relzoo.models.rmc import build_lstm_sequence, build_rmc_sequence
from relzoo.models.rn import (build_cnn_mlp, build_rn_clevr_detect, build_rn_clevr_pixels, build_rn_clevr_state,
                              build_rn_pixels, build_rn_state)

BUILDERS = {
    "rn_state": build_rn_state,
    "rn_pixels": build_rn_pixels,
    "cnn_mlp": build_cnn_mlp,
    "rn_clevr_detect": build_rn_clevr_detect,
    "rn_clevr_pixels": build_rn_clevr_pixels,
    "rn_clevr_state": build_rn_clevr_state,
    "rmc_sequence": build_rmc_sequence,
    "lstm_sequence": build_lstm_sequence,
}


def get_builder(name):
    """The builder function registered as `name`; a clear error for an unknown one."""
    try:
        return BUILDERS[name]
    except KeyError:
        raise ValueError(f"Unknown model builder {name!r}; known builders: {sorted(BUILDERS)}.") from None


__all__ = [
    "BUILDERS",
    "build_cnn_mlp",
    "build_lstm_sequence",
    "build_rn_clevr_detect",
    "build_rn_clevr_pixels",
    "build_rn_clevr_state",
    "build_rmc_sequence",
    "build_rn_pixels",
    "build_rn_state",
    "get_builder",
]

"""FeatureMapObjects: a CNN feature map as a set of coordinate-tagged objects."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="relzoo")
class FeatureMapObjects(keras.layers.Layer):
    """Turns a feature map `(batch, h, w, c)` into objects `(batch, h*w, c+2)`.

    Each cell of the map becomes one object: its `c` features followed by its
    coordinates `(x, y)` in `[-1, 1]`, `x` along the width (column) and `y`
    along the height (row), `-1` at the first column / row and `+1` at the last.
    A map with a single column (or row) gets the coordinate 0 there. Objects are
    ordered row-major: object `r * w + col` is the cell at row `r`, column `col`.

    This is how the Relation Network of Santoro et al. 2017 ("A simple neural
    network module for relational reasoning") reads objects off the last conv
    layer: "each of the d^2 k-dimensional cells ... tagged with an arbitrary
    coordinate". No trainable weights.

    Call arguments:
        feature_map: float tensor `(batch, h, w, c)` (channels last).

    Returns:
        `(batch, h * w, c + 2)`.

    Example:

    >>> fmap = keras.Input((5, 5, 24))
    >>> FeatureMapObjects()(fmap).shape
    (None, 25, 26)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "FeatureMapObjects expects a channels-last feature map of shape (batch, h, w, c); "
                f"got shape {tuple(input_shape)}."
            )

    @staticmethod
    def _axis_coords(size, dtype):
        """`size` evenly spaced values in [-1, 1] (0 when size == 1), shape (size,)."""
        idx = ops.cast(ops.arange(size), dtype)
        denom = ops.maximum(ops.cast(size, dtype) - 1.0, 1.0)
        coords = idx * (2.0 / denom) - 1.0
        return ops.where(ops.cast(size, dtype) > 1.0, coords, ops.zeros_like(coords))

    def call(self, feature_map):
        x = ops.cast(feature_map, self.compute_dtype)
        shape = ops.shape(x)
        batch, h, w, c = shape[0], shape[1], shape[2], shape[3]
        xs = self._axis_coords(w, x.dtype)  # (w,)
        ys = self._axis_coords(h, x.dtype)  # (h,)
        grid_x = ops.broadcast_to(xs[None, :], (h, w))  # (h, w)
        grid_y = ops.broadcast_to(ys[:, None], (h, w))  # (h, w)
        coords = ops.stack([grid_x, grid_y], axis=-1)  # (h, w, 2)
        coords = ops.broadcast_to(coords[None], (batch, h, w, 2))  # (batch, h, w, 2)
        objects = ops.concatenate([x, coords], axis=-1)  # (batch, h, w, c + 2)
        return ops.reshape(objects, (batch, h * w, c + 2))  # (batch, h*w, c + 2)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        n = None if (h is None or w is None) else h * w
        return (b, n, None if c is None else c + 2)

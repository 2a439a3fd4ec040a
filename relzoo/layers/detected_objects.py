"""DetectedObjects: the cells of a map that hold an object, read out as state descriptions."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="relzoo")
class DetectedObjects(keras.layers.Layer):
    """Keeps the `max_objects` most object-like cells of a map and reads each out as a state row.

    Each cell of `cells` carries `1 + num_values + sum(groups)` numbers: an objectness logit,
    `num_values` real values (e.g. a 3D position) and one block of logits per attribute group
    (e.g. CLEVR's 8 colours, 3 shapes, 2 materials, 2 sizes). The layer takes the `max_objects`
    cells with the highest objectness, in that order, and returns for each its values followed
    by the softmax of each group: a row in the form of a state description (`[x, y, z,
    colour one-hot, ...]` becomes `[x, y, z, colour probabilities, ...]`), so that a relation
    module trained on state descriptions can read a pixel model's objects. A kept cell whose
    logit is not above `threshold` is masked out (its row is zeros and its mask False), so the
    number of objects is read off the image.

    The selection passes no gradient to the objectness logits (train them with a loss of their
    own, e.g. against the cells that hold an object's centre); the rows pass gradients to the
    values and attribute logits of the kept cells.

    Args:
        max_objects: how many cells to keep (at most the number of cells).
        groups: sizes of the attribute groups, each read out with a softmax.
        num_values: how many real values come before the groups (read out as they are).
        threshold: the objectness logit a kept cell must exceed to count as an object.

    Call arguments:
        cells: float `(batch, h, w, c)` or `(batch, n, c)` with `c = 1 + num_values + sum(groups)`.

    Returns:
        `(objects, mask)`: float `(batch, max_objects, num_values + sum(groups))` and bool
        `(batch, max_objects)`.

    Example:

    >>> cells = keras.Input((16, 16, 1 + 3 + 15))
    >>> objects, mask = DetectedObjects(10, groups=(8, 3, 2, 2), num_values=3)(cells)
    >>> objects.shape, mask.shape
    ((None, 10, 18), (None, 10))
    """

    def __init__(self, max_objects, groups=(), num_values=0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(max_objects, int) or isinstance(max_objects, bool) or max_objects < 1:
            raise ValueError(f"DetectedObjects: max_objects must be a positive int, got {max_objects!r}.")
        groups = tuple(groups)
        if any(not isinstance(g, int) or isinstance(g, bool) or g < 1 for g in groups):
            raise ValueError(f"DetectedObjects: groups must be positive ints, got {groups!r}.")
        if not isinstance(num_values, int) or isinstance(num_values, bool) or num_values < 0:
            raise ValueError(f"DetectedObjects: num_values must be an int >= 0, got {num_values!r}.")
        if not groups and not num_values:
            raise ValueError("DetectedObjects: a row needs at least one value or one group.")
        self.max_objects = max_objects
        self.groups = groups
        self.num_values = num_values
        self.threshold = float(threshold)
        self.row_dim = num_values + sum(groups)

    def build(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) not in (3, 4):
            raise ValueError(f"DetectedObjects expects cells (batch, h, w, c) or (batch, n, c); got shape {shape}.")
        if shape[-1] is not None and shape[-1] != 1 + self.row_dim:
            raise ValueError(f"DetectedObjects: each cell needs 1 + {self.num_values} + {sum(self.groups)} = "
                             f"{1 + self.row_dim} channels (objectness, values, groups {self.groups}); got "
                             f"{shape[-1]}.")
        cells = None if any(d is None for d in shape[1:-1]) else math.prod(shape[1:-1])
        if cells is not None and cells < self.max_objects:
            raise ValueError(f"DetectedObjects: cannot keep {self.max_objects} of {cells} cells.")

    def _rows(self, kept):
        """`(batch, k, 1 + row_dim)` kept cells -> `(batch, k, row_dim)` state rows."""
        parts = [kept[..., 1:1 + self.num_values]] if self.num_values else []
        start = 1 + self.num_values
        for size in self.groups:
            parts.append(ops.softmax(kept[..., start:start + size], axis=-1))
            start += size
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)

    def call(self, cells):
        x = ops.cast(cells, self.compute_dtype)
        shape = ops.shape(x)
        x = ops.reshape(x, (shape[0], -1, 1 + self.row_dim))  # (batch, n, 1 + row_dim)
        scores, order = ops.top_k(x[..., 0], self.max_objects)  # (batch, k), most object-like first
        index = ops.broadcast_to(order[..., None], (shape[0], self.max_objects, 1 + self.row_dim))
        kept = ops.take_along_axis(x, index, axis=1)  # (batch, k, 1 + row_dim)
        mask = scores > ops.cast(self.threshold, scores.dtype)  # (batch, k)
        rows = self._rows(kept) * ops.cast(mask, x.dtype)[..., None]  # (batch, k, row_dim)
        return rows, mask

    def compute_output_shape(self, input_shape):
        batch = input_shape[0]
        return (batch, self.max_objects, self.row_dim), (batch, self.max_objects)

    def compute_output_spec(self, cells):
        batch = cells.shape[0]
        return (keras.KerasTensor((batch, self.max_objects, self.row_dim), dtype=self.compute_dtype),
                keras.KerasTensor((batch, self.max_objects), dtype="bool"))

    def get_config(self):
        return {**super().get_config(), "max_objects": self.max_objects, "groups": list(self.groups),
                "num_values": self.num_values, "threshold": self.threshold}


__all__ = ["DetectedObjects"]

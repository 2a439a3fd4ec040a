"""PairwiseRelation: the Relation Network core, `sum_ij g(o_i, o_j, q)`."""

import keras
from keras import ops

AGGREGATIONS = ("sum", "mean", "max")


@keras.saving.register_keras_serializable(package="relzoo")
class PairwiseRelation(keras.layers.Layer):
    """Applies an MLP `g` to every ordered pair of objects and aggregates.

    The Relation Network module of Santoro et al. 2017, "A simple neural network
    module for relational reasoning" (arXiv:1706.01427):
    `RN(O, q) = agg_{i,j} g([o_i; o_j; q])`. The readout MLP `f` is not part of
    this layer; put it after.

    The first layer of `g` is decomposed: its kernel `W` (shape `(2d + c, h)`,
    exactly the kernel a `Dense` on the concatenated pair would have) is split
    into `A = W[:d]`, `B = W[d:2d]`, `C = W[2d:]`, so the first pre-activation is
    `A o_i + B o_j + C q + b`. Each object is projected once (`O(n d h)`), and the
    `(batch, n, n, 2d + c)` concatenation is never built. With `chunk_size`,
    rows `i` are processed in blocks and each block is recomputed in the
    backward pass (`keras.remat`), so peak memory grows with
    `chunk_size * n` instead of `n * n`, in training too.

    Padded objects contribute exactly nothing: a pair `(i, j)` counts only when
    both objects are unmasked (and `i != j` when `self_pairs=False`). Padded
    objects are zeroed first and invalid pairs removed with `where`, so even
    non-finite padding values reach neither the output nor the gradients.

    Args:
        g_units: sequence of ints, the widths of the layers of `g`. The last one
            is the output width `units`. The RN paper uses `(256,) * 4` on
            Sort-of-CLEVR and CLEVR pixels.
        activation: activation of every layer of `g` (the paper: `"relu"`).
        activate_output: whether the last layer of `g` has the activation too
            (the paper: yes). If False, it is linear.
        aggregation: `"sum"` (the paper), `"mean"` (over valid pairs) or `"max"`.
            A set with no valid pair aggregates to zeros.
        per_object: if True, aggregate over `j` only and return one vector per
            object, `(batch, n, units)`, for message passing; rows of masked
            objects are zeros, and the object mask is propagated (Keras masking).
        self_pairs: whether the pairs `(i, i)` are included (the paper: yes).
        chunk_size: optional int; process rows `i` in blocks of this many and
            rematerialise each block in the backward pass. Needs a static
            number of objects. `None` processes all pairs at once (fastest).
        use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer: as in `keras.layers.Dense`, for every layer of `g`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        objects: float tensor `(batch, n, d)`.
        condition: optional float tensor `(batch, c)`, e.g. a question
            embedding, appended to every pair. Whether a condition is used is
            fixed by the first call (it sizes the kernel).
        mask: optional boolean tensor `(batch, n)`; `False` marks padding.
            Filled in automatically from Keras masking (`Masking`,
            `Embedding(mask_zero=True)`); when `condition` is passed too,
            Keras fills `objects_mask` instead, which is treated the same way.
        training: unused, for API symmetry.

    Returns:
        `(batch, units)`, or `(batch, n, units)` with `per_object=True`, in
        `accumulation_dtype`.

    Precision: under a mixed policy (`mixed_bfloat16`, `mixed_float16`) `g`
    runs in the 16-bit compute dtype, but the aggregation accumulates, and the
    layer returns, float32 (`accumulation_dtype`). bfloat16 keeps 8 bits of
    mantissa: in a sum of n * n = 625 pair outputs the part one object adds is
    smaller than the rounding step, so counts and comparisons would be lost.
    Give the layers after it (`f`) `dtype="float32"` too, or Keras casts their
    input back to the 16-bit compute dtype.

    Example:

    >>> objects = keras.Input((25, 26))
    >>> question = keras.Input((18,))
    >>> rel = PairwiseRelation(g_units=(256, 256, 256, 256))(objects, question)
    >>> rel.shape
    (None, 256)
    """

    def __init__(
        self,
        g_units=(256, 256, 256, 256),
        activation="relu",
        activate_output=True,
        aggregation="sum",
        per_object=False,
        self_pairs=True,
        chunk_size=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        g_units = tuple(int(u) for u in (g_units if isinstance(g_units, (list, tuple)) else [g_units]))
        if not g_units or any(u <= 0 for u in g_units):
            raise ValueError(
                f"PairwiseRelation: g_units must be a non-empty sequence of positive ints, got {g_units!r}."
            )
        if aggregation not in AGGREGATIONS:
            raise ValueError(
                f"PairwiseRelation: aggregation must be one of {AGGREGATIONS}, got {aggregation!r}."
            )
        if chunk_size is not None and int(chunk_size) <= 0:
            raise ValueError(f"PairwiseRelation: chunk_size must be a positive int or None, got {chunk_size!r}.")
        self.g_units = g_units
        self.units = g_units[-1]
        self.activation = keras.activations.get(activation)
        self.activate_output = bool(activate_output)
        self.aggregation = aggregation
        self.per_object = bool(per_object)
        self.self_pairs = bool(self_pairs)
        self.chunk_size = None if chunk_size is None else int(chunk_size)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.supports_masking = True

    @property
    def accumulation_dtype(self):
        """The dtype of the aggregation and the output: float32 when computing in 16 bits."""
        return "float32" if self.compute_dtype in ("bfloat16", "float16") else self.compute_dtype

    # ------------------------------------------------------------------ build
    def build(self, objects_shape, condition_shape=None, objects_mask_shape=None):
        if len(objects_shape) != 3:
            raise ValueError(
                f"PairwiseRelation expects objects of shape (batch, n, d); got shape {tuple(objects_shape)}."
            )
        d = objects_shape[-1]
        if d is None:
            raise ValueError("PairwiseRelation: the object feature size (last axis) must be known.")
        if self.chunk_size is not None and objects_shape[1] is None:
            raise ValueError(
                "PairwiseRelation: chunk_size needs a static number of objects (axis 1 of objects); "
                "got a dynamic one. Build the model with a fixed number of objects or set chunk_size=None."
            )
        c = 0
        if condition_shape is not None:
            if len(condition_shape) != 2 or condition_shape[-1] is None:
                raise ValueError(
                    "PairwiseRelation expects the condition of shape (batch, c) with a known c; "
                    f"got shape {tuple(condition_shape)}."
                )
            c = condition_shape[-1]
        self.object_dim = int(d)
        self.condition_dim = int(c)
        h = self.g_units[0]
        # One kernel for the first layer of g, exactly as a Dense on [o_i; o_j; q].
        self.pair_kernel = self.add_weight(
            name="pair_kernel",
            shape=(2 * self.object_dim + self.condition_dim, h),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.pair_bias = None
        if self.use_bias:
            self.pair_bias = self.add_weight(
                name="pair_bias", shape=(h,), initializer=self.bias_initializer, regularizer=self.bias_regularizer
            )
        # Layers 2..L of g act on the (pairs, h) matrix.
        self.g_kernels, self.g_biases = [], []
        width = h
        for k, units in enumerate(self.g_units[1:], start=1):
            self.g_kernels.append(
                self.add_weight(
                    name=f"g_{k}_kernel",
                    shape=(width, units),
                    initializer=self.kernel_initializer,
                    regularizer=self.kernel_regularizer,
                )
            )
            if self.use_bias:
                self.g_biases.append(
                    self.add_weight(
                        name=f"g_{k}_bias", shape=(units,), initializer=self.bias_initializer, regularizer=self.bias_regularizer
                    )
                )
            width = units

    # ------------------------------------------------------------------- call
    def _first_layer_parts(self, objects, condition):
        """Per-object projections: left `(b, n, h)`, right `(b, n, h)`, shared `(b, h)` or None."""
        d = self.object_dim
        kernel = ops.cast(self.pair_kernel, objects.dtype)
        left = ops.matmul(objects, kernel[:d])  # (batch, n, h)  A o_i
        right = ops.matmul(objects, kernel[d : 2 * d])  # (batch, n, h)  B o_j
        shared = None
        if self.condition_dim:
            shared = ops.matmul(condition, kernel[2 * d :])  # (batch, h)  C q
        if self.pair_bias is not None:
            bias = ops.cast(self.pair_bias, objects.dtype)
            shared = bias[None, :] if shared is None else shared + bias
        if shared is None:
            shared = ops.zeros((1, self.g_units[0]), dtype=objects.dtype)
        return left, right, shared

    def _activation_of(self, layer_index):
        """The activation after layer `layer_index` of g (0-based), or None."""
        last = layer_index == len(self.g_units) - 1
        return self.activation if (self.activate_output or not last) else None

    def _rows(self, left_rows, right, shared, valid_rows, *weights):
        """g over the pairs (i in block, all j), aggregated over j.

        left_rows: (b, r, h); right: (b, n, h); shared: (b or 1, h);
        valid_rows: (b, r, n) float, 1 where the pair counts (float, not bool,
            so that `keras.remat` can differentiate through the block's inputs),
            or None when every pair counts;
        weights: the kernels (and biases) of layers 2..L of g, passed in rather
            than read from variables so rematerialisation differentiates them
            the same way on every backend.
        Returns (b, r, units): the per-row sum, or max, of g over valid j.
        """
        r = ops.shape(left_rows)[1]
        n = ops.shape(right)[1]
        pre = left_rows[:, :, None, :] + right[:, None, :, :] + shared[:, None, None, :]  # (b, r, n, h)
        act = self._activation_of(0)
        x = act(pre) if act is not None else pre
        x = ops.reshape(x, (-1, self.g_units[0]))  # (b * r * n, h)
        step = 2 if self.use_bias else 1
        for k in range(len(self.g_units) - 1):
            x = ops.matmul(x, weights[step * k])
            if self.use_bias:
                x = x + weights[step * k + 1]
            act = self._activation_of(k + 1)
            if act is not None:
                x = act(x)
        # sums over many pairs in float32 (see `accumulation_dtype`)
        x = ops.cast(ops.reshape(x, (-1, r, n, self.units)), self.accumulation_dtype)  # (b, r, n, units)
        if valid_rows is None:  # every pair counts: no masking passes over the pair tensor
            return ops.max(x, axis=2) if self.aggregation == "max" else ops.sum(x, axis=2)  # (b, r, units)
        valid = valid_rows[..., None] > 0.5  # (b, r, n, 1)
        if self.aggregation == "max":
            return ops.max(ops.where(valid, x, ops.full_like(x, float("-inf"))), axis=2)  # (b, r, units)
        return ops.sum(ops.where(valid, x, ops.zeros_like(x)), axis=2)  # (b, r, units)

    def _chunked_rows(self, left, right, shared, pair_valid, weights, n):
        """`_rows` over blocks of `chunk_size` rows in a loop, each block rematerialised.

        A real loop, not a Python loop: XLA would merge a Python loop's
        recomputation back into the forward pass (common-subexpression
        elimination) and keep every block's activations alive.
        """
        c = self.chunk_size
        k = -(-n // c)  # number of blocks
        pad = k * c - n
        if pad:  # extra rows are cut off below (and count no pairs)
            left = ops.pad(left, [(0, 0), (0, pad), (0, 0)])
            if pair_valid is not None:
                pair_valid = ops.pad(pair_valid, [(0, 0), (0, pad), (0, 0)])
        h = self.g_units[0]
        left_blocks = ops.transpose(ops.reshape(left, (-1, k, c, h)), (1, 0, 2, 3))  # (k, b, c, h)
        if pair_valid is None:
            block = keras.remat(lambda lb, r, s, *w: self._rows(lb, r, s, None, *w))
            blocks = (left_blocks,)
        else:
            block = keras.remat(self._rows)
            blocks = (left_blocks, ops.transpose(ops.reshape(pair_valid, (-1, k, c, n)), (1, 0, 2, 3)))  # + (k, b, c, n)

        def run_block(xs):
            return block(xs[0], right, shared, *xs[1:], *weights)  # (b, c, units)

        if keras.backend.backend() == "tensorflow":
            # A while loop with a fixed trip count: XLA needs `maximum_iterations`
            # to differentiate it (Keras's TF `scan` does not set it).
            def cond(i, acc):
                return i < k

            def body(i, acc):
                y = run_block([ops.take(x, i, axis=0) for x in blocks])
                here = ops.reshape(ops.arange(k) == i, (k, 1, 1, 1))
                return i + 1, ops.where(here, y[None], acc)  # write block i, exactly

            acc = ops.zeros((k, ops.shape(left)[0], c, self.units), self.accumulation_dtype)
            _, out = ops.while_loop(cond, body, (0, acc), maximum_iterations=k)  # (k, b, c, units)
        else:
            # JAX: `scan` is reverse-differentiable (its `while_loop` is not).
            def scan_body(carry, xs):
                y = run_block(xs)
                return y, y  # carry shaped like the output, as Keras's scan wants on every backend

            init = ops.zeros((ops.shape(left)[0], c, self.units), self.accumulation_dtype)
            _, out = ops.scan(scan_body, init, blocks)  # (k, b, c, units)
        out = ops.reshape(ops.transpose(out, (1, 0, 2, 3)), (-1, k * c, self.units))  # (b, k*c, units)
        return out[:, :n]

    def call(self, objects, condition=None, mask=None, objects_mask=None, training=None):
        objects = ops.cast(objects, self.compute_dtype)
        if (condition is None) != (self.condition_dim == 0):
            raise ValueError(
                "PairwiseRelation was built "
                + ("with" if self.condition_dim else "without")
                + " a condition input; call it the same way every time."
            )
        if condition is not None:
            condition = ops.cast(condition, self.compute_dtype)
        if mask is None:
            mask = objects_mask
        n = ops.shape(objects)[1]

        obj_valid = None
        if mask is not None:
            obj_valid = ops.cast(mask, "bool")  # (batch, n)
            if len(obj_valid.shape) != 2:
                raise ValueError(f"PairwiseRelation expects a mask of shape (batch, n); got shape {obj_valid.shape}.")
            # Zero the padding before any arithmetic: `where` below keeps padded
            # pairs out of the forward pass, and this keeps non-finite padding
            # out of the weight gradients (x^T dy with x = NaN, dy = 0 is NaN).
            objects = ops.where(obj_valid[:, :, None], objects, ops.zeros_like(objects))
        left, right, shared = self._first_layer_parts(objects, condition)
        batch = ops.shape(objects)[0]
        pair_valid = self._pair_validity(obj_valid, n)  # (b or 1, n, n) bool, or None: all pairs count
        if pair_valid is not None:
            pair_valid = ops.cast(ops.broadcast_to(pair_valid, (batch, n, n)), objects.dtype)  # (b, n, n), 1 = counts

        weights = []
        for k, kernel in enumerate(self.g_kernels):
            weights.append(ops.cast(kernel, objects.dtype))
            if self.use_bias:
                weights.append(ops.cast(self.g_biases[k], objects.dtype))
        if self.chunk_size is None or (isinstance(n, int) and self.chunk_size >= n):
            rows = self._rows(left, right, shared, pair_valid, *weights)  # (b, n, units)
        else:
            if not isinstance(n, int):
                raise ValueError("PairwiseRelation: chunk_size needs a static number of objects (axis 1 of objects).")
            rows = self._chunked_rows(left, right, shared, pair_valid, weights, n)  # (b, n, units)

        if pair_valid is None:  # every row has n pairs, every set n * n
            if self.per_object:
                return rows / ops.cast(n, rows.dtype) if self.aggregation == "mean" else rows  # (b, n, units)
            if self.aggregation == "max":
                return ops.max(rows, axis=1)  # (b, units)
            total = ops.sum(rows, axis=1)  # (b, units)
            return total / ops.cast(n * n, rows.dtype) if self.aggregation == "mean" else total

        counts = ops.sum(ops.cast(pair_valid, rows.dtype), axis=2)  # (b, n) valid j per row i
        if self.per_object:
            has_pair = counts > 0
            if self.aggregation == "mean":
                rows = rows / ops.maximum(counts, 1.0)[..., None]
            return ops.where(has_pair[..., None], rows, ops.zeros_like(rows))  # (b, n, units)

        if self.aggregation == "max":
            total = ops.max(rows, axis=1)  # (b, units); -inf where no valid pair at all
            any_pair = ops.sum(counts, axis=1) > 0
            return ops.where(any_pair[:, None], total, ops.zeros_like(total))
        total = ops.sum(rows, axis=1)  # (b, units)
        if self.aggregation == "mean":
            total = total / ops.maximum(ops.sum(counts, axis=1), 1.0)[:, None]
        return total

    def _pair_validity(self, obj_valid, n):
        """Boolean (b or 1, n, n): which ordered pairs (i, j) count; None when all of them do."""
        valid = None
        if obj_valid is not None:
            valid = ops.logical_and(obj_valid[:, :, None], obj_valid[:, None, :])  # (b, n, n)
        if not self.self_pairs:
            off_diag = ops.logical_not(ops.cast(ops.eye(n), "bool"))[None]  # (1, n, n)
            valid = off_diag if valid is None else ops.logical_and(valid, off_diag)
        return valid

    # ---------------------------------------------------------------- helpers
    def compute_mask(self, objects, mask=None):
        if not self.per_object:
            return None
        return mask

    def compute_output_shape(self, objects_shape, condition_shape=None, objects_mask_shape=None):
        if self.per_object:
            return (objects_shape[0], objects_shape[1], self.units)
        return (objects_shape[0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "g_units": list(self.g_units),
                "activation": keras.activations.serialize(self.activation),
                "activate_output": self.activate_output,
                "aggregation": self.aggregation,
                "per_object": self.per_object,
                "self_pairs": self.self_pairs,
                "chunk_size": self.chunk_size,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            }
        )
        return config

"""RelationalMemoryCell: the Relational Memory Core (RMC) as a Keras 3 RNN cell."""

import numpy as np

import keras
from keras import ops

GATE_STYLES = ("unit", "memory", None)


def _positive_int(cls_name, name, value, minimum=1):
    """`int(value)`, or a ValueError that says what was expected."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ValueError(f"{cls_name}: {name} must be an int >= {minimum}, got {value!r}.")
    return int(value)


@keras.saving.register_keras_serializable(package="relzoo")
class RelationalMemoryCell(keras.layers.Layer):
    """The Relational Memory Core of Santoro et al. 2018, as an RNN cell.

    "Relational recurrent neural networks" (arXiv:1806.01822). The state is a
    memory of `mem_slots` rows of `mem_size = num_heads * head_size` features.
    At each step the input is projected to one extra row, the rows attend to
    each other (multi-head dot-product attention), and the result is written
    back through LSTM-style gates:

    1. `x_proj = x W_x + b_x`, `(batch, mem_size)`;
       `m = concat([memory, x_proj[:, None]], axis=1)`, `(batch, mem_slots + 1, mem_size)`.
    2. `num_blocks` times, each block with its own weights:
       `m = LN(m + MHDPA(m))`, then `m = LN(m + MLP(m))`.
       `MHDPA`: one bias-free projection `m W_qkv` of width
       `num_heads * (2 * key_size + head_size)` whose columns are, per head
       `h`, `[q_h (key_size), k_h (key_size), v_h (head_size)]` (head `h`
       owns columns `h * (2 * key_size + head_size)` onwards); the attention
       weights are `softmax_rows(q_h k_h^T / sqrt(key_size))`, the head output is
       `weights @ v_h`, and the heads are concatenated back to `mem_size`.
       `MLP`: `attention_mlp_layers` Dense layers of width `mem_size` with
       ReLU between them and none after the last (as Sonnet's `snt.nets.MLP`
       with `activate_final=False`), so its output can be negative before the
       residual and LayerNorm. `LN` is a layer normalisation over features
       with its own scale and offset.
       Then the input row is dropped: `new = m[:, :-1]`.
    3. Gates (`gate_style` "unit": one gate per feature; "memory": one per
       slot), computed from the raw step input and the previous memory:
       `g = (x W_gi + b_gi)[:, None] + tanh(memory) W_gm + b_gm`, split in
       half into `i, f`; `i = sigmoid(i + input_bias)`,
       `f = sigmoid(f + forget_bias)`;
       `next_memory = i * tanh(new) + f * memory`.
       With `gate_style=None`, `next_memory = new`.
    4. The output and the new state are `next_memory` flattened (followed
       by the last block's attention weights with `return_attention=True`).

    The memory starts as the identity matrix of size `mem_slots`, padded with
    zero columns or cut to `mem_size` columns (`get_initial_state`), so each
    slot starts distinct; `keras.layers.RNN` uses it when no
    `initial_state` is passed, and for the state variables of `stateful=True`.
    Note that `keras.layers.RNN.reset_state()` fills the state variables with
    zeros, not with this identity; to restart a stateful RNN from the identity,
    assign it: `for v, s in zip(rnn.states, rnn.get_initial_state(batch)):
    v.assign(s)`.

    Differences from Sonnet v1's `RelationalMemory` (the paper's code): the
    query/key/value projection here has no bias and no LayerNorm on its
    output, the gates read the raw input `x` (as the paper's equations do)
    rather than its `mem_size` projection, and each block has its own MLP (in
    Sonnet the blocks share one). Dropout is not implemented.

    Args:
        mem_slots: int >= 1, the number of memory rows. The paper uses 8 or 16
            on N-th farthest (with ~2048 memory units in total).
        head_size: int >= 1, the value size of one attention head; the memory
            width is `mem_size = num_heads * head_size`.
        num_heads: int >= 1, the number of attention heads.
        num_blocks: int >= 1, rounds of attention + MLP per step, each on the
            output of the previous round, each with its own weights.
        forget_bias: float added to the forget gate's pre-activation (1.0, as
            for LSTMs, makes the cell keep its memory at the start of training).
        input_bias: float added to the input gate's pre-activation.
        gate_style: `"unit"` (a gate per memory feature), `"memory"` (a gate
            per memory slot) or `None` (no gating: the attended memory is the
            next memory).
        attention_mlp_layers: int >= 1, Dense layers in each block's MLP.
        key_size: int >= 1, the query/key size of one head; `None` means
            `head_size`.
        return_attention: if True, the cell's output (and state) also carries
            the attention weights of the last block (see "Returns"); use
            `split_output` to take them apart.
        layer_norm_epsilon: float added to the variance in the LayerNorms.
        kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer: as in `keras.layers.Dense`, for every projection
            (the input projection, the query/key/value projection, the MLPs and
            both gate projections). The LayerNorms start at scale 1, offset 0.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).
            Under a 16-bit policy such as `"mixed_bfloat16"` the projections
            run in that dtype, the LayerNorm statistics and the attention
            softmax in float32, and the weights stay float32.

    Call arguments:
        inputs: float tensor `(batch, input_dim)`, one time step.
        states: a list holding one float tensor `(batch, state_size)` whose
            first `mem_slots * mem_size` columns are the flattened memory (a
            bare tensor is accepted too).
        training: unused (no dropout), for API symmetry.

    Returns:
        `(output, [output])`: the output is also the next state.
        With `return_attention=False` (the default) it is the next memory
        flattened (row-major), `(batch, mem_slots * mem_size)`, and
        `output_size == state_size == mem_slots * mem_size`.
        With `return_attention=True` it is
        `concat([next_memory_flat, attention_flat], axis=-1)`, where
        `attention_flat` is the last block's attention weights
        `(batch, num_heads, mem_slots + 1, mem_slots + 1)` (head, query row,
        key row; row and column `mem_slots` are the input row) flattened, so
        `output_size == state_size == mem_slots * mem_size + num_heads * (mem_slots + 1) ** 2`.
        The attention travels in the state too, as a payload the next step
        ignores (it reads only the memory columns): Keras's JAX `rnn` takes
        the first state as the previous output on masked steps, so the state
        must be shaped like the output for masking to work on every backend.
        The initial state's attention columns are zeros.
        `split_output(x)` turns an output or state (of the cell, or of the
        `RNN`, with or without `return_sequences`) into
        `(memory (..., mem_slots, mem_size), attention (..., num_heads, mem_slots + 1, mem_slots + 1))`.

    Example:

    >>> cell = RelationalMemoryCell(mem_slots=4, head_size=8, num_heads=2)
    >>> seq = keras.Input((10, 6))
    >>> keras.layers.RNN(cell, return_sequences=True)(seq).shape
    (None, 10, 64)
    >>> cell = RelationalMemoryCell(mem_slots=4, head_size=8, return_attention=True)
    >>> out = keras.layers.RNN(cell)(np.ones((2, 10, 6), "float32"))
    >>> memory, attention = cell.split_output(out)
    >>> tuple(memory.shape), tuple(attention.shape)
    ((2, 4, 8), (2, 1, 5, 5))
    """

    def __init__(
        self,
        mem_slots,
        head_size,
        num_heads=1,
        num_blocks=1,
        forget_bias=1.0,
        input_bias=0.0,
        gate_style="unit",
        attention_mlp_layers=2,
        key_size=None,
        return_attention=False,
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.mem_slots = _positive_int(name, "mem_slots", mem_slots)
        self.head_size = _positive_int(name, "head_size", head_size)
        self.num_heads = _positive_int(name, "num_heads", num_heads)
        self.num_blocks = _positive_int(name, "num_blocks", num_blocks)
        self.attention_mlp_layers = _positive_int(name, "attention_mlp_layers", attention_mlp_layers)
        self.key_size = self.head_size if key_size is None else _positive_int(name, "key_size", key_size)
        if gate_style not in GATE_STYLES:
            raise ValueError(f"{name}: gate_style must be one of {GATE_STYLES}, got {gate_style!r}.")
        self.gate_style = gate_style
        self.forget_bias = float(forget_bias)
        self.input_bias = float(input_bias)
        self.return_attention = bool(return_attention)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        if not self.layer_norm_epsilon > 0:
            raise ValueError(f"{name}: layer_norm_epsilon must be > 0, got {layer_norm_epsilon!r}.")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)

        self.mem_size = self.num_heads * self.head_size
        self.memory_units = self.mem_slots * self.mem_size
        self.attention_units = self.num_heads * (self.mem_slots + 1) ** 2
        # Keras 3's RNN wants integer sizes: the memory travels flattened.
        # The state is the output (see the class docstring, "Returns").
        self.output_size = self.memory_units + (self.attention_units if self.return_attention else 0)
        self.state_size = self.output_size
        gate_width = {"unit": self.mem_size, "memory": 1, None: 0}[self.gate_style]
        self.num_gates = 2 * gate_width

    # ------------------------------------------------------------------ build
    def _kernel(self, name, shape):
        return self.add_weight(
            name=name, shape=shape, initializer=self.kernel_initializer, regularizer=self.kernel_regularizer
        )

    def _bias(self, name, units):
        return self.add_weight(
            name=name, shape=(units,), initializer=self.bias_initializer, regularizer=self.bias_regularizer
        )

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} expects one time step of shape (batch, input_dim) with a known "
                f"input_dim (sequences of shape (batch, time, input_dim) in keras.layers.RNN); "
                f"got shape {tuple(input_shape)}."
            )
        input_dim = int(input_shape[-1])
        m = self.mem_size
        qkv_units = self.num_heads * (2 * self.key_size + self.head_size)
        self.input_projection_kernel = self._kernel("input_projection_kernel", (input_dim, m))
        self.input_projection_bias = self._bias("input_projection_bias", m)
        self.blocks = []
        for b in range(self.num_blocks):
            block = {"qkv_kernel": self._kernel(f"block_{b}_qkv_kernel", (m, qkv_units))}
            block["attention_norm"] = self._layer_norm_weights(f"block_{b}_attention_norm")
            block["mlp"] = [
                (self._kernel(f"block_{b}_mlp_{k}_kernel", (m, m)), self._bias(f"block_{b}_mlp_{k}_bias", m))
                for k in range(self.attention_mlp_layers)
            ]
            block["mlp_norm"] = self._layer_norm_weights(f"block_{b}_mlp_norm")
            self.blocks.append(block)
        if self.num_gates:
            self.gate_input_kernel = self._kernel("gate_input_kernel", (input_dim, self.num_gates))
            self.gate_input_bias = self._bias("gate_input_bias", self.num_gates)
            self.gate_memory_kernel = self._kernel("gate_memory_kernel", (m, self.num_gates))
            self.gate_memory_bias = self._bias("gate_memory_bias", self.num_gates)

    def _layer_norm_weights(self, name):
        gamma = self.add_weight(name=f"{name}_gamma", shape=(self.mem_size,), initializer="ones")
        beta = self.add_weight(name=f"{name}_beta", shape=(self.mem_size,), initializer="zeros")
        return gamma, beta

    # ------------------------------------------------------------ the state
    def initial_memory(self):
        """The initial memory of one sequence, a numpy array `(mem_slots, mem_size)`.

        The identity of size `mem_slots`, padded with zero columns when
        `mem_size > mem_slots` or cut to its first `mem_size` columns when
        `mem_size < mem_slots`.
        """
        return np.eye(self.mem_slots, self.mem_size, dtype="float32")

    def get_initial_state(self, batch_size=None):
        """`[state]`: the identity memory (see `initial_memory`) flattened and tiled over the batch.

        `state` is `(batch_size, state_size)`: the memory, then (with
        `return_attention=True`) zeros in the attention columns.
        `keras.layers.RNN` calls this when no `initial_state` is given.
        """
        flat = np.zeros((self.state_size,), "float32")
        flat[: self.memory_units] = self.initial_memory().reshape(-1)
        flat = ops.convert_to_tensor(flat, dtype=self.compute_dtype)
        return [ops.zeros((batch_size, self.state_size), dtype=self.compute_dtype) + flat[None, :]]

    def split_output(self, output):
        """Splits an output of this cell (or of its `RNN`) into memory and attention.

        Args:
            output: tensor `(..., output_size)`: a cell output or state
                `(batch, output_size)`, an `RNN` output or state
                `(batch, output_size)` or, with `return_sequences=True`,
                `(batch, time, output_size)`. A memory alone,
                `(..., mem_slots * mem_size)`, works too.

        Returns:
            `(memory, attention)`: `memory` is `(..., mem_slots, mem_size)`;
            `attention` is the last block's attention weights
            `(..., num_heads, mem_slots + 1, mem_slots + 1)` (head, query row,
            key row; each row sums to 1; row and column `mem_slots` are the
            input row), or None when the cell was built with
            `return_attention=False` or `output` is a memory alone.
        """
        output = ops.convert_to_tensor(output)
        width = output.shape[-1]
        if width not in (self.memory_units, self.output_size):
            raise ValueError(
                f"{type(self).__name__}.split_output expects a last axis of {self.output_size} (an output) "
                f"or {self.memory_units} (a memory); got shape {tuple(output.shape)}."
            )
        memory = self._unflatten(output[..., : self.memory_units], (self.mem_slots, self.mem_size))
        if width == self.memory_units:
            return memory, None
        n = self.mem_slots + 1
        attention = self._unflatten(output[..., self.memory_units :], (self.num_heads, n, n))
        return memory, attention

    @staticmethod
    def _unflatten(x, trailing):
        """Reshapes the last axis of `x` to `trailing`, keeping the leading axes."""
        lead = list(ops.shape(x)[:-1])
        if sum(1 for d in lead if d is None) <= 1:
            return ops.reshape(x, [-1 if d is None else d for d in lead] + list(trailing))
        # Symbolic, with an unknown batch and an unknown time axis: a Reshape
        # layer keeps the batch axis aside and allows one -1 in the rest.
        rest = [-1 if d is None else d for d in lead[1:]]
        return keras.layers.Reshape(tuple(rest) + tuple(trailing))(x)

    # ------------------------------------------------------------------- call
    @staticmethod
    def _dense(x, kernel, bias=None):
        """`x @ kernel + bias` over the last axis of a rank-2 or rank-3 `x`.

        A rank-3 `x` is multiplied as a matrix `(batch * rows, features)`:
        TensorFlow would use `tensordot` for `(b, n, f) @ (f, u)`, whose
        gradient inside the RNN's while loop does not compile with XLA.
        """
        kernel = ops.cast(kernel, x.dtype)
        if len(x.shape) == 3:
            n = ops.shape(x)[1]
            y = ops.matmul(ops.reshape(x, (-1, ops.shape(x)[2])), kernel)  # (batch * n, units)
            y = ops.reshape(y, (-1, n, kernel.shape[-1]))  # (batch, n, units)
        else:
            y = ops.matmul(x, kernel)
        return y if bias is None else y + ops.cast(bias, x.dtype)

    def _layer_norm(self, x, weights):
        """LayerNorm over features; the statistics in float32 under a 16-bit policy."""
        gamma, beta = weights
        dtype = x.dtype
        x = ops.cast(x, "float32")
        mean = ops.mean(x, axis=-1, keepdims=True)
        var = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
        x = (x - mean) * ops.rsqrt(var + self.layer_norm_epsilon)
        return ops.cast(x * ops.cast(gamma, "float32") + ops.cast(beta, "float32"), dtype)

    def _attention(self, memory, qkv_kernel):
        """Multi-head dot-product attention of the rows of `memory` over each other.

        Returns `(attended (batch, n, mem_size), weights (batch, heads, n, n))`.
        """
        n = ops.shape(memory)[1]
        h, k, v = self.num_heads, self.key_size, self.head_size
        qkv = self._dense(memory, qkv_kernel)  # (batch, n, h * (2k + v))
        qkv = ops.reshape(qkv, (-1, n, h, 2 * k + v))  # (batch, n, h, 2k + v)
        qkv = ops.transpose(qkv, (0, 2, 1, 3))  # (batch, h, n, 2k + v)
        q = qkv[..., :k] * (k**-0.5)  # (batch, h, n, k)
        key = qkv[..., k : 2 * k]  # (batch, h, n, k)
        value = qkv[..., 2 * k :]  # (batch, h, n, v)
        logits = ops.matmul(q, ops.swapaxes(key, -1, -2))  # (batch, h, n, n)
        weights = ops.softmax(ops.cast(logits, "float32"), axis=-1)  # rows: queries; columns: keys
        weights = ops.cast(weights, value.dtype)
        out = ops.matmul(weights, value)  # (batch, h, n, v)
        out = ops.transpose(out, (0, 2, 1, 3))  # (batch, n, h, v)
        return ops.reshape(out, (-1, n, h * v)), weights  # (batch, n, mem_size)

    def _mlp(self, x, layers):
        for k, (kernel, bias) in enumerate(layers):
            x = self._dense(x, kernel, bias)
            if k < len(layers) - 1:  # ReLU between layers, none after the last
                x = ops.relu(x)
        return x

    def call(self, inputs, states, training=False):
        inputs = ops.cast(inputs, self.compute_dtype)
        state = states[0] if isinstance(states, (list, tuple)) else states
        state = ops.cast(state, self.compute_dtype)
        if self.return_attention:  # the previous attention rides along in the state, unused
            state = state[:, : self.memory_units]
        memory = ops.reshape(state, (-1, self.mem_slots, self.mem_size))  # (batch, slots, mem_size)

        x_proj = self._dense(inputs, self.input_projection_kernel, self.input_projection_bias)  # (batch, mem_size)
        mem_plus = ops.concatenate([memory, x_proj[:, None, :]], axis=1)  # (batch, slots + 1, mem_size)
        weights = None
        for block in self.blocks:
            attended, weights = self._attention(mem_plus, block["qkv_kernel"])
            mem_plus = self._layer_norm(mem_plus + attended, block["attention_norm"])
            mem_plus = self._layer_norm(mem_plus + self._mlp(mem_plus, block["mlp"]), block["mlp_norm"])
        next_memory = mem_plus[:, :-1, :]  # (batch, slots, mem_size): the input row dropped

        if self.num_gates:
            gate_inputs = self._dense(inputs, self.gate_input_kernel, self.gate_input_bias)  # (batch, gates)
            gate_memory = self._dense(
                ops.tanh(memory), self.gate_memory_kernel, self.gate_memory_bias
            )  # (batch, slots, gates)
            gates = gate_memory + gate_inputs[:, None, :]  # (batch, slots, gates)
            half = self.num_gates // 2
            input_gate = ops.sigmoid(gates[..., :half] + self.input_bias)  # (batch, slots, mem_size or 1)
            forget_gate = ops.sigmoid(gates[..., half:] + self.forget_bias)
            next_memory = input_gate * ops.tanh(next_memory) + forget_gate * memory

        output = ops.reshape(next_memory, (-1, self.memory_units))  # (batch, slots * mem_size)
        if self.return_attention:
            attention = ops.reshape(weights, (-1, self.attention_units))  # (batch, heads * (slots+1)^2)
            output = ops.concatenate([output, attention], axis=-1)  # (batch, output_size)
        return output, [output]

    # ----------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "mem_slots": self.mem_slots,
                "head_size": self.head_size,
                "num_heads": self.num_heads,
                "num_blocks": self.num_blocks,
                "forget_bias": self.forget_bias,
                "input_bias": self.input_bias,
                "gate_style": self.gate_style,
                "attention_mlp_layers": self.attention_mlp_layers,
                "key_size": self.key_size,
                "return_attention": self.return_attention,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            }
        )
        return config

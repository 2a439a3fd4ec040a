import doctest
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import keras
import relzoo.layers.relational_memory as relational_memory
from relzoo.layers import RelationalMemoryCell
from relzoo.testing import check_layer

ROOT = Path(__file__).resolve().parent.parent


@keras.saving.register_keras_serializable(package="relzoo_tests")
class RMCRNN(keras.layers.RNN):
    """`keras.layers.RNN`, registered, so `check_layer` (which wants a registered class) can drive the cell.

    `RNN.from_config` pops "cell" out of the dict it is given; the harness
    compares that dict afterwards, so this passes a copy.
    """

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return super().from_config(dict(config), custom_objects=custom_objects)


def _sequences(batch=2, time=5, dim=3, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, time, dim)).astype("float32")


def _build(cell, input_dim, seed=1, scale=0.5):
    """Builds `cell` and gives every weight random values (biases, LayerNorm scales included)."""
    cell.build((None, input_dim))
    rng = np.random.default_rng(seed)
    cell.set_weights([rng.normal(scale=scale, size=w.shape).astype("float32") for w in cell.get_weights()])
    return cell


# ------------------------------------------------------------------ numpy reference
def _layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def numpy_step(cell, w, x, memory):
    """One step of the RMC in float64 with explicit loops over batch, heads and rows.

    x: (batch, input_dim); memory: (batch, slots, mem_size).
    Returns (next_memory, attention of the last block (batch, heads, slots+1, slots+1)).
    """
    batch, slots, mem_size = memory.shape
    heads, ks, vs = cell.num_heads, cell.key_size, cell.head_size
    eps = cell.layer_norm_epsilon
    next_memory = np.zeros_like(memory)
    attention = np.zeros((batch, heads, slots + 1, slots + 1))
    for b in range(batch):
        x_proj = x[b] @ w["input_projection_kernel"] + w["input_projection_bias"]
        m = np.vstack([memory[b], x_proj[None]])  # (slots + 1, mem_size)
        for blk in range(cell.num_blocks):
            qkv = m @ w[f"block_{blk}_qkv_kernel"]  # (slots + 1, heads * (2 ks + vs))
            attended = np.zeros_like(m)
            for h in range(heads):
                cols = qkv[:, h * (2 * ks + vs) : (h + 1) * (2 * ks + vs)]
                q, k, v = cols[:, :ks], cols[:, ks : 2 * ks], cols[:, 2 * ks :]
                logits = np.array([[q[i] @ k[j] / np.sqrt(ks) for j in range(slots + 1)] for i in range(slots + 1)])
                weights = _softmax(logits)
                attention[b, h] = weights
                attended[:, h * vs : (h + 1) * vs] = weights @ v
            m = _layer_norm(
                m + attended, w[f"block_{blk}_attention_norm_gamma"], w[f"block_{blk}_attention_norm_beta"], eps
            )
            y = m
            for layer in range(cell.attention_mlp_layers):
                y = y @ w[f"block_{blk}_mlp_{layer}_kernel"] + w[f"block_{blk}_mlp_{layer}_bias"]
                if layer < cell.attention_mlp_layers - 1:
                    y = np.maximum(y, 0.0)
            m = _layer_norm(m + y, w[f"block_{blk}_mlp_norm_gamma"], w[f"block_{blk}_mlp_norm_beta"], eps)
        new = m[:slots]
        if cell.gate_style is None:
            next_memory[b] = new
            continue
        gates = (x[b] @ w["gate_input_kernel"] + w["gate_input_bias"])[None, :] + (
            np.tanh(memory[b]) @ w["gate_memory_kernel"] + w["gate_memory_bias"]
        )  # (slots, 2 * gate width)
        half = gates.shape[-1] // 2
        assert half == {"unit": mem_size, "memory": 1}[cell.gate_style]
        i_gate = _sigmoid(gates[:, :half] + cell.input_bias)
        f_gate = _sigmoid(gates[:, half:] + cell.forget_bias)
        next_memory[b] = i_gate * np.tanh(new) + f_gate * memory[b]
    return next_memory, attention


def numpy_rnn(cell, sequences, memory=None):
    """The reference over a sequence from the identity memory: (memories (b, t, slots, mem), attentions)."""
    w = {v.name: np.asarray(v, np.float64) for v in cell.weights}
    batch = sequences.shape[0]
    if memory is None:
        memory = np.tile(np.eye(cell.mem_slots, cell.mem_size)[None], (batch, 1, 1))
    memories, attentions = [], []
    for t in range(sequences.shape[1]):
        memory, att = numpy_step(cell, w, sequences[:, t].astype(np.float64), memory)
        memories.append(memory)
        attentions.append(att)
    return np.stack(memories, 1), np.stack(attentions, 1)


GOLDEN_CONFIGS = [
    dict(mem_slots=3, head_size=4, gate_style="unit"),  # mem_size 4 > slots 3: padded identity
    dict(mem_slots=3, head_size=2, num_heads=2, num_blocks=2, gate_style="memory", key_size=3,
         attention_mlp_layers=3, forget_bias=0.5, input_bias=0.3),
    dict(mem_slots=4, head_size=3, gate_style=None, attention_mlp_layers=1),  # mem_size 3 < slots 4: cut identity
    dict(mem_slots=2, head_size=2, num_heads=2, num_blocks=2, gate_style="unit", forget_bias=-0.5),
]


@pytest.mark.parametrize("config", GOLDEN_CONFIGS, ids=lambda c: f"{c['gate_style']}-h{c.get('num_heads', 1)}"
                         f"-b{c.get('num_blocks', 1)}")
def test_matches_numpy_reference(config):
    x = _sequences(batch=2, time=5, dim=3)
    cell = _build(RelationalMemoryCell(**config, return_attention=True), 3)
    out = np.asarray(keras.layers.RNN(cell, return_sequences=True)(x))  # (2, 5, output_size)
    memory, attention = (np.asarray(t) for t in cell.split_output(out))
    want_memory, want_attention = numpy_rnn(cell, x)
    np.testing.assert_allclose(memory, want_memory, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(attention, want_attention, rtol=1e-5, atol=1e-6)
    # the flat layout: memory row-major first, then the attention (head, query, key)
    np.testing.assert_allclose(out[..., : cell.memory_units], want_memory.reshape(2, 5, -1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[..., cell.memory_units :], want_attention.reshape(2, 5, -1), rtol=1e-5, atol=1e-6)


def test_output_and_state_sizes():
    cell = RelationalMemoryCell(mem_slots=3, head_size=4, num_heads=2)
    assert cell.mem_size == 8 and cell.state_size == 24 and cell.output_size == 24
    assert isinstance(cell.state_size, int) and isinstance(cell.output_size, int)
    cell = RelationalMemoryCell(mem_slots=3, head_size=4, num_heads=2, return_attention=True)
    # with the attention, the state is the output (memory columns first)
    assert cell.memory_units == 24 and cell.output_size == 24 + 2 * 4 * 4 and cell.state_size == cell.output_size
    assert isinstance(cell.state_size, int) and isinstance(cell.output_size, int)
    seq = keras.Input((7, 5))
    assert keras.layers.RNN(cell, return_sequences=True)(seq).shape == (None, 7, 56)
    out, state = keras.layers.RNN(cell, return_state=True)(seq)
    assert out.shape == (None, 56) and state.shape == (None, 56)


def test_return_attention_leaves_the_memory_unchanged():
    x = _sequences(batch=3, time=4, dim=5, seed=3)
    config = dict(mem_slots=3, head_size=2, num_heads=2, num_blocks=2)
    with_att = _build(RelationalMemoryCell(**config, return_attention=True), 5)
    without = RelationalMemoryCell(**config)
    without.build((None, 5))
    without.set_weights(with_att.get_weights())
    a = np.asarray(keras.layers.RNN(with_att, return_sequences=True)(x))
    b = np.asarray(keras.layers.RNN(without, return_sequences=True)(x))
    assert a.shape == (3, 4, 12 + 2 * 16) and b.shape == (3, 4, 12)
    np.testing.assert_array_equal(a[..., :12], b)
    memory, attention = (np.asarray(t) for t in with_att.split_output(a))
    assert memory.shape == (3, 4, 3, 4) and attention.shape == (3, 4, 2, 4, 4)
    np.testing.assert_array_equal(memory.reshape(3, 4, 12), b)
    assert np.all(attention >= 0.0)
    np.testing.assert_allclose(attention.sum(-1), 1.0, rtol=1e-6, atol=1e-6)
    # a state splits into the memory alone; the cell without attention gives None
    m, att = without.split_output(b[:, -1])
    assert att is None and tuple(m.shape) == (3, 3, 4)
    with pytest.raises(ValueError, match="last axis of 44"):
        with_att.split_output(np.zeros((3, 7), "float32"))


def test_split_output_in_a_saved_functional_model(tmp_path):
    seq = keras.Input((None, 3))  # unknown batch and time
    cell = RelationalMemoryCell(mem_slots=2, head_size=3, return_attention=True)
    memory, attention = cell.split_output(keras.layers.RNN(cell, return_sequences=True)(seq))
    assert memory.shape == (None, None, 2, 3) and attention.shape == (None, None, 1, 3, 3)
    model = keras.Model(seq, {"memory": memory, "attention": attention})
    x = _sequences(batch=2, time=4, dim=3)
    want = model.predict(x, verbose=0)
    np.testing.assert_allclose(want["attention"].sum(-1), 1.0, rtol=1e-6, atol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    got = loaded.predict(x, verbose=0)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- initial state
@pytest.mark.parametrize(
    "config,expected",
    [
        (dict(mem_slots=3, head_size=5), np.hstack([np.eye(3), np.zeros((3, 2))])),  # mem_size 5 > 3: padded
        (dict(mem_slots=5, head_size=1, num_heads=2), np.eye(5)[:, :2]),  # mem_size 2 < 5: cut
        (dict(mem_slots=2, head_size=1, num_heads=2), np.eye(2)),
        (dict(mem_slots=2, head_size=3, return_attention=True), np.eye(2, 3)),
    ],
)
def test_initial_state_is_padded_or_cut_identity(config, expected):
    cell = RelationalMemoryCell(**config)
    state = cell.get_initial_state(batch_size=3)
    assert isinstance(state, list) and len(state) == 1
    state = np.asarray(state[0])
    assert state.shape == (3, cell.state_size)
    for b in range(3):
        memory = state[b, : cell.memory_units].reshape(cell.mem_slots, cell.mem_size)
        np.testing.assert_array_equal(memory, expected)
    assert not np.any(state[:, cell.memory_units :])  # the attention columns (return_attention) start at 0
    np.testing.assert_array_equal(cell.initial_memory(), expected)
    rnn = keras.layers.RNN(cell)
    np.testing.assert_array_equal(np.asarray(rnn.get_initial_state(3)[0]), state)


def test_rnn_starts_from_the_identity():
    x = _sequences(batch=2, time=3, dim=4)
    cell = _build(RelationalMemoryCell(mem_slots=3, head_size=2), 4)
    rnn = keras.layers.RNN(cell)
    default = np.asarray(rnn(x))
    identity = np.tile(np.eye(3, 2).reshape(1, -1), (2, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(rnn(x, initial_state=[identity])), default)
    zeros = np.asarray(rnn(x, initial_state=[np.zeros_like(identity)]))
    assert not np.allclose(zeros, default)
    # also inside a compiled functional model (dynamic batch size)
    seq = keras.Input((None, 4))
    model = keras.Model(seq, keras.layers.RNN(cell)(seq))
    np.testing.assert_allclose(model.predict(x, verbose=0), default, rtol=1e-6, atol=1e-6)


# -------------------------------------------------------- RNN features: mask, state
def test_masked_padding_gives_the_short_sequences_state():
    x = _sequences(batch=2, time=6, dim=3, seed=5)
    lengths = [4, 6]
    padded = x.copy()
    padded[0, 4:] = 0.0  # Masking(0.0) skips these steps
    mask = np.arange(6)[None, :] < np.array(lengths)[:, None]
    cell = _build(RelationalMemoryCell(mem_slots=3, head_size=2, num_heads=2, return_attention=True), 3)
    rnn = keras.layers.RNN(cell, return_state=True)

    seq = keras.Input((6, 3))
    out, state = rnn(keras.layers.Masking(0.0)(seq))
    masked_model = keras.Model(seq, [out, state])
    out_m, state_m = masked_model.predict(padded, verbose=0)
    out_a, state_a = (np.asarray(t) for t in rnn(padded, mask=mask))
    np.testing.assert_allclose(state_a, state_m, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out_a, out_m, rtol=1e-6, atol=1e-6)

    for b, n in enumerate(lengths):
        out_s, state_s = (np.asarray(t) for t in rnn(x[b : b + 1, :n]))
        np.testing.assert_allclose(state_m[b], state_s[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out_m[b], out_s[0], rtol=1e-5, atol=1e-6)  # attention included
    # the memory is the one of the cell without attention
    plain = RelationalMemoryCell(mem_slots=3, head_size=2, num_heads=2)
    plain.build((None, 3))
    plain.set_weights(cell.get_weights())
    plain_state = np.asarray(keras.layers.RNN(plain, return_state=True)(padded, mask=mask)[1])
    np.testing.assert_allclose(state_m[:, : cell.memory_units], plain_state, rtol=1e-6, atol=1e-6)
    # the padding values themselves do not matter
    garbage = padded.copy()
    garbage[0, 4:] = 1e3
    np.testing.assert_allclose(np.asarray(rnn(garbage, mask=mask)[1]), state_a, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("return_attention", [False, True])
def test_return_state(return_attention):
    x = _sequences(batch=2, time=4, dim=3)
    cell = _build(RelationalMemoryCell(mem_slots=2, head_size=3, gate_style="memory",
                                       return_attention=return_attention), 3)
    seqs, state = keras.layers.RNN(cell, return_sequences=True, return_state=True)(x)
    last, state2 = keras.layers.RNN(cell, return_state=True)(x)
    np.testing.assert_allclose(np.asarray(state), np.asarray(seqs)[:, -1], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(last), np.asarray(state2), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(state), np.asarray(state2), rtol=1e-6)
    memory, attention = cell.split_output(state)
    assert tuple(memory.shape) == (2, 2, 3)
    assert (attention is None) == (not return_attention)
    # the returned state continues the sequence
    _, mid = keras.layers.RNN(cell, return_state=True)(x[:, :2])
    rest = keras.layers.RNN(cell)(x[:, 2:], initial_state=[mid])
    np.testing.assert_allclose(np.asarray(rest), np.asarray(last), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("return_attention", [False, True])
def test_stateful_halves_equal_the_whole(return_attention):
    x = _sequences(batch=2, time=6, dim=3, seed=9)
    cell = _build(RelationalMemoryCell(mem_slots=3, head_size=2, num_blocks=2, return_attention=return_attention), 3)
    whole = np.asarray(keras.layers.RNN(cell, return_sequences=True)(x))

    seq = keras.Input(batch_shape=(2, None, 3))
    rnn = keras.layers.RNN(cell, return_sequences=True, stateful=True)
    model = keras.Model(seq, rnn(seq))
    # the state variables start at the identity memory
    np.testing.assert_array_equal(np.asarray(rnn.states[0]), np.asarray(cell.get_initial_state(2)[0]))
    halves = np.concatenate([model.predict(x[:, :3], verbose=0), model.predict(x[:, 3:], verbose=0)], axis=1)
    np.testing.assert_allclose(halves, whole, rtol=1e-5, atol=1e-6)
    # Keras's reset_state() zeroes the state; the documented recipe restores the identity
    rnn.reset_state()
    assert not np.any(np.asarray(rnn.states[0]))
    for v, s in zip(rnn.states, rnn.get_initial_state(2)):
        v.assign(s)
    np.testing.assert_allclose(model.predict(x[:, :3], verbose=0), whole[:, :3], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------- first-class Keras layer
def test_config_round_trip():
    cell = RelationalMemoryCell(
        mem_slots=3, head_size=2, num_heads=2, num_blocks=2, forget_bias=0.5, input_bias=-0.1, gate_style=None,
        attention_mlp_layers=3, key_size=5, return_attention=True, kernel_regularizer="l2", name="rmc",
    )
    config = cell.get_config()
    json.dumps(config)
    clone = RelationalMemoryCell.from_config(config)
    assert clone.get_config() == config
    for key in ("mem_slots", "head_size", "num_heads", "num_blocks", "forget_bias", "input_bias", "gate_style",
                "attention_mlp_layers", "key_size", "return_attention"):
        assert getattr(clone, key) == getattr(cell, key), key
    assert RelationalMemoryCell(mem_slots=2, head_size=3).get_config()["key_size"] == 3  # None -> head_size


@pytest.mark.parametrize(
    "config",
    [
        dict(mem_slots=3, head_size=2, num_heads=2, num_blocks=2, return_attention=True),
        dict(mem_slots=2, head_size=3, gate_style="memory", key_size=2),
        # mem_size >= 3: a LayerNorm over 2 features is piecewise constant (no gradient flows through it)
        dict(mem_slots=2, head_size=3, gate_style=None, attention_mlp_layers=1, bias_regularizer="l2"),
    ],
)
def test_harness_through_rnn(config):
    x = _sequences(batch=3, time=4, dim=5, seed=2)
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]], bool)
    cell = RelationalMemoryCell(**config)
    check_layer(
        RMCRNN,
        dict(cell=cell, return_sequences=True),
        {"sequences": x, "mask": mask},
        expected_output_shape=(3, 4, cell.output_size),
    )


def test_plain_rnn_save_load_and_fit(tmp_path):
    x = _sequences(batch=4, time=5, dim=3, seed=4)
    seq = keras.Input((5, 3))
    memory = keras.layers.RNN(
        RelationalMemoryCell(mem_slots=2, head_size=2, num_heads=2, num_blocks=2), name="rmc"
    )(keras.layers.Masking(0.0)(seq))
    model = keras.Model(seq, keras.layers.Dense(2)(memory))
    want = model.predict(x, verbose=0)
    model.save(tmp_path / "rmc.keras")
    loaded = keras.saving.load_model(tmp_path / "rmc.keras", safe_mode=True)
    assert isinstance(loaded.get_layer("rmc").cell, RelationalMemoryCell)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=1e-6, atol=1e-6)

    before = [np.array(v) for v in model.trainable_weights]
    assert len(before) == 2 + 2 * 9 + 4 + 2  # input proj, 2 blocks, gates, Dense
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    hist = model.fit(x, np.ones((4, 2), "float32"), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][-1])
    unchanged = [v.path for v, b in zip(model.trainable_weights, before) if np.array_equal(np.array(v), b)]
    assert not unchanged, unchanged


def test_xla_training_step_matches_graph():
    x = _sequences(batch=2, time=4, dim=3, seed=8)
    losses = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        seq = keras.Input((4, 3))
        cell = RelationalMemoryCell(mem_slots=2, head_size=2, num_heads=2, num_blocks=2, return_attention=True)
        out = keras.layers.RNN(cell)(keras.layers.Masking(0.0)(seq))
        model = keras.Model(seq, keras.layers.Dense(1)(out))
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=jit)
        losses.append(model.fit(x, np.ones((2, 1), "float32"), epochs=2, verbose=0).history["loss"])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)


def test_docstring_example():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(RelationalMemoryCell, globs={"keras": keras, "np": np,
                                                      "RelationalMemoryCell": RelationalMemoryCell})
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).attempted > 0
    assert runner.summarize(verbose=False).failed == 0


def test_layer_code_uses_only_keras_ops():
    source = Path(relational_memory.__file__).read_text()
    assert "import tensorflow" not in source and "tf." not in source


def test_errors_are_clear():
    with pytest.raises(ValueError, match=r"gate_style must be one of \('unit', 'memory', None\), got 'bogus'"):
        RelationalMemoryCell(mem_slots=2, head_size=2, gate_style="bogus")
    with pytest.raises(ValueError, match="mem_slots must be an int >= 1, got 0"):
        RelationalMemoryCell(mem_slots=0, head_size=2)
    with pytest.raises(ValueError, match="head_size must be an int >= 1, got 2.5"):
        RelationalMemoryCell(mem_slots=2, head_size=2.5)
    for name in ("num_heads", "num_blocks", "attention_mlp_layers", "key_size"):
        with pytest.raises(ValueError, match=f"{name} must be an int >= 1"):
            RelationalMemoryCell(mem_slots=2, head_size=2, **{name: 0})
    with pytest.raises(ValueError, match="layer_norm_epsilon must be > 0"):
        RelationalMemoryCell(mem_slots=2, head_size=2, layer_norm_epsilon=0.0)
    cell = RelationalMemoryCell(mem_slots=2, head_size=2)
    with pytest.raises(ValueError, match=r"\(batch, input_dim\)"):
        cell(np.zeros((2, 3, 4), "float32"), [np.zeros((2, 4), "float32")])
    with pytest.raises(ValueError, match=r"\(batch, input_dim\)"):
        keras.layers.RNN(RelationalMemoryCell(mem_slots=2, head_size=2))(np.zeros((2, 3, 4, 1), "float32"))


# ------------------------------------------------------------------ JAX backend
JAX_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["KERAS_BACKEND"] = "jax"
    import numpy as np, keras
    from relzoo.layers import RelationalMemoryCell
    assert keras.backend.backend() == "jax"
    data = np.load(sys.argv[1], allow_pickle=False)
    configs = eval(sys.argv[2])
    x, mask = data["x"], data["mask"]
    result = {}
    for k, config in enumerate(configs):
        cell = RelationalMemoryCell(**config)
        rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True)
        rnn(x)
        cell.set_weights([data[f"w{k}_{i}"] for i in range(len(cell.weights))])
        out, state = rnn(x, mask=mask)
        result[f"out{k}"], result[f"state{k}"] = np.asarray(out), np.asarray(state)
        result[f"unmasked{k}"] = np.asarray(rnn(x)[0])
    loaded = keras.saving.load_model(sys.argv[3], safe_mode=True)
    result["loaded"] = np.asarray(loaded.predict(x, verbose=0))
    np.savez(sys.argv[4], **result)
    """
)


@pytest.mark.slow
def test_jax_backend_matches_tensorflow(tmp_path):
    configs = [
        dict(mem_slots=3, head_size=2, num_heads=2, num_blocks=2, gate_style="unit", return_attention=True),
        dict(mem_slots=2, head_size=3, gate_style="memory", key_size=2),
        dict(mem_slots=4, head_size=3, gate_style=None, attention_mlp_layers=1),
    ]
    x = _sequences(batch=2, time=4, dim=3, seed=6)
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    data = {"x": x, "mask": mask}
    want = {}
    for k, config in enumerate(configs):
        cell = _build(RelationalMemoryCell(**config), 3, seed=k)
        rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True)
        want[f"out{k}"], want[f"state{k}"] = (np.asarray(t) for t in rnn(x, mask=mask))
        want[f"unmasked{k}"] = np.asarray(rnn(x)[0])
        data.update({f"w{k}_{i}": w for i, w in enumerate(cell.get_weights())})
    np.savez(tmp_path / "in.npz", **data)
    # a model saved on TensorFlow loads on JAX
    seq = keras.Input((4, 3))
    model = keras.Model(seq, keras.layers.RNN(RelationalMemoryCell(**configs[0]))(seq))
    model.save(tmp_path / "tf.keras")

    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, str(tmp_path / "in.npz"), repr(configs), str(tmp_path / "tf.keras"),
         str(tmp_path / "out.npz")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = np.load(tmp_path / "out.npz")
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-5, err_msg=key)
    np.testing.assert_allclose(got["loaded"], model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_mixed_bfloat16_stays_near_the_float64_reference():
    """Under mixed_bfloat16 (the nth_farthest recipes' policy) the weights stay float32 and
    8 steps stay within bfloat16's rounding of the float64 reference (measured: memory
    within 0.035, attention within 0.003)."""
    config = dict(mem_slots=4, head_size=16, num_heads=2, gate_style="unit", attention_mlp_layers=2)
    x = _sequences(batch=4, time=8, dim=6, seed=3)
    ref = _build(RelationalMemoryCell(**config, return_attention=True), 6, scale=0.2)
    cell = RelationalMemoryCell(**config, return_attention=True, dtype="mixed_bfloat16")
    cell.build((None, 6))
    cell.set_weights(ref.get_weights())
    assert cell.compute_dtype == "bfloat16" and all(w.dtype == "float32" for w in cell.weights)
    out = keras.layers.RNN(cell, return_sequences=True, dtype="mixed_bfloat16")(x)
    memory, attention = (np.asarray(keras.ops.cast(t, "float32")) for t in cell.split_output(out))
    want_memory, want_attention = numpy_rnn(ref, x)
    assert np.all(np.isfinite(memory))
    np.testing.assert_allclose(memory, want_memory, atol=0.06)
    np.testing.assert_allclose(attention, want_attention, atol=0.01)
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=0.01)

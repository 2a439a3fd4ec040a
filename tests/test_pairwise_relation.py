import numpy as np
import pytest
import tensorflow as tf

import keras
from relzoo.layers import PairwiseRelation
from relzoo.testing import check_layer

RNG = np.random.default_rng(1234)


def _data(batch=3, n=5, d=4, c=3, seed=0):
    rng = np.random.default_rng(seed)
    objects = rng.normal(size=(batch, n, d)).astype("float32")
    cond = rng.normal(size=(batch, c)).astype("float32")
    return objects, cond


def _relu(x):
    return np.maximum(x, 0.0)


def numpy_reference(layer, objects, cond=None, mask=None):
    """Plain numpy RN: g([o_i; o_j; q]) over all valid ordered pairs, then aggregate.

    Builds every pair by explicit loops, with the kernel of the first layer of g
    used whole (as a Dense on the concatenation would).
    """
    weights = [np.asarray(w) for w in layer.get_weights()]
    kernel, bias = weights[0], weights[1]
    rest = [(weights[k], weights[k + 1]) for k in range(2, len(weights), 2)]
    batch, n, _ = objects.shape
    mask = np.ones((batch, n), bool) if mask is None else mask
    out_rows = np.zeros((batch, n, layer.units), np.float64)
    out = np.zeros((batch, layer.units), np.float64)
    for b in range(batch):
        values = []
        for i in range(n):
            row = []
            for j in range(n):
                if not (mask[b, i] and mask[b, j]) or (not layer.self_pairs and i == j):
                    continue
                parts = [objects[b, i], objects[b, j]] + ([cond[b]] if cond is not None else [])
                x = np.concatenate(parts).astype(np.float64)
                h = _relu(x @ kernel + bias)
                for w, bb in rest:
                    h = _relu(h @ w + bb)
                row.append(h)
            values.extend(row)
            if row:
                r = np.stack(row)
                out_rows[b, i] = {"sum": r.sum(0), "mean": r.mean(0), "max": r.max(0)}[layer.aggregation]
        if values:
            v = np.stack(values)
            out[b] = {"sum": v.sum(0), "mean": v.mean(0), "max": v.max(0)}[layer.aggregation]
    return out_rows if layer.per_object else out


CONFIGS = [
    dict(),
    dict(aggregation="mean"),
    dict(aggregation="max"),
    dict(self_pairs=False),
    dict(per_object=True),
    dict(per_object=True, aggregation="mean", self_pairs=False),
    dict(chunk_size=2),
    dict(chunk_size=2, aggregation="max", per_object=True),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
def test_matches_numpy_reference(config, with_mask):
    objects, cond = _data()
    mask = None
    if with_mask:
        mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 1, 0, 1]], bool)
    layer = PairwiseRelation(g_units=(8, 7, 6), **config)
    got = np.asarray(layer(objects, cond, mask=mask))
    want = numpy_reference(layer, objects, cond, mask)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_matches_numpy_reference_without_condition():
    objects, _ = _data(n=4)
    layer = PairwiseRelation(g_units=(5, 5))
    got = np.asarray(layer(objects))
    np.testing.assert_allclose(got, numpy_reference(layer, objects), rtol=1e-5, atol=1e-5)


def test_harness_with_condition_and_mask():
    objects, cond = _data()
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 1, 0, 1]], bool)
    check_layer(
        PairwiseRelation,
        dict(g_units=(8, 6)),
        {"objects": objects, "condition": cond, "mask": mask},
        expected_output_shape=(3, 6),
    )


@pytest.mark.parametrize(
    "config,shape",
    [
        (dict(g_units=(8, 6), per_object=True, aggregation="mean"), (3, 5, 6)),
        (dict(g_units=(8, 6), chunk_size=2, aggregation="max"), (3, 6)),
        (dict(g_units=(6,), self_pairs=False, activate_output=False, kernel_regularizer="l2"), (3, 6)),
    ],
)
def test_harness_variants(config, shape):
    objects, _ = _data()
    check_layer(PairwiseRelation, config, {"objects": objects}, expected_output_shape=shape)


@pytest.mark.parametrize("aggregation", ["sum", "mean", "max"])
@pytest.mark.parametrize("per_object", [False, True])
def test_padding_contributes_nothing(aggregation, per_object):
    rng = np.random.default_rng(7)
    real = rng.normal(size=(2, 3, 4)).astype("float32")
    cond = rng.normal(size=(2, 3)).astype("float32")
    # 7 padded objects of garbage, including huge values and NaN.
    padding = rng.normal(size=(2, 7, 4)).astype("float32") * 1e6
    padding[0, 0, 0] = np.nan
    padding[1, 2, 3] = np.inf
    padded = np.concatenate([real, padding], axis=1)
    mask = np.concatenate([np.ones((2, 3), bool), np.zeros((2, 7), bool)], axis=1)
    layer = PairwiseRelation(g_units=(8, 6), aggregation=aggregation, per_object=per_object)
    small = np.asarray(layer(real, cond))
    big = np.asarray(layer(padded, cond, mask=mask))
    if per_object:
        np.testing.assert_allclose(big[:, :3], small, rtol=1e-6, atol=1e-6)
        assert np.all(big[:, 3:] == 0.0)
    else:
        np.testing.assert_allclose(big, small, rtol=1e-6, atol=1e-6)

    # Gradients: finite, zero for the padded objects, equal for the real ones.
    x_pad = tf.constant(padded)
    x_real = tf.constant(real)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x_pad, x_real])
        loss_big = tf.reduce_sum(layer(x_pad, cond, mask=mask) ** 2)
        loss_small = tf.reduce_sum(layer(x_real, cond) ** 2)
    g_big = tape.gradient(loss_big, [x_pad] + layer.trainable_variables)
    g_small = tape.gradient(loss_small, [x_real] + layer.trainable_variables)
    assert all(np.all(np.isfinite(g)) for g in g_big)
    assert np.all(np.asarray(g_big[0])[:, 3:] == 0.0)
    np.testing.assert_allclose(np.asarray(g_big[0])[:, :3], g_small[0], rtol=1e-4, atol=1e-5)
    for a, b in zip(g_big[1:], g_small[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("aggregation", ["sum", "mean", "max"])
def test_permutation_invariance(aggregation):
    objects, cond = _data(batch=2, n=6)
    mask = np.array([[1, 1, 0, 1, 1, 0], [1, 1, 1, 1, 1, 1]], bool)
    perm = np.array([3, 0, 5, 1, 4, 2])
    layer = PairwiseRelation(g_units=(8, 6), aggregation=aggregation)
    a = np.asarray(layer(objects, cond, mask=mask))
    b = np.asarray(layer(objects[:, perm], cond, mask=mask[:, perm]))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # per-object outputs are permuted the same way (equivariance)
    layer_po = PairwiseRelation(g_units=(8, 6), aggregation=aggregation, per_object=True)
    a = np.asarray(layer_po(objects, cond, mask=mask))
    b = np.asarray(layer_po(objects[:, perm], cond, mask=mask[:, perm]))
    np.testing.assert_allclose(a[:, perm], b, rtol=1e-5, atol=1e-6)


def test_keras_masking_equals_explicit_mask():
    objects, cond = _data(batch=2, n=5)
    objects[0, 3:] = 0.0  # Masking(0.0) marks these as padding
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    layer = PairwiseRelation(g_units=(8, 6), per_object=True)
    explicit = np.asarray(layer(objects, cond, mask=mask))

    obj_in = keras.Input((5, 4))
    q_in = keras.Input((3,))
    masked = keras.layers.Masking(0.0)(obj_in)
    out = layer(masked, q_in)  # with a condition, Keras fills `objects_mask`
    model = keras.Model([obj_in, q_in], out)
    np.testing.assert_allclose(model.predict([objects, cond], verbose=0), explicit, rtol=1e-6, atol=1e-6)
    # per_object mode passes the object mask on: a mask-aware pooling after it
    # averages the real objects only.
    pooled = keras.layers.GlobalAveragePooling1D()(out)
    got = keras.Model([obj_in, q_in], pooled).predict([objects, cond], verbose=0)
    np.testing.assert_allclose(got[0], explicit[0, :3].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], explicit[1].mean(0), rtol=1e-5, atol=1e-6)

    # without a condition, Keras fills `mask`
    layer2 = PairwiseRelation(g_units=(8, 6))
    explicit2 = np.asarray(layer2(objects, mask=mask))
    out2 = layer2(keras.layers.Masking(0.0)(obj_in))
    model2 = keras.Model(obj_in, out2)
    np.testing.assert_allclose(model2.predict(objects, verbose=0), explicit2, rtol=1e-6, atol=1e-6)


def test_chunked_training_matches_unchunked():
    objects, cond = _data(batch=2, n=7)
    mask = np.array([[1, 1, 1, 1, 1, 0, 0], [1] * 7], bool)
    full = PairwiseRelation(g_units=(8, 6))
    chunked = PairwiseRelation(g_units=(8, 6), chunk_size=3)
    full(objects, cond)
    chunked(objects, cond)
    chunked.set_weights(full.get_weights())
    x = tf.constant(objects)
    grads = []
    for layer in (full, chunked):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, cond, mask=mask) ** 2)
        grads.append(tape.gradient(loss, [x] + layer.trainable_variables))
    for a, b in zip(*grads):
        # Chunking sums the pairs in another order: float32 rounding is relative to the
        # gradient's scale (up to ~1e3 here), so the absolute tolerance is too.
        b = np.asarray(b)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(b).max())


def _graph_tensor_shapes(fn, *args):
    graph = tf.function(fn).get_concrete_function(*args).graph
    return [tuple(t.shape.as_list()) for op in graph.get_operations() for t in op.outputs if t.shape.rank is not None]


def test_pair_concatenation_is_never_built():
    # d=5, c=3: a concatenated pair would have 2d+c = 13 features.
    objects = tf.TensorSpec((4, 6, 5), tf.float32)
    cond = tf.TensorSpec((4, 3), tf.float32)
    layer = PairwiseRelation(g_units=(11, 7))
    layer(np.zeros((4, 6, 5), "float32"), np.zeros((4, 3), "float32"))
    shapes = _graph_tensor_shapes(lambda o, q: layer(o, q), objects, cond)
    assert any(s == (4, 6, 6, 11) for s in shapes), "expected the (b, n, n, h) first-layer activation"
    offenders = [s for s in shapes if len(s) >= 3 and s[-1] == 13]
    assert not offenders, f"a pair concatenation was built: {offenders}"


def _training_step_peak_bytes(layer, objects, cond, xla):
    """Peak bytes TensorFlow's CPU allocator holds during one forward+backward step."""
    variables = layer.trainable_variables

    @tf.function(jit_compile=xla)
    def step(o, q):
        with tf.GradientTape() as tape:
            tape.watch(o)
            loss = tf.reduce_mean(layer(o, q) ** 2)
        return tape.gradient(loss, variables + [o])

    step(objects, cond)  # trace / compile
    try:
        tf.config.experimental.reset_memory_stats("CPU:0")
    except ValueError:  # some machines' TensorFlow keeps no CPU memory statistics (seen on an AMD EPYC)
        return None, step(objects, cond)
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    grads = step(objects, cond)
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    return peak - before, grads


@pytest.mark.parametrize("xla", [False, True], ids=["graph", "xla"])
def test_chunking_bounds_training_memory(xla):
    rng = np.random.default_rng(3)
    objects = tf.constant(rng.normal(size=(4, 64, 6)).astype("float32"))
    cond = tf.constant(rng.normal(size=(4, 3)).astype("float32"))
    full = PairwiseRelation(g_units=(128, 128, 128))
    chunked = PairwiseRelation(g_units=(128, 128, 128), chunk_size=4)
    full(objects, cond)
    chunked(objects, cond)
    chunked.set_weights(full.get_weights())
    full_peak, full_grads = _training_step_peak_bytes(full, objects, cond, xla)
    chunked_peak, chunked_grads = _training_step_peak_bytes(chunked, objects, cond, xla)
    # float32 sums of 4096 pairs in another order, and in an order that follows the threads the
    # CPU gives (it changes under load): an element whose terms cancel moves by up to about
    # eps * 4096 * max|b| (0.03% of max|b|; seen: 0.29 on a max of 727). A chunk lost or
    # counted twice moves elements by a sizeable fraction of max|b|.
    for a, b in zip(full_grads, chunked_grads):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * float(np.max(np.abs(b))))
    if full_peak is None or chunked_peak is None:
        pytest.skip("the gradients agree; TensorFlow keeps no CPU memory statistics on this machine, "
                    "so the peak memory cannot be measured here")
    print(f"peak bytes: unchunked {full_peak}, chunked {chunked_peak}")
    # one (b, n, n, 128) float32 activation is 8 MiB; unchunked keeps several alive
    assert full_peak > 16 * 2**20
    assert chunked_peak < full_peak / 4, (chunked_peak, full_peak)


def test_errors_are_clear():
    with pytest.raises(ValueError, match="aggregation must be one of"):
        PairwiseRelation(aggregation="median")
    with pytest.raises(ValueError, match="g_units"):
        PairwiseRelation(g_units=())
    with pytest.raises(ValueError, match="chunk_size"):
        PairwiseRelation(chunk_size=0)
    with pytest.raises(ValueError, match=r"\(batch, n, d\)"):
        PairwiseRelation(g_units=(4,))(np.zeros((2, 5), "float32"))
    layer = PairwiseRelation(g_units=(4,))
    layer(np.zeros((2, 3, 4), "float32"), np.zeros((2, 2), "float32"))
    with pytest.raises(ValueError, match="with a condition"):
        layer(np.zeros((2, 3, 4), "float32"))
    with pytest.raises(ValueError, match="mask of shape"):
        PairwiseRelation(g_units=(4,))(np.zeros((2, 3, 4), "float32"), mask=np.ones((2, 3, 1), bool))
    dyn = PairwiseRelation(g_units=(4,), chunk_size=2)
    inp = keras.Input((None, 4))
    with pytest.raises(ValueError, match="static number of objects"):
        dyn(inp)


def test_variable_number_of_objects_without_chunking():
    inp = keras.Input((None, 4))
    q = keras.Input((2,))
    model = keras.Model([inp, q], PairwiseRelation(g_units=(5,))(inp, q))
    for n in (2, 7):
        assert model.predict([np.ones((3, n, 4), "float32"), np.ones((3, 2), "float32")], verbose=0).shape == (3, 5)


@pytest.mark.parametrize("chunk_size,masked", [(None, False), (None, True), (10, False), (10, True)])
def test_mixed_precision_accumulates_in_float32(chunk_size, masked):
    """Under mixed_bfloat16, g runs in bfloat16 but the sum over the 625 pairs is float32.

    With small integer inputs and weights every pair's output is an integer that bfloat16 holds
    exactly, so the mixed layer must give the float32 layer's totals exactly; a bfloat16 sum
    (8-bit mantissa: steps of 8 above 1024) would round away the few units that one pair adds."""
    rng = np.random.default_rng(0)
    objects = rng.integers(0, 2, (3, 25, 4)).astype("float32")
    question = rng.integers(0, 2, (3, 3)).astype("float32")
    mask = rng.random((3, 25)) < 0.8 if masked else None
    exact = PairwiseRelation(g_units=(16, 16), chunk_size=chunk_size)
    exact(objects, question, mask=mask)
    exact.set_weights([rng.integers(-1, 2, w.shape).astype("float32") for w in exact.get_weights()])
    want = np.asarray(exact(objects, question, mask=mask))
    rounded = np.asarray(keras.ops.cast(keras.ops.cast(want, "bfloat16"), "float32"))
    assert np.all(want == np.round(want)) and (rounded != want).mean() > 0.3  # totals bfloat16 cannot hold
    mixed = PairwiseRelation(g_units=(16, 16), chunk_size=chunk_size, dtype="mixed_bfloat16")
    mixed(objects, question, mask=mask)
    mixed.set_weights(exact.get_weights())
    got = mixed(objects, question, mask=mask)
    assert mixed.compute_dtype == "bfloat16" and got.dtype == "float32" and mixed.accumulation_dtype == "float32"
    np.testing.assert_array_equal(np.asarray(got), want)

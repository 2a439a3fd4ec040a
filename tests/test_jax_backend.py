"""The layers compute the same on JAX as on TensorFlow, and artifacts cross backends.

The lent GPU machines have JAX but no TensorFlow, so models are trained there
with KERAS_BACKEND=jax and served from TensorFlow. Each check runs JAX in a
subprocess (a process has one Keras backend) and compares with this one.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import relzoo
from relzoo.layers import PairwiseRelation

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [
    dict(g_units=[8, 6]),
    dict(g_units=[8, 6], aggregation="max", per_object=True),
    dict(g_units=[8, 6], chunk_size=3),
    dict(g_units=[8, 6], chunk_size=2, aggregation="mean", self_pairs=False),
]

JAX_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["KERAS_BACKEND"] = "jax"
    import numpy as np, jax, jax.numpy as jnp, keras
    from relzoo.layers import PairwiseRelation
    import relzoo
    assert keras.backend.backend() == "jax"
    data = np.load(sys.argv[1], allow_pickle=False)
    configs = eval(sys.argv[2])
    objects, cond, mask = data["objects"], data["cond"], data["mask"]
    out = {}
    for k, cfg in enumerate(configs):
        layer = PairwiseRelation(**cfg)
        layer(objects, cond, mask=mask)
        layer.set_weights([data[f"w{k}_{i}"] for i in range(len(layer.weights))])
        out[f"y{k}"] = np.asarray(layer(objects, cond, mask=mask))

        def loss(tv, o):
            y, _ = layer.stateless_call(tv, [], o, cond, mask=mask)
            return jnp.sum(y ** 2)

        grad_fn = jax.jit(jax.grad(loss, argnums=(0, 1)))
        g_w, g_o = grad_fn([v.value for v in layer.trainable_variables], jnp.asarray(objects))
        out[f"go{k}"] = np.asarray(g_o)
        for i, g in enumerate(g_w):
            out[f"gw{k}_{i}"] = np.asarray(g)
    # a TF-saved artifact loads under JAX ...
    model = relzoo.load("rn_tiny_test", weights=sys.argv[3])
    x = {"objects": data["tiny_objects"], "question": data["tiny_question"]}
    out["tiny_from_tf"] = np.asarray(model.predict(x, verbose=0))
    # ... and a JAX-saved one loads under TensorFlow (checked by the caller)
    jax_model = relzoo.load("rn_tiny_test", weights=None)
    out["tiny_jax"] = np.asarray(jax_model.predict(x, verbose=0))
    jax_model.save(sys.argv[4])
    np.savez(sys.argv[5], **out)
    """
)


def test_layers_and_artifacts_match_across_backends(tmp_path):
    rng = np.random.default_rng(11)
    objects = rng.normal(size=(2, 7, 4)).astype("float32")
    cond = rng.normal(size=(2, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 1, 0, 0], [1] * 7], bool)
    data = {"objects": objects, "cond": cond, "mask": mask}
    want = {}
    for k, cfg in enumerate(CONFIGS):
        layer = PairwiseRelation(**cfg)
        layer(objects, cond, mask=mask)
        for i, w in enumerate(layer.get_weights()):
            data[f"w{k}_{i}"] = w
        x = tf.constant(objects)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, cond, mask=mask)
            loss = tf.reduce_sum(y**2)
        grads = tape.gradient(loss, layer.trainable_variables + [x])
        want[f"y{k}"] = y.numpy()
        want[f"go{k}"] = grads[-1].numpy()
        for i, g in enumerate(grads[:-1]):
            want[f"gw{k}_{i}"] = g.numpy()

    tiny = relzoo.load("rn_tiny_test", weights=None)
    tf_path = tmp_path / "tf_model.keras"
    tiny.save(tf_path)
    data["tiny_objects"] = rng.normal(size=(3, 4, 3)).astype("float32")
    data["tiny_question"] = rng.normal(size=(3, 2)).astype("float32")
    x = {"objects": data["tiny_objects"], "question": data["tiny_question"]}
    np.savez(tmp_path / "in.npz", **data)

    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
    jax_path = tmp_path / "jax_model.keras"
    proc = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, str(tmp_path / "in.npz"), repr(CONFIGS), str(tf_path), str(jax_path),
         str(tmp_path / "out.npz")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = np.load(tmp_path / "out.npz")
    for key, value in want.items():
        scale = float(np.max(np.abs(value))) or 1.0
        np.testing.assert_allclose(got[key], value, rtol=1e-4, atol=1e-5 * scale, err_msg=key)
    np.testing.assert_allclose(got["tiny_from_tf"], tiny.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    from_jax = relzoo.load("rn_tiny_test", weights=jax_path)
    np.testing.assert_allclose(from_jax.predict(x, verbose=0), got["tiny_jax"], rtol=1e-5, atol=1e-6)

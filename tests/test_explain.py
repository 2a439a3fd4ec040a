"""relzoo explain: the RMC's attention per step and head, read from the trained cell's weights."""

import io

import numpy as np
import pytest

import keras
import relzoo
from relzoo.datasets import nth_farthest as nf
from relzoo.explain import attention_weights, run_explain


@pytest.fixture(scope="module")
def tiny_rmc(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = relzoo.models.build_rmc_sequence(mem_slots=3, head_size=4, num_heads=2, mlp_units=(8,),
                                             name="rmc_nth_farthest")
    path = tmp_path_factory.mktemp("explain") / "model.keras"
    model.save(path)
    return model, path


def test_attention_comes_from_the_models_own_cell(tiny_rmc):
    model, _ = tiny_rmc
    x, _ = nf.generate(3, seed=2, split="test")
    att = attention_weights(model, x)
    assert att.shape == (3, 8, 2, 4, 4)  # batch, steps, heads, slots + 1, slots + 1
    np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-5)
    # the probe's memory equals the model's own RNN output: same weights, same computation
    cell = model.get_layer("rmc").cell
    config = dict(cell.get_config(), return_attention=True)
    probe_cell = type(cell).from_config(config)
    probe = keras.layers.RNN(probe_cell)
    probe.build(x["sequence"].shape)
    probe_cell.set_weights(cell.get_weights())
    memory, _ = probe_cell.split_output(probe(x["sequence"]))
    want = keras.Model(model.input, model.get_layer("rmc").output).predict(x, verbose=0)
    np.testing.assert_allclose(np.reshape(keras.ops.convert_to_numpy(memory), (3, -1)), want, rtol=1e-5, atol=1e-6)


def test_explain_writes_a_png(tiny_rmc, tmp_path):
    _, path = tiny_rmc
    text = io.StringIO()
    result = run_explain("rmc_nth_farthest", seed=4, out=tmp_path / "a.png", weights=str(path), stream=text)
    from PIL import Image

    png = Image.open(result["png"])
    assert png.size[0] > 600 and png.size[1] > 200
    assert 0 <= result["answer"] < 8 and 0 <= result["truth"] < 8 and "seed 4" in text.getvalue()
    with pytest.raises(ValueError, match="draws N-th farthest models"):
        run_explain("rn_nearest_object", seed=1, out=tmp_path / "b.png", weights=None)

"""relzoo demo: fresh scenes, per-type accuracy that matches an independent count, and a PNG."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from relzoo.datasets import sort_of_clevr
from relzoo.demo import run_demo
from relzoo.models import build_rn_pixels

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    model = build_rn_pixels(conv_filters=4, g_units=[8, 8], f_units=[8], name="rn_sort_of_clevr")
    path = tmp_path_factory.mktemp("demo") / "model.keras"
    model.save(path)
    return path


def test_demo_counts_and_draws(tiny_weights, tmp_path):
    import keras

    out = tmp_path / "demo.png"
    text = io.StringIO()
    result = run_demo("rn_sort_of_clevr", seed=11, scenes=3, out=out, weights=str(tiny_weights), show=2, stream=text)
    assert result["seed"] == 11 and result["num_questions"] == 90
    # the same questions answered one scene at a time, without the Examples machinery
    model = keras.saving.load_model(tiny_weights)
    data = sort_of_clevr.generate_scenes(3, seed=11, split="test")
    correct = {t: [] for t in sort_of_clevr.TYPE_NAMES}
    for i in range(3):
        images = np.repeat(data["image"][i][None].astype(np.float32) / 255.0, 30, axis=0)
        logits = model.predict({"image": images, "question": data["question"][i]}, verbose=0)
        for j, (guess, truth) in enumerate(zip(np.argmax(logits, -1), data["answer"][i])):
            correct[sort_of_clevr.TYPE_NAMES[data["kind"][i, j] // 3]].append(guess == truth)
    for t, hits in correct.items():
        assert result["accuracy"][f"accuracy/{t}"] == pytest.approx(np.mean(hits), abs=1e-6)
    assert "non-relational" in text.getvalue() and "seed 11" in text.getvalue()
    from PIL import Image

    png = Image.open(out)
    assert png.size[0] > 1000 and png.size[1] > 300
    pixels = np.asarray(png.convert("RGB"))
    assert (pixels == (255, 0, 0)).all(-1).sum() > 50  # the red object of a scene is drawn


def test_demo_refuses_models_of_other_datasets():
    out = subprocess.run([sys.executable, "-m", "relzoo.cli", "demo", "rn_nearest_object", "--show", "0"], cwd=ROOT,
                         capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=120)
    assert out.returncode == 2 and "demo shows models of" in out.stderr

"""benchmarks.dev_accuracy: fresh scenes from another seed's validation stream, scored per group."""

import json

import numpy as np
import pytest

from benchmarks import dev_accuracy
from relzoo.datasets import sort_of_clevr


def test_dev_spec_reseeds_and_refuses_the_cards_seed():
    spec = {"name": "sort_of_clevr", "seed": 0, "validation_size": 200, "test_size": 200}
    assert dev_accuracy.dev_spec(spec, 50, 7) == {**spec, "seed": 7, "validation_size": 50}
    with pytest.raises(ValueError, match="is the data set's own seed"):
        dev_accuracy.dev_spec(spec, 50, 0)


def test_scores_the_fresh_scenes(tmp_path, capsys):
    import keras

    from relzoo.models import build_rn_pixels

    keras.utils.set_random_seed(1)
    model = build_rn_pixels(conv_filters=4, g_units=[8, 8], f_units=[8], name="rn_sort_of_clevr")
    path = tmp_path / "model.keras"
    model.save(path)
    dev_accuracy.main(["rn_sort_of_clevr", "--weights", str(path), "--scenes", "3", "--seed", "9", "--json"])
    record = json.loads(capsys.readouterr().out)
    scenes = sort_of_clevr.generate_scenes(3, seed=9, split="validation")
    images = scenes["image"].astype("float32") / 255.0
    guesses = np.stack([np.argmax(model.predict({"image": images, "question": scenes["question"][:, j]}, verbose=0),
                                  -1) for j in range(30)], axis=1)
    assert record["num_examples"] == 90 and record["dev_set"] == {"seed": 9, "scenes": 3}
    assert record["values"]["accuracy"] == pytest.approx(np.mean(guesses == scenes["answer"]), abs=1e-6)

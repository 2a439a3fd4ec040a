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


# ----------------------------------------------------------------------------- CLEVR-format world


def _spread_answers(model, examples, prior=0.5):
    """Makes an untrained tiny CLEVR model answer differently per question (and sometimes right).

    Untrained, the relation's sum over pairs (values ~1e2..1e3, varying by ~1 between inputs) gives the
    same answer to every question, and a demo that mixed up the questions' order would still match the
    independent count. So: larger word embeddings (the question matters), then f's pre-activations and
    the logits centred and scaled on calibration examples, plus `prior` x the answers' log frequency.
    """
    import keras

    inputs = examples.batch(slice(None))
    embedding = model.get_layer("word_embedding")
    embedding.set_weights([w * 40 for w in embedding.get_weights()])
    for name in ("f_0", "answer_logits"):
        layer = model.get_layer(name)
        x = keras.Model(model.inputs, layer.input).predict(inputs, verbose=0)
        kernel, bias = layer.get_weights()
        pre = x @ kernel + bias
        std = pre.std(0) + 1e-6
        bias = (bias - pre.mean(0)) / std
        if name == "answer_logits":
            bias = bias + prior * np.log(np.bincount(examples.answers, minlength=len(bias)) + 0.1)
        layer.set_weights([kernel / std, bias])
    return model


@pytest.fixture(scope="module")
def tiny_clevr_weights(tmp_path_factory):
    """Tiny models with the inputs and outputs of the zoo's `rn_clevr` and `rn_clevr_state`."""
    import keras

    from relzoo.datasets.clevr import dataset, features
    from relzoo.models.rn import build_rn_clevr_pixels, build_rn_clevr_state

    folder = tmp_path_factory.mktemp("demo_clevr")
    # calibration scenes from the train split (the tests answer the test split's)
    scenes, questions, _ = dataset.generate_split(6, seed=1, split="train", representation=("pixels", "state"),
                                                  workers=1, progress=False)
    keras.utils.set_random_seed(0)
    pixels = build_rn_clevr_pixels(vocab_size=90, conv_filters=4, g_units=[8, 8], f_units=[8], lstm_units=8,
                                   embedding_dim=4, name="rn_clevr")
    _spread_answers(pixels, features.to_examples(scenes, questions, "pixels")).save(folder / "rn_clevr.keras")
    keras.utils.set_random_seed(0)
    state = build_rn_clevr_state(vocab_size=90, g_units=[8, 8], f_units=[8], lstm_units=8, embedding_dim=4,
                                 name="rn_clevr_state")
    _spread_answers(state, features.to_examples(scenes, questions, "state")).save(folder / "rn_clevr_state.keras")
    return {"rn_clevr": folder / "rn_clevr.keras", "rn_clevr_state": folder / "rn_clevr_state.keras"}


def _independent_clevr_accuracy(path, num_scenes, seed, pixels):
    """Per-category and overall accuracy and the number of questions, one scene at a time, without
    `Examples` or `features.to_examples`."""
    import keras

    from relzoo.datasets.clevr import dataset, features

    model = keras.saving.load_model(path)
    scenes, questions, _ = dataset.generate_split(num_scenes, seed=seed, split="test", workers=1, progress=False,
                                                  representation="pixels" if pixels else "state")
    hits = {c: [] for c in features.CATEGORIES}
    answers_given = set()
    for i in range(num_scenes):
        rows = np.flatnonzero(questions["scene_index"] == i)
        n = len(rows)
        if pixels:
            inputs = {"image": np.repeat(scenes["image"][i][None].astype(np.float32) / 255.0, n, axis=0)}
        else:
            inputs = {"objects": np.repeat(scenes["objects"][i][None], n, axis=0),
                      "object_mask": np.repeat(scenes["object_mask"][i][None], n, axis=0)}
        inputs["question"] = questions["question_tokens"][rows]
        guesses = np.argmax(model.predict(inputs, verbose=0), -1)
        answers_given.update(guesses.tolist())
        for guess, truth, category in zip(guesses, questions["answer"][rows], questions["category"][rows]):
            hits[features.CATEGORIES[category]].append(guess == truth)
    everything = [h for c in hits.values() for h in c]
    values = {f"accuracy/{c}": np.mean(h) for c, h in hits.items() if h}
    values["accuracy"] = np.mean(everything)
    # a meaningful comparison: the model gives several answers, some right and some wrong
    assert len(answers_given) > 1 and 0 < values["accuracy"] < 1
    return values, len(everything)


def test_demo_clevr_counts_and_draws(tiny_clevr_weights, tmp_path):
    out = tmp_path / "demo_clevr.png"
    text = io.StringIO()
    result = run_demo("rn_clevr", seed=5, scenes=3, out=out, weights=str(tiny_clevr_weights["rn_clevr"]), show=2,
                      stream=text)
    expected, num_questions = _independent_clevr_accuracy(tiny_clevr_weights["rn_clevr"], 3, 5, pixels=True)
    assert result["seed"] == 5 and result["num_questions"] == num_questions > 0
    assert set(result["accuracy"]) == set(expected)
    for key, value in expected.items():
        assert result["accuracy"][key] == pytest.approx(value, abs=1e-6), key
    printed = text.getvalue()
    assert "seed 5" in printed and "overall" in printed
    assert any(key.split("/", 1)[1] in printed for key in expected if "/" in key)
    assert result["png"] == str(out)
    from PIL import Image

    png = Image.open(out)
    assert png.size[0] > 800
    pixels = np.asarray(png.convert("RGB")).astype(int)
    verdicts = (pixels == (0, 130, 0)).all(-1) | (pixels == (200, 0, 0)).all(-1)
    assert verdicts.sum() > 20  # the "model: ... truth: ..." lines
    render = (pixels < 235).any(-1)
    assert render.sum() > 2 * (128 * 3) ** 2 // 2  # two enlarged renders, mostly non-white


def test_demo_clevr_state(tiny_clevr_weights, tmp_path):
    path = tiny_clevr_weights["rn_clevr_state"]
    result = run_demo("rn_clevr_state", seed=5, scenes=3, out=tmp_path / "state.png", weights=str(path), show=1,
                      stream=io.StringIO())
    expected, num_questions = _independent_clevr_accuracy(path, 3, 5, pixels=False)
    assert result["num_questions"] == num_questions
    assert set(result["accuracy"]) == set(expected)
    for key, value in expected.items():
        assert result["accuracy"][key] == pytest.approx(value, abs=1e-6), key
    assert Path(result["png"]).is_file()


def _published_demo_models():
    """Published artifacts whose data set the demo shows (they become tested as they land)."""
    from relzoo import hub, presets
    from relzoo.demo import DEMO_DATASETS

    return [n for n in hub.shipped_models() if presets.get(n).dataset.get("name") in DEMO_DATASETS]


@pytest.mark.parametrize("name", _published_demo_models())
def test_published_model_demo_matches_its_card(name, tmp_path, monkeypatch):
    """The README's first command on the published weights: fresh scenes score like the card's test split."""
    from relzoo import hub, presets

    monkeypatch.delenv(hub.HOME_ENV, raising=False)
    out = tmp_path / "demo.png"
    text = io.StringIO()
    result = run_demo(name, seed=20261121, scenes=100, out=out, show=3, stream=text)
    assert result["card"], f"{name}: the demo found no test metrics in the card"
    # fresh scenes from the same generator score within 5 standard errors of the card's values:
    # overall, and per question type in Sort-of-CLEVR (a third of the questions each)
    counts = {"accuracy": result["num_questions"]}
    if presets.get(name).dataset["name"] == "sort_of_clevr":
        counts.update({f"accuracy/{t}": result["num_questions"] / 3 for t in sort_of_clevr.TYPE_NAMES})
    for key, count in counts.items():
        card_value, value = result["card"][key], result["accuracy"][key]
        tolerance = 5 * np.sqrt(max(card_value * (1 - card_value), 0.01) / count)
        assert abs(value - card_value) <= tolerance, (key, value, card_value)
    assert "card (test)" in text.getvalue()
    from PIL import Image

    assert Image.open(out).size[0] > 600


def test_readme_first_command_runs_the_demo():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- main-command -->", 1)[1].split("```", 2)[1]
    assert "relzoo demo" in block, block

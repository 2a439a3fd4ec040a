"""The CLEVR models as users meet them: English questions in, answers out, the vocabulary that
travels with the artifact, `relzoo evaluate --data` on a real-CLEVR folder, and fine-tuning a
loaded model on the real-CLEVR reader's features (tiny folders, tiny configs)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import relzoo
from relzoo import artifacts, hub, text
from relzoo.datasets.clevr import dataset, executor
from relzoo.datasets.clevr import features as F
from relzoo.datasets.clevr.reader import ClevrFolder
from relzoo.evaluate import evaluate
from relzoo.models.rn import build_rn_clevr_pixels, build_rn_clevr_state

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(vocab_size=90, embedding_dim=8, lstm_units=16, g_units=[16, 16], f_units=[16], dropout=0.0)


def _tiny_pixels(seed=0):
    keras.utils.set_random_seed(seed)
    return build_rn_clevr_pixels(conv_filters=8, name="rn_clevr", **TINY)


def _card(name):
    entry = relzoo.presets.get(name)
    return {"name": name, "description": "a tiny untrained stand-in for tests", "paper": entry.paper,
            "dataset": entry.dataset, "metrics": [], "training": {"note": "untrained"}}


def _publish(model, home, name):
    """An artifact of `model` under `home/name/`, as the trainer writes it (vocabulary included)."""
    entry = relzoo.presets.get(name)
    return artifacts.write_artifact(model, Path(home) / name, _card(name),
                                    extra_files={"vocabulary": text.shipped_vocabulary_path(entry.question_vocab)})


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv(relzoo.hub.HOME_ENV, str(tmp_path / "home"))
    return tmp_path / "home"


# ------------------------------------------------------------------ text helpers
def test_encode_questions_uses_the_shipped_vocabulary_without_an_artifact(home):
    ids = relzoo.encode_questions("rn_clevr", ["How many cubes are there?", "Is there a zorblax?"])
    vocab = F.Vocabulary.shipped("clevr")
    assert ids.shape == (2, 50) and ids.dtype == np.int32
    np.testing.assert_array_equal(ids[0], vocab.encode("How many cubes are there?"))
    assert vocab.decode(ids[0]) == "how many cubes are there ?"
    assert ids[1][4] == vocab.index[F.UNK]  # the unknown word
    assert relzoo.encode_questions("rn_clevr_state", "How many cubes are there?").shape == (1, 50)


def test_text_helpers_reject_bad_input(home):
    with pytest.raises(ValueError, match="does not read questions as token ids"):
        relzoo.encode_questions("rn_sort_of_clevr", "Is it red?")
    with pytest.raises(TypeError, match="question string"):
        relzoo.encode_questions("rn_clevr", [3])
    with pytest.raises(ValueError, match="at most 48 fit"):
        relzoo.encode_questions("rn_clevr", "cube " * 49)
    with pytest.raises(ValueError, match="28 answers"):
        relzoo.decode_answers("rn_clevr", np.zeros((2, 10)))
    with pytest.raises(ValueError, match=r"in \[0, 28\)"):
        relzoo.decode_answers("rn_clevr", np.array([3, 28]))
    assert relzoo.decode_answers("rn_clevr", np.array([0, 27])) == [executor.ANSWERS[0], executor.ANSWERS[27]]
    model = _tiny_pixels()
    with pytest.raises(ValueError, match="missing \\['image'\\]"):
        relzoo.ask("rn_clevr", "Is there a cube?", model=model)
    with pytest.raises(ValueError, match="values in \\[0, 1\\]"):
        relzoo.ask("rn_clevr", "Is there a cube?", model=model, image=np.full((128, 128, 3), 200.0))
    with pytest.raises(ValueError, match="shape \\(128, 128, 3\\)"):
        relzoo.ask("rn_clevr", "Is there a cube?", model=model, image=np.zeros((64, 64, 3), np.uint8))


def test_ask_answers_as_the_model_predicts(home):
    model = _tiny_pixels()
    scenes, questions, records = dataset.generate_split(2, seed=3, split="test", workers=1, progress=False)
    texts = [r["question"] for r in records[:6]]
    image = scenes["image"][questions["scene_index"][0]]
    answers = relzoo.ask("rn_clevr", texts, model=model, image=image)
    logits = model.predict({"image": np.repeat(image[None].astype(np.float32) / 255.0, 6, 0),
                            "question": questions["question_tokens"][:6]}, verbose=0)
    assert answers == [executor.ANSWERS[i] for i in np.argmax(logits, -1)]
    assert relzoo.ask("rn_clevr", texts[0], model=model, image=image) == answers[0]  # one string in, one out


# ------------------------------------------------------------ the artifact's vocab
def test_the_vocabulary_travels_with_the_artifact_and_is_checked(home):
    card = _publish(_tiny_pixels(), home, "rn_clevr")
    assert card["vocabulary"]["file"] == "vocab.json"
    assert (home / "rn_clevr" / "vocab.json").read_bytes() == F.VOCAB_FILE.read_bytes()
    assert card["vocabulary"]["sha256"] == artifacts.sha256_file(F.VOCAB_FILE)
    assert relzoo.text.vocabulary("rn_clevr").tokens == F.Vocabulary.shipped("clevr").tokens
    model = relzoo.load("rn_clevr")
    assert sorted(t.name for t in model.inputs) == ["image", "question"]
    # an altered vocabulary would silently change every answer: refused, naming the file
    path = home / "rn_clevr" / "vocab.json"
    data = json.loads(path.read_text())
    table = data["question_token_to_idx"]
    table["cube"], table["sphere"] = table["sphere"], table["cube"]
    path.write_text(json.dumps(data, indent=1) + "\n")
    with pytest.raises(relzoo.ArtifactIntegrityError, match="vocabulary file .*vocab.json"):
        relzoo.encode_questions("rn_clevr", "Is there a cube?")
    with pytest.raises(relzoo.ArtifactIntegrityError, match="vocabulary file"):
        relzoo.load("rn_clevr")
    out = subprocess.run([sys.executable, "-m", "relzoo.cli", "verify", "rn_clevr"], cwd=ROOT, capture_output=True,
                         text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=120)
    assert out.returncode == 1 and "BROKEN" in out.stdout and "vocab.json" in out.stdout


# ------------------------------------------------------------- evaluate --data
def test_evaluate_on_a_real_clevr_folder_per_category(home, clevr_folder):
    model = _tiny_pixels(seed=4)
    _publish(model, home, "rn_clevr")
    cmd = [sys.executable, "-m", "relzoo.cli", "evaluate", "rn_clevr", "--data", str(clevr_folder.parent), "--json"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", RELZOO_HOME=str(home)))
    assert out.returncode == 0, out.stderr[-3000:]
    record = json.loads(out.stdout)
    assert record["split"] == "validation" and record["num_examples"] == 20
    assert "--data" in record["command"] and "overall" in out.stderr
    # independently: each question of CLEVR's val file, read and answered one at a time
    folder = ClevrFolder(clevr_folder)
    hits = {}
    for f in folder.features("val"):
        logits = model.predict({"image": f["image"][None].astype(np.float32) / 255.0,
                                "question": f["question_tokens"][None]}, verbose=0)
        hits.setdefault(f["category"], []).append(int(np.argmax(logits)) == int(f["answer"]))
    everything = [h for v in hits.values() for h in v]
    assert record["values"]["accuracy"] == pytest.approx(np.mean(everything), abs=1e-6)
    for category, h in hits.items():
        assert record["values"][f"accuracy/{category}"] == pytest.approx(np.mean(h), abs=1e-6)
        assert category in out.stderr
    # a split the folder lacks: a clear error naming what was expected, not a traceback
    bad = subprocess.run(cmd[:-1] + ["--split", "test"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", RELZOO_HOME=str(home)))
    assert bad.returncode == 2 and "relzoo: error" in bad.stderr and "CLEVR_test_questions.json" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_evaluate_data_refuses_other_models():
    with pytest.raises(ValueError, match="--data reads"):
        evaluate("rn_nearest_object", data="/nonexistent", weights=None)


# ----------------------------------------------------------------- fine-tuning
def test_fine_tune_a_loaded_model_on_real_clevr_features(home, clevr_folder):
    """`relzoo.load("rn_clevr")`, compile, fit on the reader's features: the loss falls and the
    weights move; the fine-tuned model saves and loads back with the same predictions."""
    _publish(_tiny_pixels(seed=5), home, "rn_clevr")
    model = relzoo.load("rn_clevr")
    train = ClevrFolder(clevr_folder).examples("train", "pixels")
    assert len(train) == 24 and set(train.input_names) == {"image", "question"}
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    before = [w.copy() for w in model.get_weights()]
    first = model.evaluate(train.tf_dataset(24), verbose=0, return_dict=True)["loss"]
    history = model.fit(train.tf_dataset(8, shuffle=True), epochs=25, verbose=0)
    last = model.evaluate(train.tf_dataset(24), verbose=0, return_dict=True)["loss"]
    assert np.isfinite(history.history["loss"]).all()
    assert last < 0.5 * first, (first, last)  # it learns the 24 questions
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    path = home / "finetuned.keras"
    model.save(path)
    again = relzoo.load("rn_clevr", weights=str(path))
    inputs = train.batch(slice(0, 8))
    np.testing.assert_allclose(again.predict(inputs, verbose=0), model.predict(inputs, verbose=0), atol=1e-5)


# ------------------------------------------------------ the trainer on CLEVR data
TRAIN_TINY = ["dataset.train_size=6", "dataset.validation_size=2", "dataset.test_size=2", "train.epochs=1",
              "train.batch_size=16", "train.warmup_steps=2", "model.g_units=[16, 16]",
              "model.f_units=[16]", "model.lstm_units=16", "model.embedding_dim=8"]


@pytest.mark.slow
@pytest.mark.parametrize("recipe,extra", [
    ("rn_clevr_state.toml", []),
    ("rn_clevr.toml", ["model.conv_filters=8", "train.dtype_policy=float32"]),
])
def test_clevr_recipes_train_and_ship_the_vocabulary(tmp_path, recipe, extra):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "training.train", f"training/recipes/{recipe}", *TRAIN_TINY, *extra,
           "--run-dir", str(run), "--verbose", "2"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.returncode == 0, out.stderr[-3000:]
    card = artifacts.verify_artifact(run / "artifact")
    assert card["vocabulary"]["sha256"] == artifacts.sha256_file(F.VOCAB_FILE)
    test = [m for m in card["metrics"] if m["split"] == "test"][0]
    assert test["num_examples"] == 20 and set(test["values"]) >= {"accuracy"}
    assert all(k.split("/", 1)[1] in F.CATEGORIES for k in test["values"] if "/" in k)


def test_family_accuracy_breaks_the_split_down_by_family_and_object_count():
    from benchmarks.clevr_families import family_accuracy
    from relzoo import hub, presets

    entry = presets.get("rn_clevr_state")
    model = presets.build("rn_clevr_state")
    rows, by_objects, overall, count = family_accuracy(model, entry.dataset, "validation", num_scenes=3)
    assert count == sum(n for _, n, _ in rows) == sum(n for _, n in by_objects.values()) > 0
    assert [acc for acc, _, _ in rows] == sorted(acc for acc, _, _ in rows)
    assert abs(overall - sum(acc * n for acc, n, _ in rows) / count) < 1e-9
    assert set(by_objects) <= set(range(3, 11))


def test_answer_prior_answers_each_family_with_its_commonest_training_answer():
    import numpy as np

    from benchmarks.clevr_families import answer_prior
    from relzoo import presets
    from relzoo.datasets.clevr import dataset as D
    from relzoo.datasets.clevr.questions import CATEGORIES

    spec = presets.get("rn_clevr").dataset
    values = answer_prior(spec, "validation", fit_scenes=40, num_scenes=5)
    fit = D.generate_split(40, seed=spec["seed"], split="train", representation="state", progress=False)[1]
    score = D.generate_split(5, seed=spec["seed"], split="validation", representation="state", progress=False)[1]
    right = [score["answer"][i] == np.bincount(fit["answer"][fit["family"] == f]).argmax()
             if (fit["family"] == f).any() else False for i, f in enumerate(score["family"])]
    assert abs(values["overall"] - np.mean(right)) < 1e-9
    assert set(values) - {"overall"} <= set(CATEGORIES) and 0 <= values["overall"] < 1


def _train(recipe, run, *overrides):
    cmd = [sys.executable, "-m", "training.train", f"training/recipes/{recipe}", *overrides, "--run-dir", str(run),
           "--verbose", "2"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


@pytest.mark.slow
def test_rn_clevr_detect_recipes_run_on_a_real_clevr_folder(tmp_path, clevr_folder):
    """rn_clevr_detect's two stages on real CLEVR's layout: only the data set spec changes on the command line
    (a small stem keeps it quick; the reasoning layers are rn_clevr_state's, as in the recipe)."""
    real = ['dataset.name="clevr_v1"', 'dataset.version="1.0"', f'dataset.options.root="{clevr_folder}"',
            "dataset.train_size=6", "dataset.validation_size=2", "dataset.test_size=2", "train.epochs=1",
            "train.warmup_steps=1", "model.conv_filters=8", "model.cell_hidden=16"]
    first = _train("rn_clevr_cells.toml", tmp_path / "cells", *real)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "per-cell loss (weight 1)" in first.stdout and "starting from the layers word_embedding" in first.stdout
    stem = hub.load_keras_file(tmp_path / "cells" / "artifact" / "model.keras")
    state = relzoo.load("rn_clevr_state")
    for name in ("question_lstm", "relation", "f_1"):  # frozen in the first stage: rn_clevr_state's weights
        for a, b in zip(stem.get_layer(name).get_weights(), state.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    first_stage = tmp_path / "cells" / "artifact" / "model.keras"
    stem_run = (tmp_path / "stem", *real, f'train.init_from="{first_stage}"', "train.scenes_per_batch=4")
    stem = _train("rn_clevr_stem.toml", *stem_run)
    assert stem.returncode == 0, stem.stderr[-3000:]
    assert "stem pre-training: 4 training scenes a batch, 2 batches an epoch" in stem.stdout
    resumed = _train("rn_clevr_stem.toml", *stem_run[:-2], "train.epochs=2", *stem_run[-2:])  # resumes at 1 of 2
    assert resumed.returncode == 0 and "resuming from the checkpoint" in resumed.stdout, resumed.stderr[-3000:]
    source = tmp_path / "stem" / "artifact" / "model.keras"
    pre_trained = hub.load_keras_file(source)
    for name in ("relation", "f_1"):  # the stem feed trains the stem alone, a resumed run too
        for a, b in zip(pre_trained.get_layer(name).get_weights(), state.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert not np.allclose(pre_trained.get_layer("cells").get_weights()[0],
                           hub.load_keras_file(first_stage).get_layer("cells").get_weights()[0])
    second = _train("rn_clevr_detect.toml", tmp_path / "second", *real, f'train.init_from="{source}"')
    assert second.returncode == 0, second.stderr[-3000:]
    card = artifacts.verify_artifact(tmp_path / "second" / "artifact")
    assert card["dataset"]["name"] == "clevr_v1" and card["training"]["init_from"]["sha256"]
    test = [m for m in card["metrics"] if m["split"] == "test"][0]
    assert test["num_examples"] == 10

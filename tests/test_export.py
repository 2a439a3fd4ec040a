"""TF Serving export: layout, signature, warm-up records, and serving without relzoo."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import relzoo
from relzoo import export as rexport
from relzoo.datasets import load_split

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
NAME = "rn_nearest_object"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    model = relzoo.load(NAME, weights=None)  # random weights are enough to compare outputs
    keras_path = base / "model.keras"
    model.save(keras_path)
    target = rexport.export(NAME, base / "models", version=3, model=model)
    return base, model, keras_path, target


def test_layout_and_signature(exported):
    base, _, _, target = exported
    assert target == base / "models" / NAME / "3"
    assert (target / "saved_model.pb").is_file() and (target / "variables").is_dir()
    cli = Path(sys.executable).parent / "saved_model_cli"
    out = subprocess.run([str(cli), "show", "--all", "--dir", str(target)], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "signature_def['serving_default']" in text
    for name in ("inputs['objects']", "inputs['question']", "outputs['answer_logits']", "outputs['answer_id']",
                 "outputs['answer']", "outputs['answer_probabilities']"):
        assert name in text, name
    assert "shape: (-1, 6, 8)" in text and "tensorflow/serving/predict" in text


SERVE_WITHOUT_RELZOO = """
import sys, json
import numpy as np
sys.modules["relzoo"] = None            # importing relzoo now raises ImportError
try:
    import relzoo
    raise SystemExit("relzoo was importable")
except ImportError:
    pass
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
serve = loaded.signatures["serving_default"]
data = np.load(sys.argv[2])
out = serve(**{k: tf.constant(data[k]) for k in data.files})
np.savez(sys.argv[3], **{k: (v.numpy().astype("S") if v.dtype == tf.string else v.numpy()) for k, v in out.items()})
body = json.load(open(sys.argv[4]))
inst = body["instances"]
spec = serve.structured_input_signature[1]
feeds = {k: tf.constant(np.array([i[k] for i in inst]), dtype=spec[k].dtype) for k in inst[0]}
print(json.dumps({"rest_answer": [a.decode() for a in serve(**feeds)["answer"].numpy()]}))
"""


def _serve_without_relzoo(target, inputs, tmp_path):
    """Runs the SavedModel in a fresh process where relzoo cannot be imported; returns (outputs, stdout)."""
    np.savez(tmp_path / "in.npz", **inputs)
    rest = target / "assets.extra" / rexport.REST_EXAMPLE_FILE
    out = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_RELZOO, str(target), str(tmp_path / "in.npz"), str(tmp_path / "out.npz"),
         str(rest)],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=180, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return np.load(tmp_path / "out.npz"), out.stdout


def test_serves_in_a_process_without_relzoo(exported, tmp_path):
    _, model, _, target = exported
    inputs = load_split(dict(relzoo.presets.get(NAME).dataset, test_size=7), "test").batch(slice(0, 7))
    got, stdout = _serve_without_relzoo(target, inputs, tmp_path)
    want = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(got["answer_logits"], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got["answer_id"], np.argmax(want, -1))
    vocab = relzoo.presets.get(NAME).answer_vocab
    assert [a.decode() for a in got["answer"]] == [vocab[i] for i in np.argmax(want, -1)]
    np.testing.assert_allclose(got["answer_probabilities"].sum(-1), 1.0, rtol=1e-5)
    # the REST example body is valid for the signature
    assert len(json.loads(stdout.strip().splitlines()[-1])["rest_answer"]) == 1


def test_warmup_file_holds_prediction_logs(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    _, _, _, target = exported
    path = target / "assets.extra" / rexport.WARMUP_FILE
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]
    assert len(logs) == 2
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == NAME and request.model_spec.signature_name == "serving_default"
        assert set(request.inputs) == {"objects", "question"}
        assert tuple(tf.make_ndarray(request.inputs["objects"]).shape) == (1, 6, 8)


def test_cli_export_and_errors(exported, tmp_path):
    _, _, keras_path, _ = exported
    cmd = [sys.executable, "-m", "relzoo.cli", "export", NAME, str(tmp_path / "m"), "--version", "7",
           "--weights", str(keras_path)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "m" / NAME / "7" / "saved_model.pb").is_file()
    body = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(body["instances"][0]) == {"objects", "question"}
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert again.returncode == 2 and "exists" in again.stderr  # nothing is silently replaced
    with pytest.raises(ValueError, match="version"):
        rexport.export(NAME, tmp_path / "x", version=-1, model=relzoo.load(NAME, weights=None))


def test_sort_of_clevr_pixel_model_serves_without_relzoo(tmp_path):
    """The image model's SavedModel answers real questions in a relzoo-free process, as Keras does."""
    name = "rn_sort_of_clevr"
    model = relzoo.load(name, weights=None)
    target = rexport.export(name, tmp_path / "models", model=model)
    examples = load_split(dict(relzoo.presets.get(name).dataset, test_size=1), "test")
    inputs = examples.batch(np.arange(0, 30, 3))  # 10 questions of all three types about one image
    got, stdout = _serve_without_relzoo(target, inputs, tmp_path)
    want = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(got["answer_logits"], want, rtol=1e-4, atol=1e-4)
    vocab = relzoo.presets.get(name).answer_vocab
    assert [a.decode() for a in got["answer"]] == [vocab[i] for i in np.argmax(want, -1)]
    body = json.loads((target / "assets.extra" / rexport.REST_EXAMPLE_FILE).read_text())
    assert np.shape(body["instances"][0]["image"]) == (75, 75, 3)
    assert len(json.loads(stdout.strip().splitlines()[-1])["rest_answer"]) == 1


def test_recurrent_rmc_model_serves_without_relzoo(tmp_path):
    """The RelationalMemoryCell's RNN exports and answers equally in a relzoo-free process."""
    name = "rmc_nth_farthest"
    model = relzoo.load(name, weights=None)
    target = rexport.export(name, tmp_path / "models", model=model)
    inputs = load_split(dict(relzoo.presets.get(name).dataset, test_size=5), "test").batch(slice(0, 5))
    got, _ = _serve_without_relzoo(target, inputs, tmp_path)
    want = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(got["answer_logits"], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got["answer_id"], np.argmax(want, -1))


SERVE_TEXT_WITHOUT_RELZOO = """
import sys, json
import numpy as np
sys.modules["relzoo"] = None
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
data = np.load(sys.argv[2])
by_text = loaded.signatures["answer_text"](image=tf.constant(data["image"]),
                                           question_text=tf.constant([str(q) for q in data["question_text"]]))
by_ids = loaded.signatures["serving_default"](image=tf.constant(data["image"]), question=tf.constant(data["question"]))
body = json.load(open(sys.argv[3]))
inst = body["instances"]
rest = loaded.signatures[body["signature_name"]](
    image=tf.constant(np.array([i["image"] for i in inst], np.float32)),
    question_text=tf.constant([i["question_text"] for i in inst]))
np.savez(sys.argv[4], text_logits=by_text["answer_logits"].numpy(), ids_logits=by_ids["answer_logits"].numpy(),
         answer=by_text["answer"].numpy().astype("S"))
print(json.dumps({"rest_answer": [a.decode() for a in rest["answer"].numpy()]}))
"""


def test_clevr_model_answers_english_questions_without_relzoo(tmp_path):
    """rn_clevr's SavedModel: `answer_text` tokenises in the graph exactly as relzoo does, and a
    relzoo-free process gets the Keras model's answers from English questions."""
    import keras

    from relzoo.datasets.clevr import dataset, features
    from relzoo.models.rn import build_rn_clevr_pixels

    keras.utils.set_random_seed(0)
    model = build_rn_clevr_pixels(vocab_size=90, conv_filters=8, embedding_dim=8, lstm_units=16, g_units=[16, 16],
                                  f_units=[16], name="rn_clevr")
    target = rexport.export("rn_clevr", tmp_path / "models", model=model)
    extra = target / "assets.extra"
    assert features.Vocabulary.load(extra / rexport.VOCAB_FILE).tokens == features.Vocabulary.shipped("clevr").tokens
    scenes, questions, records = dataset.generate_split(2, seed=9, split="test", workers=1, progress=False)
    texts = [r["question"] for r in records]
    # punctuation, case, spacing and unknown words go through the same tokenisation
    texts += ["IS there a  big,red cube;or a zorblax?!", "how many   spheres are there"]
    image = scenes["image"][questions["scene_index"]].astype(np.float32) / 255.0
    image = np.concatenate([image, image[:2]])
    ids = relzoo.encode_questions("rn_clevr", texts)
    np.savez(tmp_path / "in.npz", image=image, question=ids, question_text=np.array(texts))
    out = subprocess.run(
        [sys.executable, "-c", SERVE_TEXT_WITHOUT_RELZOO, str(target), str(tmp_path / "in.npz"),
         str(extra / rexport.REST_TEXT_EXAMPLE_FILE), str(tmp_path / "out.npz")],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(got["text_logits"], got["ids_logits"])  # the graph's token ids are relzoo's
    want = model.predict({"image": image, "question": ids}, verbose=0)
    np.testing.assert_allclose(got["text_logits"], want, rtol=1e-4, atol=1e-4)
    assert [a.decode() for a in got["answer"]] == relzoo.decode_answers("rn_clevr", want)
    assert len(json.loads(out.stdout.strip().splitlines()[-1])["rest_answer"]) == 1
    assert "answer_text" in rexport.describe("rn_clevr", target)


@pytest.mark.parametrize("name", relzoo.hub.shipped_models())
def test_published_artifact_serves_without_relzoo(name, tmp_path, monkeypatch):
    """Each published artifact, exported as a user would, answers test questions in a relzoo-free
    process exactly as the Keras model does."""
    monkeypatch.delenv(relzoo.hub.HOME_ENV, raising=False)
    target = rexport.export(name, tmp_path / "models")  # the published weights
    model = relzoo.load(name)
    spec = relzoo.presets.get(name).dataset
    # a few test-split examples from a short split (rendering all 1,500 CLEVR test scenes takes minutes)
    examples = load_split({**spec, "test_size": min(spec["test_size"], 48)}, "test")
    inputs = examples.batch(np.arange(0, min(len(examples), 48), 3))
    got, stdout = _serve_without_relzoo(target, inputs, tmp_path)
    want = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(got["answer_logits"], want, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(got["answer_id"], np.argmax(want, -1))
    assert len(json.loads(stdout.strip().splitlines()[-1])["rest_answer"]) == 1

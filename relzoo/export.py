"""TensorFlow Serving export: `relzoo export NAME OUTDIR [--version N]`.

Writes `OUTDIR/NAME/N/` in TensorFlow Serving's layout:

    saved_model.pb, variables/        the SavedModel
    assets.extra/tf_serving_warmup_requests    PredictionLog records (TF Serving warms up with them)
    assets.extra/rest_request_example.json     a REST body that matches the signature

The `serving_default` signature takes the model's named inputs (e.g. `objects`,
`question`) and returns `answer_logits`, `answer_probabilities`, `answer_id`
and, where the model has an answer vocabulary, `answer` (the answer string).

Models that read questions as token ids (`rn_clevr`, `rn_clevr_state`) also get:

    assets.extra/vocab.json           the question vocabulary (CLEVR-IEP's layout)
    signature `answer_text`           the scene inputs and `question_text` (a string per
                                      example) -> the same outputs; the question is
                                      tokenised inside the graph exactly as
                                      `relzoo.encode_questions` does (lower case, words
                                      and ? ; , . !, unknown words -> <UNK>)

The SavedModel needs TensorFlow only: no relzoo, no custom Python code.
"""

import json
import shutil
from pathlib import Path

import numpy as np

WARMUP_FILE = "tf_serving_warmup_requests"
REST_EXAMPLE_FILE = "rest_request_example.json"
REST_TEXT_EXAMPLE_FILE = "rest_request_text_example.json"
VOCAB_FILE = "vocab.json"
TEXT_SIGNATURE = "answer_text"


def _example_inputs(preset, count):
    """A few real inputs from the preset's test split (zeros if it has no dataset)."""
    from relzoo.datasets import load_split

    specs = preset.specs()["inputs"]
    try:
        examples = load_split(dict(preset.dataset, test_size=count), "test")
        pick = np.linspace(0, len(examples) - 1, count).astype(int)  # spread over question kinds
        return {k: np.asarray(v) for k, v in examples.batch(pick).items() if k in specs}
    except (ValueError, KeyError):
        return {k: np.zeros([count] + [d or 1 for d in spec["shape"]], spec["dtype"]) for k, spec in specs.items()}


def rest_request_body(examples, signature_name="serving_default"):
    """`{"signature_name": ..., "instances": [{input: value, ...}, ...]}` for TF Serving's REST predict API."""
    names = list(examples)
    count = len(examples[names[0]])
    instances = [{k: np.asarray(examples[k][i]).tolist() for k in names} for i in range(count)]
    return {"signature_name": signature_name, "instances": instances}


def _warmup_records(name, examples, signature_name="serving_default"):
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    records = []
    count = len(next(iter(examples.values())))
    for i in range(count):
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=name, signature_name=signature_name),
        )
        for key, value in examples.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value[i : i + 1]))
        log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        records.append(log.SerializeToString())
    return records


def export(name, outdir, version=1, weights="pretrained", model=None, overwrite=False, warmup_examples=2):
    """Exports zoo model `name` for TensorFlow Serving; returns the version folder.

    Args:
        name: a zoo model name (its preset gives the input names, shapes and vocabulary).
        outdir: the model base path; the SavedModel goes to `outdir/name/version/`.
        version: TF Serving's integer model version.
        weights: as in `relzoo.load` (ignored when `model` is given).
        model: a `keras.Model` to export instead of loading one.
        overwrite: replace an existing version folder (otherwise it is an error).
        warmup_examples: how many warm-up requests to write.
    """
    import tensorflow as tf

    from relzoo import hub, presets

    preset = presets.get(name)
    if not isinstance(version, int) or version < 0:
        raise ValueError(f"version must be a non-negative integer (TF Serving's model version), got {version!r}.")
    target = Path(outdir) / name / str(version)
    if target.exists():
        if not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True (--overwrite) to replace it.")
        shutil.rmtree(target)
    if model is None:
        model = hub.load(preset, weights=weights)
    archive, vocabulary = _archive(preset, model)
    archive.write_out(str(target), verbose=False)
    examples = _example_inputs(preset, warmup_examples)
    extra = target / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
        for record in _warmup_records(name, examples):
            writer.write(record)
    body = rest_request_body({k: v[:1] for k, v in examples.items()})
    (extra / REST_EXAMPLE_FILE).write_text(json.dumps(body) + "\n")
    if vocabulary is not None:
        vocabulary.save(extra / VOCAB_FILE)
        text_example = {k: v[:1] for k, v in examples.items() if k != "question"}
        text_example["question_text"] = [_sentence(vocabulary.decode(examples["question"][0]))]
        body = rest_request_body(text_example, signature_name=TEXT_SIGNATURE)
        (extra / REST_TEXT_EXAMPLE_FILE).write_text(json.dumps(body) + "\n")
    return target


def _archive(preset, model):
    """`(ExportArchive, question Vocabulary or None)`: `serving_default` over the model's named
    inputs and, for models that read token ids, `answer_text` over English questions."""
    import keras
    import tensorflow as tf

    from relzoo import text

    inputs = preset.specs()["inputs"]
    input_names = list(inputs)
    specs = [tf.TensorSpec([None] + inputs[k]["shape"], tf.as_dtype(inputs[k]["dtype"]), name=k) for k in input_names]
    vocab = None if preset.answer_vocab is None else tf.constant(list(preset.answer_vocab))

    def serve(*tensors):
        logits = model(dict(zip(input_names, tensors)), training=False)
        logits = logits["answer_logits"] if isinstance(logits, dict) else logits
        answer_id = tf.argmax(logits, axis=-1)
        out = {"answer_logits": logits, "answer_probabilities": tf.nn.softmax(logits, axis=-1), "answer_id": answer_id}
        if vocab is not None:
            out["answer"] = tf.gather(vocab, answer_id)
        return out

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=serve, input_signature=specs)
    if preset.question_vocab is None:
        return archive, None
    vocabulary = text.vocabulary(preset)
    encode, table = _graph_encoder(vocabulary, text.question_length(preset))
    archive.track(table)
    scene_names = [k for k in input_names if k != "question"]

    def serve_text(*tensors):
        named = dict(zip(scene_names, tensors[:-1]))
        named["question"] = encode(tensors[-1])
        return serve(*[named[k] for k in input_names])

    text_specs = [s for s in specs if s.name != "question"] + [tf.TensorSpec([None], tf.string, name="question_text")]
    archive.add_endpoint(name=TEXT_SIGNATURE, fn=serve_text, input_signature=text_specs)
    return archive, vocabulary


def _sentence(words):
    """"is there a red cube ?" -> "Is there a red cube?" (a decoded question, written as people do)."""
    import re

    text = re.sub(r" ([?;,.!])", r"\1", words)
    return text[:1].upper() + text[1:]


def _graph_encoder(vocabulary, length):
    """A TensorFlow function `(N,) string -> (N, length) int32` that tokenises as
    `Vocabulary.encode` does, and the lookup table it uses (to be tracked by the export)."""
    import tensorflow as tf

    from relzoo import vocab

    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(list(vocabulary.tokens)),
                                            tf.range(len(vocabulary), dtype=tf.int64)),
        default_value=vocabulary.index[vocab.UNK],
    )
    start, end = vocabulary.index[vocab.START], vocabulary.index[vocab.END]

    def encode(text):
        text = tf.strings.lower(text)
        text = tf.strings.regex_replace(text, r"[^a-z0-9?;,.!]+", " ")  # what the tokenizer skips
        text = tf.strings.regex_replace(text, r"([?;,.!])", r" \1 ")  # punctuation marks are tokens
        words = tf.strings.split(text)
        ids = tf.cast(tf.ragged.map_flat_values(table.lookup, words), tf.int32)
        count = tf.shape(text)[0]
        ids = tf.concat([tf.fill([count, 1], start), ids, tf.fill([count, 1], end)], axis=1)
        longest = tf.reduce_max(tf.concat([ids.row_lengths(), tf.zeros([1], tf.int64)], 0))
        check = tf.debugging.assert_less_equal(
            longest, tf.constant(length, tf.int64),
            message=f"question_text: a question has more than {length - 2} tokens (words and ? ; , . !)")
        with tf.control_dependencies([check]):
            return ids.to_tensor(default_value=0, shape=[None, length])

    return encode, table


def _body_text(path):
    body = json.loads(path.read_text())
    text = json.dumps(body)
    if len(text) > 2000:  # an image input: show each input's shape, point at the full body
        shapes = {k: (v if isinstance(v, str) else f"shape {list(np.shape(v))}") for k, v in body["instances"][0].items()}
        text = (f'{{"signature_name": "{body["signature_name"]}", "instances": [{{...}}]}}  with one instance per '
                f"example: {json.dumps(shapes)}; a complete body is in {path} (curl -d @{path} ...)")
    return text


def describe(name, target):
    """The lines `relzoo export` prints: where it went, how to serve it, a REST body."""
    extra = Path(target) / "assets.extra"
    base = Path(target).parent.resolve()
    lines = [
        f"exported {name} to {target}",
        "serve it with TensorFlow Serving, e.g.:",
        f"  docker run -p 8501:8501 -v {base}:/models/{name} -e MODEL_NAME={name} tensorflow/serving",
        f"REST request (POST http://localhost:8501/v1/models/{name}:predict):",
        _body_text(extra / REST_EXAMPLE_FILE),
    ]
    if (extra / REST_TEXT_EXAMPLE_FILE).is_file():
        lines += [f"or with the question in English (signature {TEXT_SIGNATURE!r}; the vocabulary is in "
                  f"{extra / VOCAB_FILE}):", _body_text(extra / REST_TEXT_EXAMPLE_FILE)]
    return "\n".join(lines)

"""TensorFlow Serving export: `relzoo export NAME OUTDIR [--version N]`.

Writes `OUTDIR/NAME/N/` in TensorFlow Serving's layout:

    saved_model.pb, variables/        the SavedModel
    assets.extra/tf_serving_warmup_requests    PredictionLog records (TF Serving warms up with them)
    assets.extra/rest_request_example.json     a REST body that matches the signature

The `serving_default` signature takes the model's named inputs (e.g. `objects`,
`question`) and returns `answer_logits`, `answer_probabilities`, `answer_id`
and, where the model has an answer vocabulary, `answer` (the answer string).
The SavedModel needs TensorFlow only: no relzoo, no custom Python code.
"""

import json
import shutil
from pathlib import Path

import numpy as np

WARMUP_FILE = "tf_serving_warmup_requests"
REST_EXAMPLE_FILE = "rest_request_example.json"


def _example_inputs(entry, count):
    """A few real inputs from the entry's test split (zeros if it has no dataset)."""
    from relzoo.evaluate import dataset_split

    try:
        examples = dataset_split(dict(entry.dataset, test_size=count), "test")
        pick = np.linspace(0, len(examples) - 1, count).astype(int)  # spread over question kinds
        return {k: np.asarray(v) for k, v in examples.batch(pick).items() if k in entry.inputs}
    except (ValueError, KeyError):
        return {k: np.zeros([count] + list(spec["shape"]), spec["dtype"]) for k, spec in entry.inputs.items()}


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
        name: a zoo model name (its entry gives the input names, shapes and vocabulary).
        outdir: the model base path; the SavedModel goes to `outdir/name/version/`.
        version: TF Serving's integer model version.
        weights: as in `relzoo.load` (ignored when `model` is given).
        model: a `keras.Model` to export instead of loading one.
        overwrite: replace an existing version folder (otherwise it is an error).
        warmup_examples: how many warm-up requests to write.
    """
    import keras
    import tensorflow as tf

    from relzoo import zoo

    entry = zoo.get_entry(name)
    if not isinstance(version, int) or version < 0:
        raise ValueError(f"version must be a non-negative integer (TF Serving's model version), got {version!r}.")
    target = Path(outdir) / name / str(version)
    if target.exists():
        if not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True (--overwrite) to replace it.")
        shutil.rmtree(target)
    if model is None:
        model = zoo.load(name, weights=weights)

    input_names = list(entry.inputs)
    specs = [
        tf.TensorSpec([None] + list(entry.inputs[k]["shape"]), tf.as_dtype(entry.inputs[k]["dtype"]), name=k)
        for k in input_names
    ]
    vocab = None if entry.answer_vocab is None else tf.constant(list(entry.answer_vocab))

    def serve(*tensors):
        logits = model(dict(zip(input_names, tensors)), training=False)
        logits = logits["answer_logits"] if isinstance(logits, dict) else logits
        answer_id = tf.argmax(logits, axis=-1)
        out = {
            "answer_logits": logits,
            "answer_probabilities": tf.nn.softmax(logits, axis=-1),
            "answer_id": answer_id,
        }
        if vocab is not None:
            out["answer"] = tf.gather(vocab, answer_id)
        return out

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=serve, input_signature=specs)
    archive.write_out(str(target), verbose=False)

    examples = _example_inputs(entry, warmup_examples)
    extra = target / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
        for record in _warmup_records(name, examples):
            writer.write(record)
    body = rest_request_body({k: v[:1] for k, v in examples.items()})
    (extra / REST_EXAMPLE_FILE).write_text(json.dumps(body) + "\n")
    return target


def describe(name, target):
    """The lines `relzoo export` prints: where it went, how to serve it, a REST body."""
    path = Path(target) / "assets.extra" / REST_EXAMPLE_FILE
    body = json.loads(path.read_text())
    text = json.dumps(body)
    if len(text) > 2000:  # an image input: show each input's shape, point at the full body
        shapes = {k: list(np.shape(v)) for k, v in body["instances"][0].items()}
        text = (f'{{"signature_name": "{body["signature_name"]}", "instances": [{{...}}]}}  with one instance per '
                f"example, inputs of shapes {shapes}; a complete body is in {path} "
                f"(curl -d @{path} ...)")
    base = Path(target).parent.resolve()
    return "\n".join(
        [
            f"exported {name} to {target}",
            "serve it with TensorFlow Serving, e.g.:",
            f"  docker run -p 8501:8501 -v {base}:/models/{name} -e MODEL_NAME={name} tensorflow/serving",
            f"REST request (POST http://localhost:8501/v1/models/{name}:predict):",
            text,
        ]
    )

"""Evaluation: the code that measures every metric in a card.

`relzoo evaluate NAME [--split test]` and the trainer's final evaluation both
call `evaluate_model`, so the command a card records reproduces its numbers.
"""

import numpy as np

from relzoo.datasets import get_dataset
from relzoo.datasets.examples import Examples

SPLITS = ("train", "validation", "test")


def dataset_split(spec, split):
    """The `Examples` of a dataset spec's split (`{"name", "seed", "<split>_size", "options"}`)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    key = f"{split}_size"
    if key not in spec:
        raise ValueError(f"The dataset spec {spec.get('name')!r} has no {key!r}.")
    module = get_dataset(spec["name"])
    version = spec.get("version")
    if version is not None and version != module.VERSION:
        raise ValueError(
            f"The dataset spec asks for {spec['name']} version {version}, but this relzoo generates "
            f"version {module.VERSION}: the numbers would not be comparable."
        )
    options = spec.get("options", {})
    if hasattr(module, "generate_examples"):
        return module.generate_examples(spec[key], seed=spec["seed"], split=split, **options)
    inputs, answers = module.generate(spec[key], seed=spec["seed"], split=split, **options)
    return Examples(inputs=inputs, answers=answers)


def predict_logits(model, examples, batch_size=256):
    """The model's answer logits `(N, classes)` for `examples`, batch by batch (numpy)."""
    chunks = []
    for inputs, _ in examples.numpy_batches(batch_size):
        # predict (not predict_on_batch): correct under a distribution strategy too
        out = model.predict(inputs, batch_size=batch_size, verbose=0)
        out = out["answer_logits"] if isinstance(out, dict) else out
        chunks.append(np.asarray(out, np.float32))
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def accuracy_values(predictions, examples):
    """`{"accuracy": ...}` plus `"accuracy/<group label>"` for each group of `examples`."""
    correct = predictions == examples.answers
    values = {"accuracy": round(float(np.mean(correct)), 6)}
    for labels, names in examples.groups.values():
        labels = np.asarray(labels)
        for k, label in enumerate(names):
            hit = correct[labels == k]
            if len(hit):
                values[f"accuracy/{label}"] = round(float(np.mean(hit)), 6)
    return values


def evaluate_model(model, spec, split="test", batch_size=256):
    """Accuracy of `model` on a split, overall and per group (e.g. question type).

    Returns `{"values": {"accuracy": ..., "accuracy/<group>": ...}, "num_examples", "split"}`.
    """
    examples = dataset_split(spec, split)
    logits = predict_logits(model, examples, batch_size)
    if not np.isfinite(logits).all():
        raise FloatingPointError(f"The model produced non-finite logits on the {split} split.")
    values = accuracy_values(np.argmax(logits, axis=-1), examples)
    return {"values": values, "num_examples": int(len(examples)), "split": split}


def evaluate(name, split="test", weights="pretrained", batch_size=256):
    """Evaluates a zoo model on its dataset's split; returns a card metrics record."""
    from relzoo import zoo

    entry = zoo.get_entry(name)
    model = zoo.load(name, weights=weights)
    record = evaluate_model(model, entry.dataset, split, batch_size)
    record["command"] = evaluation_command(name, split)
    return record


def evaluation_command(name, split):
    return f"relzoo evaluate {name} --split {split}"

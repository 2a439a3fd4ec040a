"""Evaluation: the code that measures every metric in a card.

`relzoo evaluate NAME [--split test]` and the trainer's final evaluation both
call `evaluate_model`, so the command a card records reproduces its numbers.
"""

import numpy as np

from relzoo.datasets import get_dataset

SPLITS = ("train", "validation", "test")


def dataset_split(spec, split):
    """`(inputs, answers)` of a dataset spec (`{"name", "seed", "<split>_size", "options"}`)."""
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
    return module.generate(spec[key], seed=spec["seed"], split=split, **spec.get("options", {}))


def evaluate_model(model, spec, split="test", batch_size=256):
    """Accuracy of `model` on a split: `{"accuracy": float}` and the number of examples."""
    inputs, answers = dataset_split(spec, split)
    logits = model.predict(inputs, batch_size=batch_size, verbose=0)
    logits = logits["answer_logits"] if isinstance(logits, dict) else logits
    predictions = np.argmax(np.asarray(logits), axis=-1)
    accuracy = float(np.mean(predictions == answers))
    if not np.isfinite(np.asarray(logits)).all():
        raise FloatingPointError(f"The model produced non-finite logits on the {split} split.")
    return {"values": {"accuracy": round(accuracy, 6)}, "num_examples": int(len(answers)), "split": split}


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

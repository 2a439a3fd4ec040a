"""Evaluation: the code that measures every metric in a card.

`relzoo evaluate NAME [--split test]` and the trainer's final evaluation both
call `evaluate_examples` on the same split, so the command a card records
reproduces its numbers. `relzoo evaluate NAME --data PATH` measures a model on a
local copy of the real data set (CLEVR v1.0 for the CLEVR models), per category.
"""

import shlex

import numpy as np

from relzoo import hub, presets
from relzoo.datasets import load_split
from relzoo.datasets.examples import Examples

dataset_split = load_split  # the 0.1 name


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
    return evaluate_examples(model, load_split(spec, split), split, batch_size)


def evaluate_examples(model, examples, split, batch_size=256):
    """`{"values", "num_examples", "split"}` of `model` on `examples` (any `Examples`)."""
    logits = predict_logits(model, examples, batch_size)
    if not np.isfinite(logits).all():
        raise FloatingPointError(f"The model produced non-finite logits on the {split} split.")
    values = accuracy_values(np.argmax(logits, axis=-1), examples)
    return {"values": values, "num_examples": int(len(examples)), "split": split}


def mismatch_scenes(examples, seed=0):
    """The same questions and answers, each paired with another scene than its own.

    A control for question-answering models: what a model scores when the scene it is shown
    (image or objects) is not the one its question is about is what it gets from the question
    alone (answer priors); the gap to the plain evaluation is what it reads from the scene.
    Scene s is replaced by scene `other[s]` for a derangement `other` of the scenes drawn with
    `seed` (every scene goes to a different one, each used once), so the scenes shown have the
    same distribution as the real ones.
    """
    if not examples.scenes:
        raise ValueError("mismatched scenes need data whose questions share scene arrays (Examples.scenes); this "
                         f"data has none (inputs {examples.input_names}).")
    count = min(len(a) for a in examples.scenes.values())
    if count < 2:
        raise ValueError(f"mismatched scenes need at least 2 scenes; this data has {count}.")
    order = np.random.default_rng([seed, 53]).permutation(count)
    other = np.empty(count, np.int64)
    other[order] = np.roll(order, -1)  # each scene of the cycle `order` goes to the next one
    return Examples(inputs=examples.inputs, answers=examples.answers, scenes=examples.scenes,
                    scene_index=other[examples.scene_index], scale=examples.scale, groups=examples.groups)


def _clevr_folder(preset, data, split, representation, limit):
    from relzoo.datasets.clevr.reader import ClevrFolder

    return ClevrFolder(data).examples(split, representation=representation, limit=limit)


def _public_pickle(preset, data, split, representation, limit):
    from relzoo.datasets.sort_of_clevr_public import pickle_examples

    if representation != "pixels":
        raise ValueError(f"--data: the public Sort-of-CLEVR pickle holds images only; {preset.name} reads "
                         f"{representation!r} inputs.")
    examples = pickle_examples(data, split)
    return examples if limit is None else examples.subset(np.arange(min(limit, len(examples))))


FOLDER_DATASETS = {  # zoo dataset -> (the real data `--data` reads, its default split, its reader)
    "clevr_world": ("CLEVR_v1.0 folder", "validation", _clevr_folder),
    "sort_of_clevr": ("Sort-of-CLEVR pickle of the public generator", "test", _public_pickle),
}


def folder_examples(preset, data, split=None, limit=None):
    """`Examples` of a local copy of the data a preset is meant for, in the preset's representation:
    real CLEVR v1.0 (a folder) for models trained on the CLEVR-format world; the public generator's
    pickle (`relzoo.datasets.sort_of_clevr_public`) for the Sort-of-CLEVR pixel models. `split`
    None: the data's default (CLEVR's val, the pickle's test)."""
    name = preset.dataset.get("name")
    if name not in FOLDER_DATASETS:
        known = ", ".join(f"a {what} for models trained on {key}" for key, (what, _, _) in FOLDER_DATASETS.items())
        raise ValueError(f"--data reads {known}; {preset.name} is trained on {name!r}.")
    _, default, read = FOLDER_DATASETS[name]
    representation = preset.dataset.get("options", {}).get("representation", "pixels")
    return read(preset, data, split or default, representation, limit)


def evaluate(name, split=None, weights="pretrained", batch_size=256, data=None, limit=None, log=None,
             mismatched_scenes=False):
    """Evaluates a zoo model; returns a card metrics record.

    Without `data`: on its dataset's split (default "test"), the numbers in its card.
    With `data` (a folder): on that local copy of the real data set (e.g. CLEVR_v1.0 for
    `rn_clevr`), split default "validation" (CLEVR's "val"; its test split has no answers),
    the first `limit` questions when given. `log`, when given, is called with a line before a
    split is generated (rendering CLEVR scenes takes minutes). `mismatched_scenes`: each
    question is shown another question's scene (`mismatch_scenes`), a control that measures
    what the model answers without the right scene; the record says so (`"control"`).
    """
    preset = presets.get(name)
    if data is None:
        if limit is not None:
            raise ValueError("limit applies to --data folders only; the generated splits have fixed sizes.")
        split = split or "test"
        spec = preset.dataset
        if log is not None:
            log(f"generating the {split} split of {spec['name']} ({split}_size {spec.get(f'{split}_size')}, "
                f"seed {spec['seed']}) ...")
        examples = load_split(spec, split)
    else:
        examples = folder_examples(preset, data, split, limit)
        split = split or FOLDER_DATASETS[preset.dataset["name"]][1]
    if mismatched_scenes:
        examples = mismatch_scenes(examples)
    model = hub.load(preset, weights=weights)
    record = evaluate_examples(model, examples, split, batch_size)
    record["command"] = evaluation_command(name, split)
    if data is not None:
        record["data"] = str(data)
        record["command"] += f" --data {shlex.quote(str(data))}" + ("" if limit is None else f" --limit {limit}")
    if mismatched_scenes:
        record["control"] = "mismatched_scenes"
        record["command"] += " --mismatched-scenes"
    return record


def format_record(name, record):
    """The table `relzoo evaluate` prints: accuracy per group and overall."""
    values = record["values"]
    where = f"{record['data']} ({record['split']})" if record.get("data") else f"the {record['split']} split"
    control = ", each shown another question's scene" if record.get("control") == "mismatched_scenes" else ""
    lines = [f"{name} on {where}: {record['num_examples']} questions{control}"]
    width = max([len(k.split("/", 1)[-1]) for k in values] + [8])
    for key in sorted(k for k in values if "/" in k):
        lines.append(f"  {key.split('/', 1)[1]:<{width}}  {values[key]:.4f}")
    lines.append(f"  {'overall':<{width}}  {values['accuracy']:.4f}")
    return "\n".join(lines)


def evaluation_command(name, split):
    return f"relzoo evaluate {name} --split {split}"

"""English questions in, answer strings out, for the zoo models that read token ids.

    import relzoo
    ids = relzoo.encode_questions("rn_clevr", ["How many cubes are there?"])   # int32 (1, 50)
    logits = model({"image": images, "question": ids})
    relzoo.decode_answers("rn_clevr", logits)                                 # ["3"]
    relzoo.ask("rn_clevr", "Is there a red sphere?", image=image)             # "yes"

A model that reads questions as token ids (`question` int32 `(batch, L)`) names its
vocabulary in its zoo entry (`question_vocab`). The published artifact carries a copy,
`vocab.json` (CLEVR-IEP's layout), whose sha256 the card records; these helpers use that
copy, checked, and fall back to the vocabulary shipped with relzoo (the one the entry is
built for) when the model has no artifact yet. Unknown words become <UNK>.
"""

import numpy as np

from relzoo import artifacts

VOCAB_FILE = "vocab.json"


def _vocab_sources():
    from relzoo.datasets.clevr import features

    return {"clevr": features.VOCAB_FILE}


def shipped_vocabulary_path(vocab_name):
    """The path of a vocabulary shipped with relzoo, by the name a zoo entry's `question_vocab` uses."""
    sources = _vocab_sources()
    if vocab_name not in sources:
        raise ValueError(f"Unknown question vocabulary {vocab_name!r}; relzoo ships {sorted(sources)}.")
    return sources[vocab_name]


def _entry_with_vocab(name):
    from relzoo import zoo

    entry = zoo.get_entry(name)
    if entry.question_vocab is None:
        raise ValueError(f"{name!r} does not read questions as token ids (its entry has no question_vocab); "
                         "its inputs are " + ", ".join(f"{k} {v['shape']}" for k, v in entry.inputs.items()) + ".")
    return entry


def vocabulary(name):
    """The question `Vocabulary` of zoo model `name`: its artifact's `vocab.json` (sha256 checked
    against the card) when published, otherwise the one shipped with relzoo."""
    from relzoo import zoo
    from relzoo.datasets.clevr.features import Vocabulary

    entry = _entry_with_vocab(name)
    d = zoo.artifact_dir(name)
    if d is not None:
        card = artifacts.read_card(d)
        vocab = card.get("vocabulary")
        if vocab is not None:
            path = d / vocab["file"]
            artifacts.verify_weights(path, vocab["sha256"], vocab.get("size_bytes"), "vocabulary file")
            return Vocabulary.load(path)
    return Vocabulary.load(shipped_vocabulary_path(entry.question_vocab))


def encode_questions(name, questions):
    """int32 `(N, L)` token ids of English `questions` (a string or a list of them) for model `name`.

    `L` is the model's `question` length; a question longer than `L - 2` tokens is an error."""
    entry = _entry_with_vocab(name)
    single = isinstance(questions, str)
    texts = [questions] if single else list(questions)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError(f"encode_questions: expected a question string or a list of strings, got {questions!r}"[:200])
    length = int(entry.inputs["question"]["shape"][0])
    vocab = vocabulary(name)
    return np.stack([vocab.encode(t, length) for t in texts]) if texts else np.zeros((0, length), np.int32)


def decode_answers(name, logits_or_ids):
    """Answer strings of model `name` from logits `(N, classes)` or class ids `(N,)`."""
    from relzoo import zoo

    entry = zoo.get_entry(name)
    if entry.answer_vocab is None:
        raise ValueError(f"{name!r} has no answer vocabulary: its outputs are not answer classes.")
    array = np.asarray(logits_or_ids)
    if array.ndim == 2:
        if array.shape[-1] != len(entry.answer_vocab):
            raise ValueError(f"decode_answers: {name} has {len(entry.answer_vocab)} answers, got logits of shape "
                             f"{array.shape}.")
        array = np.argmax(array, axis=-1)
    elif array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"decode_answers: expected logits (N, {len(entry.answer_vocab)}) or integer ids (N,), got "
                         f"{array.dtype} {array.shape}.")
    bad = array[(array < 0) | (array >= len(entry.answer_vocab))]
    if bad.size:
        raise ValueError(f"decode_answers: answer ids must be in [0, {len(entry.answer_vocab)}), got {bad[:5]}.")
    return [entry.answer_vocab[int(i)] for i in array]


def _scene_inputs(entry, scene):
    """The non-question inputs as float/bool batches, checked against the entry's shapes."""
    names = [k for k in entry.inputs if k != "question"]
    missing = [k for k in names if k not in scene]
    extra = [k for k in scene if k not in entry.inputs]
    if missing or extra:
        raise ValueError(f"ask: {entry.name} takes the scene inputs {names} (and the question); "
                         f"missing {missing}, unexpected {extra}.")
    out = {}
    for k in names:
        spec = entry.inputs[k]
        array = np.asarray(scene[k])
        shape = tuple(spec["shape"])
        if array.shape == shape:
            array = array[None]
        if array.shape[1:] != shape:
            raise ValueError(f"ask: {k} must have shape {shape} or (N, *{shape}), got {array.shape}.")
        if k == "image" and array.dtype == np.uint8:
            array = array.astype(np.float32) / 255.0
        elif k == "image":
            array = array.astype(np.float32)
            if array.size and (array.min() < 0.0 or array.max() > 1.0):
                raise ValueError(f"ask: a float image must hold values in [0, 1] (or pass uint8 0..255), got "
                                 f"[{array.min():.3g}, {array.max():.3g}].")
        else:
            array = array.astype(spec["dtype"])
        out[k] = array
    return out


def ask(name, questions, model=None, **scene):
    """Answers English question(s) about scene(s) with zoo model `name`.

    Args:
        name: a zoo model that reads token ids (e.g. "rn_clevr", "rn_clevr_state").
        questions: a string, or a list of N strings.
        model: the loaded model (default: `relzoo.load(name)`, the published artifact).
        **scene: the model's other inputs, for one scene (e.g. `image` (128, 128, 3), uint8 or
            float in [0, 1]) or for N scenes (one per question), e.g. `objects` and `object_mask`
            for the state model. One scene is shared by all the questions.

    Returns the answer string (for one question) or a list of them.
    """
    from relzoo import zoo

    entry = _entry_with_vocab(name)
    single = isinstance(questions, str)
    ids = encode_questions(name, questions)
    inputs = _scene_inputs(entry, scene)
    for k, v in inputs.items():
        if len(v) == 1 and len(ids) > 1:
            inputs[k] = np.repeat(v, len(ids), axis=0)
        elif len(v) != len(ids):
            raise ValueError(f"ask: {len(ids)} questions but {len(v)} scenes in {k}; give one scene or one per question.")
    inputs["question"] = ids
    model = zoo.load(name) if model is None else model
    logits = model.predict(inputs, verbose=0) if len(ids) else np.zeros((0, len(entry.answer_vocab)))
    logits = logits["answer_logits"] if isinstance(logits, dict) else logits
    answers = decode_answers(name, np.asarray(logits))
    return answers[0] if single else answers


__all__ = ["ask", "decode_answers", "encode_questions", "shipped_vocabulary_path", "vocabulary"]

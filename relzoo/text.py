"""English questions in, answer strings out, for the zoo models that read token ids.

    import relzoo
    ids = relzoo.encode_questions("rn_clevr", ["How many cubes are there?"])   # int32 (1, 50)
    logits = model({"image": images, "question": ids})
    relzoo.decode_answers("rn_clevr", logits)                                 # ["3"]
    relzoo.ask("rn_clevr", "Is there a red sphere?", image=image)             # "yes"

A model that reads questions as token ids (`question` int32 `(batch, L)`) names its
vocabulary in its preset (`question_vocab`). The published artifact carries a copy,
`vocab.json` (CLEVR-IEP's layout), whose sha256 the card records; these helpers use that
copy, checked, and fall back to the vocabulary shipped with relzoo (the one the preset is
built for) when the model has no artifact yet. Unknown words become <UNK>.

Each helper takes a model name or a `Preset` and looks the name up once.
"""

import numpy as np

from relzoo import artifacts, hub, presets
from relzoo.vocab import QUESTION_LENGTH, Vocabulary, shipped_path

VOCAB_FILE = "vocab.json"


def shipped_vocabulary_path(vocab_name):
    """The path of a vocabulary shipped with relzoo, by the name a preset's `question_vocab` uses."""
    return shipped_path(vocab_name)


def _reads_tokens(preset):
    if preset.question_vocab is None:
        raise ValueError(f"{preset.name!r} does not read questions as token ids (its preset has no question_vocab); "
                         f"its inputs are {preset.specs()['inputs']}.")
    return preset


def vocabulary(name):
    """The question `Vocabulary` of zoo model `name`: its local artifact's `vocab.json` (sha256
    checked against the card) when there is one, otherwise the one shipped with relzoo."""
    preset = _reads_tokens(presets.get(name))
    d = hub.artifact_dir(preset.name)
    if d is not None:
        record = artifacts.read_card(d).get("vocabulary")
        if record is not None:
            path = d / record["file"]
            artifacts.verify_weights(path, record["sha256"], record.get("size_bytes"), "vocabulary file")
            return Vocabulary.load(path)
    return Vocabulary.shipped(preset.question_vocab)


def question_length(preset):
    """The length token ids are padded to: the model's `question` length, or the vocabulary's
    default (`relzoo.vocab.QUESTION_LENGTH`) for models that take any length."""
    length = preset.specs()["inputs"]["question"]["shape"][0]
    return QUESTION_LENGTH if length is None else int(length)


def encode_questions(name, questions, vocab=None):
    """int32 `(N, L)` token ids of English `questions` (a string or a list of them) for model `name`.

    `L` is `question_length(preset)`; a question longer than `L - 2` tokens is an error.
    `vocab`: the `Vocabulary` to use (default: `vocabulary(name)`)."""
    preset = _reads_tokens(presets.get(name))
    texts = [questions] if isinstance(questions, str) else list(questions)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError(f"encode_questions: expected a question string or a list of strings, got {questions!r}"[:200])
    length = question_length(preset)
    vocab = vocabulary(preset) if vocab is None else vocab
    return np.stack([vocab.encode(t, length) for t in texts]) if texts else np.zeros((0, length), np.int32)


def decode_answers(name, logits_or_ids):
    """Answer strings of model `name` from logits `(N, classes)` or class ids `(N,)`."""
    preset = presets.get(name)
    answers = preset.answer_vocab
    if answers is None:
        raise ValueError(f"{preset.name!r} has no answer vocabulary: its outputs are not answer classes.")
    array = np.asarray(logits_or_ids)
    if array.ndim == 2:
        if array.shape[-1] != len(answers):
            raise ValueError(f"decode_answers: {preset.name} has {len(answers)} answers, got logits of shape "
                             f"{array.shape}.")
        array = np.argmax(array, axis=-1)
    elif array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"decode_answers: expected logits (N, {len(answers)}) or integer ids (N,), got "
                         f"{array.dtype} {array.shape}.")
    bad = array[(array < 0) | (array >= len(answers))]
    if bad.size:
        raise ValueError(f"decode_answers: answer ids must be in [0, {len(answers)}), got {bad[:5]}.")
    return [answers[int(i)] for i in array]


def _scene_array(name, array, spec):
    """One scene input as a float/bool batch, checked against its spec `{"shape", "dtype"}`."""
    array = np.asarray(array)
    shape = tuple(spec["shape"])
    if array.shape == shape:
        array = array[None]
    if array.shape[1:] != shape:
        raise ValueError(f"ask: {name} must have shape {shape} or (N, *{shape}), got {array.shape}.")
    if name != "image":
        return array.astype(spec["dtype"])
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    array = array.astype(np.float32)
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise ValueError(f"ask: a float image must hold values in [0, 1] (or pass uint8 0..255), got "
                         f"[{array.min():.3g}, {array.max():.3g}].")
    return array


def _scene_inputs(preset, scene, count):
    """The model's non-question inputs for `count` questions: one scene shared, or one per question."""
    specs = preset.specs()["inputs"]
    names = [k for k in specs if k != "question"]
    missing = [k for k in names if k not in scene]
    extra = [k for k in scene if k not in specs]
    if missing or extra:
        raise ValueError(f"ask: {preset.name} takes the scene inputs {names} (and the question); "
                         f"missing {missing}, unexpected {extra}.")
    out = {}
    for k in names:
        array = _scene_array(k, scene[k], specs[k])
        if len(array) == 1 and count > 1:
            array = np.repeat(array, count, axis=0)
        elif len(array) != count:
            raise ValueError(f"ask: {count} questions but {len(array)} scenes in {k}; give one scene or one per "
                             "question.")
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
    preset = _reads_tokens(presets.get(name))
    ids = encode_questions(preset, questions)
    inputs = _scene_inputs(preset, scene, len(ids))
    inputs["question"] = ids
    model = hub.load(preset) if model is None else model
    logits = model.predict(inputs, verbose=0) if len(ids) else np.zeros((0, len(preset.answer_vocab)))
    logits = logits["answer_logits"] if isinstance(logits, dict) else logits
    answers = decode_answers(preset, np.asarray(logits))
    return answers[0] if isinstance(questions, str) else answers


__all__ = ["ask", "decode_answers", "encode_questions", "question_length", "shipped_vocabulary_path", "vocabulary"]

"""The features every CLEVR-format example carries, whether generated here or read from real CLEVR.

One encoding, shared by the generator's TFDS builder and the real CLEVR reader, so that a
model trained on one accepts the other unchanged:

=================  ==========================================  ===========================================
feature            value                                       notes
=================  ==========================================  ===========================================
image              uint8 `(128, 128, 3)`                       the 480x320 (3:2) view resized to a square,
                                                               as the RN paper did for CLEVR
objects            float32 `(MAX_OBJECTS, STATE_DIM)`          one row per object, zeros for padding
object_mask        bool `(MAX_OBJECTS,)`                       True for real objects
question           str                                         the English question
question_tokens    int32 `(MAX_QUESTION_LENGTH,)`              <START> words <END>, then <NULL> (0) padding
program            str                                         the program in CLEVR's JSON list form
answer             int32                                       index in `executor.ANSWERS`; -1 if unknown
family             str                                         question family ("clevr_<index>" for real CLEVR)
category           str                                         one of `CATEGORIES`, from the program
=================  ==========================================  ===========================================

An object row is `x / 3, y / 3, z / 3` (CLEVR's `3d_coords`; the ground spans about -3..3),
then one-hots of colour (8), shape (3), material (2) and size (2), each in the order of the
constants in `scenes`: `STATE_DIM` = 18 values. `STATE_FEATURES` names them.
"""

import json

import numpy as np

from relzoo.datasets.clevr.executor import ANSWERS, answer_to_index, validate_program
from relzoo.datasets.clevr.scenes import COLORS, MATERIALS, SHAPES, SIZES
from relzoo.vocab import END, NULL, QUESTION_LENGTH, SPECIAL_TOKENS, START, UNK, Vocabulary, shipped_path, tokenize

IMAGE_SIZE = 128
MAX_OBJECTS = 10
COORD_SCALE = 3.0
STATE_FEATURES = (("x", "y", "z") + tuple(f"color_{c}" for c in COLORS) + tuple(f"shape_{s}" for s in SHAPES)
                  + tuple(f"material_{m}" for m in MATERIALS) + tuple(f"size_{s}" for s in SIZES))
STATE_DIM = len(STATE_FEATURES)
MAX_QUESTION_LENGTH = QUESTION_LENGTH  # tokens, <START> and <END> included; CLEVR's longest question has 43 words

CATEGORIES = ("exist", "count", "compare_integer", "query_attribute", "compare_attribute")
VOCAB_FILE = shipped_path("clevr")  # relzoo/vocabularies/clevr.json: the question vocabulary and the 28 answers

_ONE_HOT = (("color", COLORS), ("shape", SHAPES), ("material", MATERIALS), ("size", SIZES))


def scene_state(scene, max_objects=MAX_OBJECTS):
    """The state description of a CLEVR-format scene: `(objects, mask)`.

    Returns float32 `(max_objects, STATE_DIM)` rows (see the module docstring) and a bool mask
    `(max_objects,)`. Raises `ValueError` for a scene with more than `max_objects` objects or
    an object missing `3d_coords` or an attribute outside CLEVR's vocabulary.
    """
    objects = scene.get("objects") if isinstance(scene, dict) else None
    if not isinstance(objects, (list, tuple)):
        raise ValueError(f"scene_state: expected a scene dict with a list under 'objects', got {type(scene).__name__}")
    if len(objects) > max_objects:
        raise ValueError(f"scene_state: the scene has {len(objects)} objects; at most {max_objects} fit "
                         "(pass a larger max_objects)")
    state = np.zeros((max_objects, STATE_DIM), np.float32)
    mask = np.zeros((max_objects,), bool)
    for i, obj in enumerate(objects):
        coords = obj.get("3d_coords")
        if not isinstance(coords, (list, tuple)) or len(coords) != 3:
            raise ValueError(f"scene_state: object {i} needs '3d_coords' [x, y, z], got {coords!r}")
        state[i, :3] = np.asarray(coords, np.float32) / COORD_SCALE
        offset = 3
        for attr, values in _ONE_HOT:
            if obj.get(attr) not in values:
                raise ValueError(f"scene_state: object {i} has {attr} {obj.get(attr)!r}; expected one of "
                                 f"{', '.join(values)}")
            state[i, offset + values.index(obj[attr])] = 1.0
            offset += len(values)
        mask[i] = True
    return state, mask


def category_of(program):
    """CLEVR's question category, from the function of a program's last step:
    exist; count; compare_integer (equal_integer, less_than, greater_than); query_attribute
    (query_<attr>); compare_attribute (equal_<attr>). `ValueError` for any other ending."""
    validate_program(program)
    last = _last_function(program)
    if last == "exist":
        return "exist"
    if last == "count":
        return "count"
    if last in ("equal_integer", "less_than", "greater_than"):
        return "compare_integer"
    if last.startswith("query_"):
        return "query_attribute"
    if last.startswith("equal_"):
        return "compare_attribute"
    raise ValueError(f"category_of: a question's program must end in exist, count, a comparison or a query; "
                     f"this one ends in {last!r}")


def _last_function(program):
    steps = program.get("program", program.get("nodes")) if isinstance(program, dict) else program
    step = steps[-1]
    name = step.get("function", step.get("type"))
    return name.partition("[")[0]


def resize_image(image, size=IMAGE_SIZE):
    """uint8 `(size, size, 3)` from an RGB(A) image array or PIL image of any size (bilinear,
    with antialiasing; the aspect ratio is not kept, as the RN paper resized 480x320 to 128x128)."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[-1] not in (3, 4) or array.dtype != np.uint8:
            raise ValueError(f"resize_image: expected uint8 (height, width, 3 or 4), got {array.dtype} {array.shape}")
        image = Image.fromarray(array[..., :3])
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR, reducing_gap=None)
    return np.asarray(image, np.uint8)


def question_features(question, vocabulary, length=MAX_QUESTION_LENGTH):
    """The question part of an example from a question dict in CLEVR's question JSON form:
    `question`, `question_tokens`, `program` (JSON), `answer` (-1 when the dict has none, as in
    CLEVR's test split), `family` (ours, or "clevr_<question_family_index>") and `category`
    (from the program; "" when the dict has no program)."""
    text = question.get("question")
    if not isinstance(text, str):
        raise ValueError(f"question_features: expected a question dict with a 'question' string, got {question!r}"[:300])
    program = question.get("program")
    if "family" in question:
        family = str(question["family"])
    elif "question_family_index" in question:
        family = f"clevr_{int(question['question_family_index'])}"
    else:
        family = ""
    return {
        "question": text,
        "question_tokens": vocabulary.encode(text, length),
        "program": json.dumps(program, separators=(",", ":")) if program is not None else "",
        "answer": np.int32(answer_to_index(question["answer"]) if "answer" in question else -1),
        "family": family,
        "category": question.get("category") or (category_of(program) if program is not None else ""),
    }


def tfds_features():
    """The `tfds.features.FeaturesDict` of one example (one question), shared by the TFDS
    builders `clevr_world` (generated) and `clevr_v1` (real CLEVR), plus `image_index`."""
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3)),
        "objects": tfds.features.Tensor(shape=(MAX_OBJECTS, STATE_DIM), dtype=np.float32),
        "object_mask": tfds.features.Tensor(shape=(MAX_OBJECTS,), dtype=np.bool_),
        "question": tfds.features.Text(),
        "question_tokens": tfds.features.Tensor(shape=(MAX_QUESTION_LENGTH,), dtype=np.int32),
        "program": tfds.features.Text(),
        "answer": tfds.features.Tensor(shape=(), dtype=np.int32),
        "family": tfds.features.Text(),
        "category": tfds.features.Text(),
        "image_index": tfds.features.Tensor(shape=(), dtype=np.int32),
    })


REPRESENTATIONS = ("pixels", "state")


def to_examples(scenes, questions, representation="pixels"):
    """Questions about scenes as `Examples` (scene arrays stored once, one example per question).

    Args:
        scenes: dict of per-scene arrays: `image` uint8 `(S, 128, 128, 3)` (for pixels),
            `objects` float32 `(S, MAX_OBJECTS, STATE_DIM)` and `object_mask` bool
            `(S, MAX_OBJECTS)` (for state).
        questions: dict of per-question arrays: `scene_index` `(N,)` int, `question_tokens`
            int32 `(N, MAX_QUESTION_LENGTH)`, `answer` int32 `(N,)` (-1: unknown), `category`
            `(N,)` category names or indices into `CATEGORIES`.
        representation: "pixels" -> model inputs `image` (float32 in [0, 1]) and `question`;
            "state" -> `objects`, `object_mask` and `question`.

    Group for per-category accuracy: `category` (the five names of `CATEGORIES`).
    """
    from relzoo.datasets.examples import Examples

    if representation not in REPRESENTATIONS:
        raise ValueError(f"clevr: representation must be one of {REPRESENTATIONS}, got {representation!r}")
    keys = ("image",) if representation == "pixels" else ("objects", "object_mask")
    missing = [k for k in keys if k not in scenes]
    if missing:
        raise ValueError(f"clevr: the {representation} representation needs scene arrays {list(keys)}; "
                         f"missing {missing}")
    category = np.asarray(questions["category"])
    if category.dtype.kind in "USO":
        unknown = sorted(set(category.tolist()) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"clevr: unknown categories {unknown}; expected {CATEGORIES}")
        category = np.array([CATEGORIES.index(c) for c in category.tolist()], np.int32)
    return Examples(
        inputs={"question": np.asarray(questions["question_tokens"], np.int32)},
        answers=np.asarray(questions["answer"], np.int32),
        scenes={k: scenes[k] for k in keys},
        scene_index=np.asarray(questions["scene_index"]),
        scale={"image": 1.0 / 255.0} if representation == "pixels" else {},
        groups={"category": (category.astype(np.int32), CATEGORIES)},
    )


__all__ = [
    "CATEGORIES",
    "COORD_SCALE",
    "END",
    "IMAGE_SIZE",
    "MAX_OBJECTS",
    "MAX_QUESTION_LENGTH",
    "NULL",
    "SPECIAL_TOKENS",
    "START",
    "STATE_DIM",
    "STATE_FEATURES",
    "UNK",
    "VOCAB_FILE",
    "Vocabulary",
    "category_of",
    "REPRESENTATIONS",
    "question_features",
    "resize_image",
    "scene_state",
    "tfds_features",
    "to_examples",
    "tokenize",
]

"""Training recipes: TOML files with the exact hyperparameters, dataset, seed and epochs.

A recipe has `name`, `seed`, and the tables `[dataset]`, `[model]` (`builder` and
`[model.kwargs]`), `[train]` and optionally `[tune]`. Overrides on the command
line are `dotted.path=value`, with the value parsed as TOML (`train.epochs=3`,
`model.kwargs.g_units=[32,32]`, `train.strategy="mirrored"` or `mirrored`).
"""

import copy
import math
import tomllib
from pathlib import Path

TRAIN_DEFAULTS = {
    "strategy": "default",
    "epochs": 10,
    "batch_size": 64,
    "learning_rate": 1e-3,
    "warmup_steps": 0,
    "clipnorm": None,
    "weight_decay": None,
    "jit_compile": True,
    "dtype_policy": "float32",
    # batches of `batch_size` training examples over which BatchNormalization's statistics are
    # recomputed under the final weights, and at each epoch's end before validation (0: off)
    "bn_recalibration_batches": 200,
    # > 0: each training batch is this many scenes with all their questions, and the image
    # encoder runs once per scene (training/scene_batches.py); 0: batches of `batch_size` questions
    "scenes_per_batch": 0,
    # scene-grouped batches or device_feed: each training image shifted by up to this many whole
    # pixels and rotated by up to this many radians (training/augment.py); 0: the images as they are
    "image_shift": 0,
    "image_rotation": 0.0,
    # true: training batches hold questions about scenes with the same number of objects, cut to
    # that number, so that the relation module computes no padded pairs (state-description models:
    # training/object_buckets.py); false: batches of `batch_size` questions drawn at random
    "object_buckets": False,
    # a published zoo name (saved_models/<name>/, checked against its card) or a .keras path: a new
    # run starts from those weights instead of a fresh initialisation (the optimizer starts anew);
    # the card records the source, its sha256 and its own training (training/train.py, warm_start)
    "init_from": None,
    # true: batches shaped for an accelerator (training/device_feed.py): exactly batch_size
    # questions, token ids at full length, uint8 images scaled and jittered inside the compiled
    # step; false: the default feed (cut questions, a partial last batch, host-side scaling)
    "device_feed": False,
    # device_feed only, CLEVR-format state descriptions: each training question, with probability
    # 1/2, about its scene mirrored left to right, "left" and "right" swapped in the question
    # (training/device_feed.py, MirrorLeftRight; every answer stays true)
    "mirror_left_right": False,
    # > 0: after the warm-up the learning rate follows a half cosine from learning_rate down to
    # learning_rate * decay_to over this many steps, then stays there (training/schedules.py,
    # WarmupCosine); 0: constant after the warm-up. Counted from the run's first step, warm-up included
    "decay_steps": 0,
    "decay_to": 0.0,
}
STRATEGIES = ("default", "mirrored", "multi_worker")
DTYPE_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


class RecipeError(ValueError):
    """A recipe file or override is malformed."""


def parse_value(text):
    """A TOML value (`3`, `1e-3`, `[32, 32]`, `"x"`, `true`); a bare word stays a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_path(recipe, dotted, value):
    node = recipe
    keys = dotted.split(".")
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise RecipeError(f"Cannot set {dotted!r}: {key!r} is not a table.")
        node = child
    node[keys[-1]] = value


def get_path(recipe, dotted):
    node = recipe
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            raise RecipeError(f"The recipe has no {dotted!r}.")
        node = node[key]
    return node


def apply_overrides(recipe, overrides):
    recipe = copy.deepcopy(recipe)
    for item in overrides or []:
        if "=" not in item:
            raise RecipeError(f"An override is dotted.path=value, got {item!r}.")
        path, text = item.split("=", 1)
        set_path(recipe, path.strip(), parse_value(text.strip()))
    return recipe


def validate(recipe, source="recipe"):
    for key in ("name", "seed", "dataset", "model", "train"):
        if key not in recipe:
            raise RecipeError(f"{source}: missing {key!r}.")
    if "builder" not in recipe["model"]:
        raise RecipeError(f"{source}: [model] needs a builder.")
    recipe["model"].setdefault("kwargs", {})
    train = {**TRAIN_DEFAULTS, **recipe["train"]}
    unknown = sorted(set(train) - set(TRAIN_DEFAULTS))
    if unknown:
        raise RecipeError(f"{source}: unknown [train] keys {unknown}; known: {sorted(TRAIN_DEFAULTS)}.")
    if train["strategy"] not in STRATEGIES:
        raise RecipeError(f"{source}: train.strategy must be one of {STRATEGIES}, got {train['strategy']!r}.")
    if train["dtype_policy"] not in DTYPE_POLICIES:
        raise RecipeError(f"{source}: train.dtype_policy must be one of {DTYPE_POLICIES}, got {train['dtype_policy']!r}.")
    if not isinstance(train["bn_recalibration_batches"], int) or train["bn_recalibration_batches"] < 0:
        raise RecipeError(f"{source}: train.bn_recalibration_batches must be an integer >= 0, "
                          f"got {train['bn_recalibration_batches']!r}.")
    if not isinstance(train["scenes_per_batch"], int) or train["scenes_per_batch"] < 0:
        raise RecipeError(f"{source}: train.scenes_per_batch must be an integer >= 0 (0: off), "
                          f"got {train['scenes_per_batch']!r}.")
    if not isinstance(train["image_shift"], int) or isinstance(train["image_shift"], bool) or train["image_shift"] < 0:
        raise RecipeError(f"{source}: train.image_shift must be an integer >= 0 (pixels; 0: off), "
                          f"got {train['image_shift']!r}.")
    if not isinstance(train["image_rotation"], (int, float)) or not 0 <= train["image_rotation"] <= math.pi:  # NaN too
        raise RecipeError(f"{source}: train.image_rotation must be a number of radians in [0, pi] (0: off), "
                          f"got {train['image_rotation']!r}.")
    if not isinstance(train["device_feed"], bool):
        raise RecipeError(f"{source}: train.device_feed must be true or false, got {train['device_feed']!r}.")
    if train["device_feed"] and (train["scenes_per_batch"] or train["object_buckets"]):
        raise RecipeError(f"{source}: train.device_feed feeds plain batches of batch_size questions; it cannot be "
                          "combined with train.scenes_per_batch or train.object_buckets.")
    if not isinstance(train["mirror_left_right"], bool):
        raise RecipeError(f"{source}: train.mirror_left_right must be true or false, "
                          f"got {train['mirror_left_right']!r}.")
    if train["mirror_left_right"]:
        data = recipe.get("dataset", {})
        if not train["device_feed"]:
            raise RecipeError(f"{source}: train.mirror_left_right works in the device feed; set train.device_feed = "
                              "true to use it.")
        if data.get("name") != "clevr_world" or data.get("options", {}).get("representation") != "state":
            raise RecipeError(f"{source}: train.mirror_left_right mirrors CLEVR-format state descriptions "
                              "(dataset clevr_world, representation \"state\").")
    if (train["image_shift"] or train["image_rotation"]) and not (train["scenes_per_batch"] or train["device_feed"]):
        raise RecipeError(f"{source}: train.image_shift and train.image_rotation jitter the scene images of "
                          "scene-grouped batches or of the device feed; set train.scenes_per_batch (e.g. 8) or "
                          "train.device_feed = true to use them.")
    if not isinstance(train["decay_steps"], int) or isinstance(train["decay_steps"], bool) or train["decay_steps"] < 0:
        raise RecipeError(f"{source}: train.decay_steps must be an integer >= 0 (0: no decay), "
                          f"got {train['decay_steps']!r}.")
    if train["decay_steps"] and train["decay_steps"] <= train["warmup_steps"]:
        raise RecipeError(f"{source}: train.decay_steps ({train['decay_steps']}) counts from the first step and must "
                          f"exceed train.warmup_steps ({train['warmup_steps']}).")
    if (not isinstance(train["decay_to"], (int, float)) or isinstance(train["decay_to"], bool)
            or not 0 <= train["decay_to"] <= 1):  # NaN too
        raise RecipeError(f"{source}: train.decay_to must be a fraction of train.learning_rate in [0, 1], "
                          f"got {train['decay_to']!r}.")
    if not isinstance(train["object_buckets"], bool):
        raise RecipeError(f"{source}: train.object_buckets must be true or false, got {train['object_buckets']!r}.")
    if train["object_buckets"] and train["scenes_per_batch"]:
        raise RecipeError(f"{source}: train.object_buckets (state descriptions) and train.scenes_per_batch (pixels) "
                          "cannot both be set; choose the one that fits the model's inputs.")
    if train["init_from"] is not None and (not isinstance(train["init_from"], str) or not train["init_from"].strip()):
        raise RecipeError(f"{source}: train.init_from must be a zoo model name or a path to a .keras file, "
                          f"got {train['init_from']!r}.")
    for key in ("epochs", "batch_size"):
        if not isinstance(train[key], int) or train[key] <= 0:
            raise RecipeError(f"{source}: train.{key} must be a positive integer, got {train[key]!r}.")
    if not isinstance(train["learning_rate"], (int, float)) or train["learning_rate"] <= 0:
        raise RecipeError(f"{source}: train.learning_rate must be a positive number, got {train['learning_rate']!r}.")
    recipe["train"] = train
    return recipe


def load(path, overrides=None):
    """Reads, overrides and validates a recipe; returns a plain dict."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"No recipe file at {path}.")
    try:
        recipe = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise RecipeError(f"{path} is not valid TOML: {err}") from err
    return validate(apply_overrides(recipe, overrides), str(path))


def dump(recipe, path, header=""):
    """Writes a recipe as TOML (None values are dropped: TOML has no null)."""
    import tomli_w

    def clean(node):
        if isinstance(node, dict):
            return {k: clean(v) for k, v in node.items() if v is not None}
        return node

    text = tomli_w.dumps(clean(recipe))
    Path(path).write_text((header.rstrip() + "\n\n" if header else "") + text)

"""A recipe's `[train]` table as a typed schema: every setting, its type, its range, and the rules
that tie settings together, declared once.

    settings = TrainSettings.from_table({"epochs": 3, "feed": "scenes"}, dataset)   # checked
    settings.epochs, settings.feed                                                 # typed fields

`from_table` fills in defaults, refuses unknown keys and values of the wrong type or out of range,
and then checks `RULES`, each with a message that says what to change.
"""

import dataclasses
import math
import operator
import types
import typing
import warnings

from training.errors import RecipeError

STRATEGIES = ("default", "mirrored", "multi_worker")
DTYPE_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
FEEDS = ("examples", "scenes", "object_buckets", "device", "cells")  # training/feeds.py


def setting(default, help, choices=None, minimum=None, maximum=None, above=None):  # noqa: A002
    """A field of `TrainSettings` with its documentation and its allowed values."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "minimum": minimum,
                                                        "maximum": maximum, "above": above})


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    strategy: str = setting("default", "default | mirrored (devices of one machine) | multi_worker (TF_CONFIG)",
                            choices=STRATEGIES)
    epochs: int = setting(10, "epochs of the run, counted over resumed invocations", minimum=1)
    batch_size: int = setting(64, "questions a training step (the global batch), and the evaluation batch",
                              minimum=1)
    learning_rate: float = setting(1e-3, "the peak learning rate (Adam, or AdamW with weight_decay)", above=0)
    warmup_steps: int = setting(0, "steps of a linear warm-up to learning_rate", minimum=0)
    decay_steps: int = setting(0, "> 0: a half cosine from learning_rate to learning_rate * decay_to over this "
                                  "many steps, counted from the first (training/schedules.py)", minimum=0)
    decay_to: float = setting(0.0, "the floor of the cosine decay, a fraction of learning_rate", minimum=0,
                              maximum=1)
    clipnorm: float | None = setting(None, "clip each gradient to this norm (0 or null: off)", minimum=0)
    weight_decay: float | None = setting(None, "AdamW's decoupled weight decay (0 or null: Adam)", minimum=0)
    jit_compile: bool = setting(True, "XLA-compile the training step")
    dtype_policy: str = setting("float32", "the Keras dtype policy of training; artifacts are always float32",
                                choices=DTYPE_POLICIES)
    bn_recalibration_batches: int = setting(200, "training batches over which BatchNormalization statistics are "
                                                 "recomputed at each epoch's end and before saving (0: off)", minimum=0)
    feed: str = setting("examples", "how batches are made (training/feeds.py): examples | scenes | "
                                    "object_buckets | device | cells (the image stem alone, on the per-cell loss)",
                    choices=FEEDS)
    scenes_per_batch: int = setting(8, "feed = scenes: scenes a batch, with all their questions; feed = "
                                             "cells: scenes a batch", minimum=1)
    image_shift: int = setting(0, "feed = scenes or device: shift each training image by up to this many pixels",
                               minimum=0)
    image_rotation: float = setting(0.0, "feed = scenes or device: rotate each training image by up to this many "
                                         "radians", minimum=0, maximum=math.pi)
    mirror_left_right: bool = setting(False, "feed = device, CLEVR state descriptions: mirror half the scenes, "
                                             "swapping left and right in their questions")
    init_from: str | None = setting(None, "start from these weights: a published zoo name or a .keras path")
    init_layers: list | None = setting(None, "with init_from: copy only these layers' weights, by name (null: all)")
    freeze: list | None = setting(None, "layers, by name, whose weights this run does not train")
    cell_loss: float = setting(0.0, "feed = scenes: weight of the per-cell loss against the training scenes' "
                                    "annotations, on the model's `cells` layer (rn_clevr_detect) or a training-only "
                                    "head on the relation's objects (0: off)", minimum=0)
    cell_loss_grad: float = setting(1.0, "with cell_loss: the fraction of its gradient that reaches the model (0: "
                                         "only the training-only head learns from it, a probe)", minimum=0, maximum=1)

    @classmethod
    def from_table(cls, table, dataset=None, source="recipe"):
        """Checked settings from a `[train]` table (a dict); `dataset`: the recipe's data set spec."""
        table = _deprecated_spellings(dict(table), source)
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise RecipeError(f"{source}: unknown [train] keys {unknown}; known: {sorted(known)}.")
        for key, value in table.items():
            _check_field(known[key], value, source)
        settings = cls(**table)
        for broken, message in RULES:
            if broken(settings, dataset or {}):
                raise RecipeError(f"{source}: " + message.format(**dataclasses.asdict(settings)))
        return settings

    def to_dict(self):
        return dataclasses.asdict(self)


def _type_ok(kind, value):
    if kind is type(None):
        return value is None
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


_BOUNDS = (("minimum", ">=", operator.ge), ("above", ">", operator.gt), ("maximum", "<=", operator.le))


def _check_field(field, value, source):
    """Raises `RecipeError` unless `value` has the field's type and lies in its range."""
    meta, name = field.metadata, f"train.{field.name}"
    kinds = typing.get_args(field.type) if isinstance(field.type, types.UnionType) else (field.type,)
    if not any(_type_ok(kind, value) for kind in kinds):
        wanted = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise RecipeError(f"{source}: {name} must be {wanted} ({meta['help']}), got {value!r}.")
    if value is None:
        return
    if meta["choices"] is not None and value not in meta["choices"]:
        raise RecipeError(f"{source}: {name} must be one of {meta['choices']}, got {value!r}.")
    for key, sign, holds in _BOUNDS:
        if meta[key] is not None and not holds(value, meta[key]):
            raise RecipeError(f"{source}: {name} must be {sign} {meta[key]:g} ({meta['help']}), got {value!r}.")
    if isinstance(value, str) and not value.strip():
        raise RecipeError(f"{source}: {name} must not be empty ({meta['help']}).")


def _deprecated_spellings(table, source):
    """0.1's feed switches (`object_buckets`, `device_feed`, `scenes_per_batch = 0`) as `feed`."""
    old = {"object_buckets": "object_buckets", "device_feed": "device"}
    for key, feed in old.items():
        if key in table:
            value = table.pop(key)
            if value is True:
                table.setdefault("feed", feed)
                warnings.warn(f"{source}: train.{key} = true is deprecated; write train.feed = \"{feed}\".",
                              FutureWarning, stacklevel=3)
            elif value is not False:
                raise RecipeError(f"{source}: train.{key} must be true or false, got {value!r}.")
    if table.get("scenes_per_batch") == 0:  # 0.1: off
        del table["scenes_per_batch"]
    elif "scenes_per_batch" in table and "feed" not in table:
        table["feed"] = "scenes"
        warnings.warn(f"{source}: train.scenes_per_batch without train.feed is deprecated; write train.feed = "
                      "\"scenes\" beside it.", FutureWarning, stacklevel=3)
    return table


def _is_clevr_state(dataset):
    return dataset.get("name") == "clevr_world" and dataset.get("options", {}).get("representation") == "state"


# (broken(settings, dataset) -> bool, message): the settings that only work together
RULES = (
    (lambda t, d: t.decay_steps and t.decay_steps <= t.warmup_steps,
     "train.decay_steps ({decay_steps}) counts from the first step and must exceed train.warmup_steps "
     "({warmup_steps})."),
    (lambda t, d: (t.image_shift or t.image_rotation) and t.feed not in ("scenes", "device"),
     "train.image_shift and train.image_rotation jitter the scene images of the scenes or device feed; set "
     "train.feed = \"scenes\" (or \"device\") to use them (train.feed is {feed!r})."),
    (lambda t, d: t.mirror_left_right and t.feed != "device",
     "train.mirror_left_right works in the device feed; set train.feed = \"device\" to use it."),
    (lambda t, d: t.mirror_left_right and not _is_clevr_state(d),
     "train.mirror_left_right mirrors CLEVR-format state descriptions (dataset clevr_world, representation "
     "\"state\")."),
    (lambda t, d: t.feed != "examples" and t.strategy != "default",
     "train.feed = {feed!r} works with the default strategy only, not {strategy}; set train.feed = \"examples\"."),
    (lambda t, d: t.init_layers is not None and t.init_from is None,
     "train.init_layers names the layers to copy from train.init_from; set train.init_from too."),
    (lambda t, d: any(not isinstance(n, str) or not n for n in (t.init_layers or []) + (t.freeze or [])),
     "train.init_layers and train.freeze are lists of layer names (strings), got {init_layers!r} and {freeze!r}."),
    (lambda t, d: t.cell_loss and t.feed != "scenes",
     "train.cell_loss trains the image cells of scene-grouped batches; set train.feed = \"scenes\" (train.feed is "
     "{feed!r}; train.feed = \"cells\" trains on the per-cell loss alone, without this weight)."),
    (lambda t, d: t.cell_loss_grad != 1 and not t.cell_loss,
     "train.cell_loss_grad scales the per-cell loss's gradient; set train.cell_loss > 0 too."),
    (lambda t, d: t.cell_loss and (t.image_shift or t.image_rotation),
     "train.cell_loss compares each cell with the object annotated there; a shifted or rotated image would move "
     "the objects off their cells: set train.image_shift and train.image_rotation to 0."),
    (lambda t, d: t.init_from is not None and t.strategy == "multi_worker",
     "train.init_from works with the default and mirrored strategies, not multi_worker."),
)


def describe():
    """One line per setting: name, default and help (for `python -m training.train --help-settings`)."""
    return "\n".join(f"  train.{f.name} = {f.default!r}: {f.metadata['help']}" for f in dataclasses.fields(TrainSettings))

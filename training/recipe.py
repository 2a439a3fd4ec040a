"""Training recipes: TOML files that name a preset and hold the training settings.

    preset = "rn_clevr"          # the architecture and data set: relzoo.presets
    seed = 1
    [train]                      # training/settings.py: every key, its type and range
    epochs = 6
    feed = "scenes"

A variant changes the preset explicitly and is published under its own name:

    preset = "rn_clevr"
    name = "rn_clevr_4conv"
    [model]                      # overrides of the preset's builder kwargs
    conv_layers = 4
    [dataset]                    # overrides of the preset's data set spec
    train_size = 70000

Overrides on the command line are `dotted.path=value`, the value parsed as TOML
(`train.epochs=3`, `model.g_units=[32,32]`, `train.strategy=mirrored`); `train.init_from=null`
removes a setting, so that its default applies. A recipe may also hold
`[tune]` (training/tune.py's search space) and `notes` (a line for the card).
"""

import copy
import dataclasses
import inspect
import tomllib
import warnings
from pathlib import Path

from relzoo import presets
from training.errors import RecipeError
from training.settings import TrainSettings

TOP_LEVEL = ("preset", "name", "seed", "model", "dataset", "train", "tune", "notes")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A resolved recipe: the preset with the recipe's overrides applied, and checked settings."""

    name: str
    preset: presets.Preset
    seed: int
    model: dict  # the builder's kwargs
    dataset: dict  # the data set spec
    train: TrainSettings
    tune: dict
    notes: str | None
    table: dict  # the TOML table after the command line's overrides
    path: str | None

    @property
    def builder(self):
        return self.preset.builder

    def is_preset(self):
        """Whether this recipe trains its preset exactly (what `--publish` requires)."""
        return self.name == self.preset.name and self.model == self.preset.kwargs and self.dataset == self.preset.dataset

    def build(self, dtype_policy=None, **kwargs):
        """The recipe's model, its layers built under `dtype_policy` (default: train.dtype_policy);
        `kwargs` replace builder arguments (e.g. `num_objects=None`), the weights stay the same."""
        import keras

        from relzoo.models import get_builder

        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(dtype_policy or self.train.dtype_policy)
        try:
            return get_builder(self.builder)(**{**self.model, **kwargs})
        finally:
            keras.config.set_dtype_policy(previous)

    def check_model(self):
        """Refuses `[model]` overrides that the builder does not take (imports the builders and Keras)."""
        from relzoo.models import get_builder

        accepted = inspect.signature(get_builder(self.builder)).parameters
        unknown = sorted(set(self.table.get("model", {})) - set(accepted))
        if unknown:
            raise RecipeError(f"{self.path}: [model] sets {unknown}, which the builder {self.builder!r} does not "
                              f"take; it takes {sorted(accepted)}.")
        return self

    def with_values(self, values):
        """The recipe with `{dotted path: value}` set (e.g. a tuner's choices), checked again."""
        table = copy.deepcopy(self.table)
        for path, value in values.items():
            set_path(table, path, value)
        return resolve(table, self.path)

    def to_dict(self):
        """What a card records as `training.recipe_values`."""
        return {"name": self.name, "preset": self.preset.name, "seed": self.seed, "builder": self.builder,
                "model": self.model, "dataset": self.dataset, "train": self.train.to_dict(), "notes": self.notes}


def parse_value(text):
    """A TOML value (`3`, `1e-3`, `[32, 32]`, `"x"`, `true`); a bare word stays a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_path(table, dotted, value):
    """Sets `table[a][b]... = value` for `dotted = "a.b..."`, creating tables on the way."""
    node, keys = table, dotted.split(".")
    if keys[:2] == ["model", "kwargs"] and len(keys) > 2:  # 0.1's spelling
        warnings.warn(f"{dotted}: model.kwargs.X is deprecated; write model.X.", FutureWarning, stacklevel=3)
        keys = ["model"] + keys[2:]
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise RecipeError(f"Cannot set {dotted!r}: {key!r} is not a table.")
        node = child
    node[keys[-1]] = value


def remove_path(table, dotted):
    """Removes `table[a][b]...` for `dotted = "a.b..."` (nothing when it is not there)."""
    node, keys = table, dotted.split(".")
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(keys[-1], None)


def get_path(table, dotted):
    node = table
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            raise RecipeError(f"The recipe has no {dotted!r}.")
        node = node[key]
    return node


def apply_overrides(table, overrides):
    table = copy.deepcopy(table)
    for item in overrides or []:
        if "=" not in item:
            raise RecipeError(f"An override is dotted.path=value, got {item!r}.")
        path, text = item.split("=", 1)
        if text.strip() == "null":  # TOML has no null: the setting goes, its default applies
            remove_path(table, path.strip())
            continue
        set_path(table, path.strip(), parse_value(text.strip()))
    return table


def _model_kwargs(preset, overrides, source):
    """The preset's builder kwargs with the recipe's `[model]` overrides (their names are checked by
    `Recipe.check_model`, which imports the builders, and so Keras)."""
    if not isinstance(overrides, dict):
        raise RecipeError(f"{source}: [model] is a table of the builder's arguments, got {overrides!r}.")
    return {**preset.kwargs, **overrides}


def _dataset(preset, overrides, source):
    if not isinstance(overrides, dict):
        raise RecipeError(f"{source}: [dataset] is a table of the data set spec, got {overrides!r}.")
    unknown = sorted(set(overrides) - set(preset.dataset) - {"options"})
    if unknown:
        raise RecipeError(f"{source}: [dataset] sets {unknown}; the preset's data set spec has "
                          f"{sorted(preset.dataset)}.")
    options = {**preset.dataset.get("options", {}), **overrides.get("options", {})}
    spec = {**preset.dataset, **overrides}
    return {**spec, "options": options} if options else spec


def resolve(table, source="recipe"):
    """A `Recipe` from a recipe table (a TOML file's contents after overrides); checked."""
    model = table.get("model", {})
    if isinstance(model, dict) and ("builder" in model or "kwargs" in model):
        raise RecipeError(f"{source}: recipes name a preset now (preset = \"NAME\"), and [model] holds only the "
                          "builder arguments that differ from it; [model.builder] and [model.kwargs] are 0.1's "
                          "form. See training/recipe.py.")
    unknown = sorted(set(table) - set(TOP_LEVEL))
    if unknown:
        raise RecipeError(f"{source}: unknown keys {unknown}; a recipe has {list(TOP_LEVEL)}.")
    if "preset" not in table:
        raise RecipeError(f"{source}: missing 'preset' (the zoo model it trains; one of {presets.list_models(True)}).")
    try:
        preset = presets.get(table["preset"])
    except (presets.UnknownModelError, TypeError) as err:
        raise RecipeError(f"{source}: preset: {err}") from None
    name, seed = table.get("name", preset.name), table.get("seed")
    if not isinstance(name, str) or not name.isidentifier():
        raise RecipeError(f"{source}: name must be an identifier (letters, digits, _), got {name!r}.")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise RecipeError(f"{source}: seed must be an integer, got {seed!r}.")
    dataset = _dataset(preset, table.get("dataset", {}), source)
    return Recipe(name=name, preset=preset, seed=seed, model=_model_kwargs(preset, table.get("model", {}), source),
                  dataset=dataset, train=TrainSettings.from_table(table.get("train", {}), dataset, source),
                  tune=table.get("tune") or {}, notes=table.get("notes"), table=table, path=source)


def load(path, overrides=None):
    """Reads a recipe file, applies the command line's overrides and resolves it against its preset."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"No recipe file at {path}.")
    try:
        table = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise RecipeError(f"{path} is not valid TOML: {err}") from err
    return resolve(apply_overrides(table, overrides), str(path))


def dump(table, path, header=""):
    """Writes a recipe table as TOML (None values are dropped: TOML has no null)."""
    import tomli_w

    def clean(node):
        if isinstance(node, dict):
            return {k: clean(v) for k, v in node.items() if v is not None}
        return node

    Path(path).write_text((header.rstrip() + "\n\n" if header else "") + tomli_w.dumps(clean(table)))

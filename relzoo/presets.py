"""The zoo's models as data: one `Preset` per name, the single truth of its architecture.

    import relzoo
    relzoo.list_models()                       # the published presets
    preset = relzoo.presets.get("rn_clevr")    # builder, kwargs, dataset, paper and its figures
    model = preset.build()                     # the untrained architecture
    preset.specs()                             # input and output shapes, read off the built model

A preset names a builder of `relzoo.models` and its keyword arguments, the data set it is
trained and measured on, and the paper's figures; the zoo's own are in `presets.toml` beside this
module, and `register` adds yours. Everything else is derived: the input and
output specs from the built model, the recipe that trains it (`training/recipes/<name>.toml`,
which names the preset and holds only training settings), the measured metrics from the
artifact's `card.json` (`relzoo.hub`). Importing this module imports neither Keras nor a data
set generator.
"""

import dataclasses
import difflib
import json
import tomllib
from pathlib import Path

from relzoo.vocab import Vocabulary

RECIPES = Path(__file__).resolve().parent.parent / "training" / "recipes"  # in a source tree only


class UnknownModelError(ValueError):
    """The name is not in the registry."""


@dataclasses.dataclass(frozen=True)
class Preset:
    """One zoo model, as data.

    Attributes:
        name: registry name (also the artifact folder's name).
        family: RN, RMC, MAC, RRN, WReN, VIN or MLRN (or "test").
        description: one sentence for people.
        paper: the paper the model reproduces.
        builder: name of a builder in `relzoo.models.BUILDERS`.
        kwargs: the builder's keyword arguments.
        dataset: `{"name", "version", "seed", "<split>_size", "options"}`: what it is trained and
            measured on (`relzoo.datasets.load_split`).
        answer_vocab: the answer strings, index = class id, or None.
        paper_metrics: the figures the paper reports, for comparison with the card's.
        question_vocab: for models reading questions as token ids, the name of the shipped
            vocabulary they use ("clevr"); published artifacts carry a copy (`relzoo.text`).
        test_only: a fixture for tests, hidden from `list_models()` by default.
    """

    name: str
    family: str
    description: str
    paper: str
    builder: str
    kwargs: dict
    dataset: dict
    answer_vocab: tuple | None = None
    paper_metrics: dict = dataclasses.field(default_factory=dict)
    question_vocab: str | None = None
    test_only: bool = False

    def build(self, **overrides):
        """The untrained architecture (`overrides` replace kwargs, e.g. `num_objects=None`)."""
        from relzoo.models import get_builder

        return get_builder(self.builder)(**{**self.kwargs, **overrides})

    def specs(self):
        """`{"inputs": {name: {"shape", "dtype"}}, "outputs": {...}}` of the built model (shapes
        without the batch axis; None where any size is taken). Built once per process."""
        key = (self.builder, json.dumps(self.kwargs, sort_keys=True))
        if key not in _SPECS:
            _SPECS[key] = model_specs(self.build())
        return _SPECS[key]

    @property
    def recipe(self):
        """The recipe that trains this preset, relative to the source tree, or None."""
        path = RECIPES / f"{self.name}.toml"
        return f"training/recipes/{self.name}.toml" if path.is_file() else None

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["answer_vocab"] = None if self.answer_vocab is None else list(self.answer_vocab)
        d["recipe"] = self.recipe
        return d


_SPECS = {}


def model_specs(model):
    """The input and output specs of a built `keras.Model`, as `Preset.specs` returns them."""
    def spec(tensor):
        return {"shape": list(tensor.shape[1:]), "dtype": str(tensor.dtype)}

    names = model.output_names if hasattr(model, "output_names") else []
    outputs = model.outputs
    return {"inputs": {t.name: spec(t) for t in model.inputs},
            "outputs": {n: spec(t) for n, t in zip(names or [f"output_{k}" for k in range(len(outputs))], outputs)}}


# ----------------------------------------------------------------------------- the presets
PRESETS_FILE = Path(__file__).with_name("presets.toml")
_FIELDS = ("family", "paper", "builder", "description", "kwargs", "dataset")


def _answers(key, answers, name):
    if key in answers:
        return tuple(answers[key])
    try:
        return Vocabulary.shipped(key).answers  # e.g. "clevr": the shipped vocabulary's answers
    except ValueError:
        raise ValueError(f"{PRESETS_FILE}: preset {name!r} names answers {key!r}, which is neither in [answers] "
                         "nor a shipped vocabulary.") from None


def load_presets(path=PRESETS_FILE):
    """`{name: Preset}` from a presets file (the layout of relzoo/presets.toml)."""
    data = tomllib.loads(Path(path).read_text())
    papers, answers, out = data.get("papers", {}), data.get("answers", {}), {}
    for name, table in data.get("presets", {}).items():
        missing = [k for k in _FIELDS if k not in table]
        if missing or table["paper"] not in papers:
            raise ValueError(f"{path}: preset {name!r} lacks {missing} or names an unknown paper {table.get('paper')!r}.")
        out[name] = Preset(name=name, family=table["family"], description=table["description"],
                           paper=papers[table["paper"]], builder=table["builder"], kwargs=table["kwargs"],
                           dataset=table["dataset"],
                           answer_vocab=_answers(table["answers"], answers, name) if "answers" in table else None,
                           paper_metrics=table.get("paper_metrics", {}), question_vocab=table.get("question_vocab"),
                           test_only=table.get("test_only", False))
    return out


PRESETS = load_presets()


def register(preset, overwrite=False):
    """Adds a `Preset` (e.g. a user's own model) to the registry."""
    if not isinstance(preset, Preset):
        raise TypeError(f"register expects a Preset, got {type(preset).__name__}.")
    if preset.name in PRESETS and not overwrite:
        raise ValueError(f"A model named {preset.name!r} is already registered; pass overwrite=True to replace it.")
    PRESETS[preset.name] = preset


def list_models(include_test=False):
    """Names of the registered models, sorted (test fixtures only with `include_test=True`)."""
    return sorted(n for n, p in PRESETS.items() if include_test or not p.test_only)


def get(name):
    """The `Preset` named `name`; an unknown name lists the known ones and the closest match."""
    if isinstance(name, Preset):
        return name
    if not isinstance(name, str):
        raise TypeError(f"A model name is a string, got {type(name).__name__}.")
    try:
        return PRESETS[name]
    except KeyError:
        known = list_models(include_test=True)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.4)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownModelError(f"Unknown model {name!r}.{hint} Known models: {', '.join(known)}.") from None


def build(name):
    """The untrained architecture of the preset `name`."""
    return get(name).build()


__all__ = ["PRESETS", "Preset", "UnknownModelError", "build", "get", "list_models", "load_presets", "model_specs",
           "register"]

"""The zoo's models as data: one `Preset` per name, the single truth of its architecture.

    import relzoo
    relzoo.list_models()                       # the published presets
    preset = relzoo.presets.get("rn_clevr")    # builder, kwargs, dataset, paper and its figures
    model = preset.build()                     # the untrained architecture
    preset.specs()                             # input and output shapes, read off the built model

A preset names a builder of `relzoo.models` and its keyword arguments, the data set it is
trained and measured on, and the paper's figures. Everything else is derived: the input and
output specs from the built model, the recipe that trains it (`training/recipes/<name>.toml`,
which names the preset and holds only training settings), the measured metrics from the
artifact's `card.json` (`relzoo.hub`). Importing this module imports neither Keras nor a data
set generator.
"""

import dataclasses
import difflib
import json
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
RN_PAPER = "Santoro et al. 2017, A simple neural network module for relational reasoning, arXiv:1706.01427"
RMC_PAPER = "Santoro et al. 2018, Relational recurrent neural networks, arXiv:1806.01822"
CLEVR_ANSWERS = Vocabulary.shipped("clevr").answers  # CLEVR's 28 answers, in the shipped vocabulary's order
SORT_OF_CLEVR_ANSWERS = ("yes", "no", "rectangle", "circle") + tuple(f"count{k}" for k in range(4, 10))


def _data(name, train, validation, test, seed=0, **options):
    spec = {"name": name, "version": "1.0.0", "seed": seed, "train_size": train, "validation_size": validation,
            "test_size": test}
    return {**spec, "options": options} if options else spec


def _rn_clevr_pixels(**kwargs):
    base = {"vocab_size": 90, "image_size": 128, "num_answers": 28, "embedding_dim": 32, "lstm_units": 128,
            "conv_layers": 4, "conv_filters": 24, "g_units": [256] * 4, "f_units": [256, 256], "dropout": 0.5}
    return {**base, **kwargs}


_PRESETS = [
    Preset(
        name="rn_tiny_test", family="test", paper=RN_PAPER, builder="rn_state", test_only=True,
        description="A tiny Relation Network over 4 state vectors and a 2-d question, 3 answers. A fixture that "
                    "proves the build -> save -> card -> load path; not a model to use.",
        kwargs={"num_objects": 4, "object_dim": 3, "question_dim": 2, "num_answers": 3, "g_units": [16, 16],
                "f_units": [16], "dropout": 0.0, "name": "rn_tiny_test"},
        dataset={"name": "none", "version": None, "seed": None}, answer_vocab=("a", "b", "c"),
    ),
    Preset(
        name="rn_nearest_object", family="RN", paper=RN_PAPER, builder="rn_state",
        description="A small Relation Network on nearest_object, the pipeline's tiny relational task: six coloured "
                    "points, 'what colour is the object nearest to the <colour> one?'. Trains in seconds on a CPU; "
                    "the fast model for demos and pipeline tests.",
        kwargs={"num_objects": 6, "object_dim": 8, "question_dim": 6, "num_answers": 6, "g_units": [64, 64, 64],
                "f_units": [64], "dropout": 0.0, "name": "rn_nearest_object"},
        dataset=_data("nearest_object", 100000, 2000, 5000, num_objects=6),
        answer_vocab=("red", "green", "blue", "orange", "gray", "yellow"),
    ),
    Preset(
        name="rn_sort_of_clevr", family="RN", paper=RN_PAPER, builder="rn_pixels",
        description="The RN paper's Sort-of-CLEVR model: a 4-layer CNN over the 75x75 image, its 5x5 feature map as "
                    "25 objects with coordinates, PairwiseRelation conditioned on the 18-float question (g 4x256), f "
                    "(256, 256, dropout 0.5), 10 answers. Answers non-relational, binary and ternary questions.",
        kwargs={"image_size": 75, "question_dim": 18, "num_answers": 10, "conv_layers": 4, "conv_filters": 24,
                "g_units": [256] * 4, "f_units": [256, 256], "dropout": 0.5, "name": "rn_sort_of_clevr"},
        dataset=_data("sort_of_clevr", 9800, 200, 200, representation="pixels"),  # images, 30 questions each
        answer_vocab=SORT_OF_CLEVR_ANSWERS,
        paper_metrics={"accuracy/non-relational": "> 0.94 (RN paper, Sort-of-CLEVR, its own generator)",
                       "accuracy/binary": "> 0.94 (RN paper: 'relational'; the public PyTorch port reports 0.89)"},
    ),
    Preset(
        name="cnn_mlp_sort_of_clevr", family="RN", paper=RN_PAPER, builder="cnn_mlp",
        description="The RN paper's CNN+MLP baseline on Sort-of-CLEVR: the same 4-layer CNN, flattened and joined "
                    "with the question, an MLP (256, 256, dropout 0.5), 10 answers; no relation module. Trained with "
                    "the same budget as rn_sort_of_clevr to show what the relation module adds.",
        kwargs={"image_size": 75, "question_dim": 18, "num_answers": 10, "conv_layers": 4, "conv_filters": 24,
                "f_units": [256, 256], "dropout": 0.5, "name": "cnn_mlp_sort_of_clevr"},
        dataset=_data("sort_of_clevr", 9800, 200, 200, representation="pixels"),
        answer_vocab=SORT_OF_CLEVR_ANSWERS,
        paper_metrics={"accuracy/non-relational": "> 0.94 (RN paper, CNN+MLP, Sort-of-CLEVR)",
                       "accuracy/binary": "0.63 (RN paper: 'relational', CNN+MLP plateau)"},
    ),
    Preset(
        name="rn_sort_of_clevr_state", family="RN", paper=RN_PAPER, builder="rn_state",
        description="The rn_sort_of_clevr relation head on Sort-of-CLEVR state descriptions: 6 objects (colour and "
                    "shape one-hots, x / 75, y / 75), 36 pairs, g 4x256, f (256, 256, dropout 0.5), 10 answers. "
                    "Trains in minutes on a CPU; the fast model for smoke tests.",
        kwargs={"num_objects": 6, "object_dim": 10, "question_dim": 18, "num_answers": 10, "g_units": [256] * 4,
                "f_units": [256, 256], "dropout": 0.5, "name": "rn_sort_of_clevr_state"},
        dataset=_data("sort_of_clevr", 9800, 200, 200, representation="state"),
        answer_vocab=SORT_OF_CLEVR_ANSWERS,
    ),
    Preset(
        name="rmc_nth_farthest", family="RMC", paper=RMC_PAPER, builder="rmc_sequence",
        description="The Relational Memory Core on the N-th farthest task: RNN(RelationalMemoryCell: 4 slots, 4 "
                    "heads of 64, 1 block, unit gates) over the 8 steps, its last memory through an MLP (4x256) to "
                    "the label of the n-th farthest vector from vector m.",
        kwargs={"seq_len": 8, "step_dim": 40, "num_answers": 8, "mem_slots": 4, "head_size": 64, "num_heads": 4,
                "num_blocks": 1, "gate_style": "unit", "attention_mlp_layers": 2, "mlp_units": [256] * 4,
                "name": "rmc_nth_farthest"},
        dataset=_data("nth_farthest", 100000, 10000, 10000),  # the training split: fresh examples every epoch
        answer_vocab=tuple(str(k) for k in range(8)),
        paper_metrics={"accuracy": "0.91 (RMC, paper; LSTM and DNC stayed under 0.30)"},
    ),
    Preset(
        name="lstm_nth_farthest", family="RMC", paper=RMC_PAPER, builder="lstm_sequence",
        description="The LSTM baseline of the N-th farthest task: LSTM(512) over the 8 steps, the same MLP (4x256) "
                    "readout, trained with rmc_nth_farthest's budget.",
        kwargs={"seq_len": 8, "step_dim": 40, "num_answers": 8, "units": 512, "mlp_units": [256] * 4,
                "name": "lstm_nth_farthest"},
        dataset=_data("nth_farthest", 100000, 10000, 10000),
        answer_vocab=tuple(str(k) for k in range(8)),
        paper_metrics={"accuracy": "< 0.30 (LSTM, paper)"},
    ),
    Preset(
        name="rn_clevr", family="RN", paper=RN_PAPER, builder="rn_clevr_pixels", question_vocab="clevr",
        description="The RN paper's CLEVR model with one more conv layer: a 5-layer CNN (24 kernels, 3x3, stride 2, "
                    "batch norm) over the 128x128 image, its 4x4 feature map as 16 objects with coordinates (the "
                    "paper's 4 layers give 8x8 = 64 objects and 16x the relation cost; the 5th is the recorded CPU "
                    "recipe choice), PairwiseRelation conditioned on an LSTM (128) over the question's word "
                    "embeddings (32), g 4x256, f (256, 256, dropout 0.5), CLEVR's 28 answers.",
        kwargs=_rn_clevr_pixels(conv_layers=5, name="rn_clevr"),
        dataset=_data("clevr_world", 20000, 1500, 1500, representation="pixels"),  # scenes, 10 questions each
        answer_vocab=CLEVR_ANSWERS,
        paper_metrics={"accuracy": "0.955 (RN paper, real CLEVR pixels)", "accuracy/count": "0.901",
                       "accuracy/exist": "0.978", "accuracy/compare_integer": "0.936",
                       "accuracy/query_attribute": "0.979", "accuracy/compare_attribute": "0.971"},
    ),
    Preset(
        name="rn_clevr_state", family="RN", paper=RN_PAPER, builder="rn_clevr_state", question_vocab="clevr",
        description="The RN paper's CLEVR state-description model: up to 10 objects (3D coordinates and colour, "
                    "shape, material, size one-hots) with a padding mask, PairwiseRelation conditioned on an LSTM "
                    "(256) over the question, g 4x512, f (512, 1024, dropout 0.5), CLEVR's 28 answers.",
        kwargs={"vocab_size": 90, "num_objects": 10, "object_dim": 18, "num_answers": 28, "embedding_dim": 32,
                "lstm_units": 256, "g_units": [512] * 4, "f_units": [512, 1024], "dropout": 0.5,
                "name": "rn_clevr_state"},
        dataset=_data("clevr_world", 280000, 1500, 1500, representation="state"),
        answer_vocab=CLEVR_ANSWERS,
        paper_metrics={"accuracy": "0.964 (RN paper, real CLEVR state descriptions)"},
    ),
]

PRESETS = {p.name: p for p in _PRESETS}


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


__all__ = ["PRESETS", "Preset", "UnknownModelError", "build", "get", "list_models", "model_specs", "register"]

"""The zoo registry: model name -> builder, kwargs, dataset, spec, paper, artifact.

Entries are data. An entry's measured metrics live in its artifact's
`card.json`, written by the evaluation code; `model_card(name)` joins both.

Artifacts are looked up in this order:

1. `$RELZOO_HOME/<name>/` when the `RELZOO_HOME` environment variable is set
   (artifacts kept outside the install, e.g. ones you trained or copied);
2. `saved_models/<name>/` of the relzoo source tree (the published ones).
"""

import dataclasses
import difflib
import os
from pathlib import Path

from relzoo import artifacts
from relzoo.artifacts import ArtifactError, ArtifactNotFoundError
from relzoo.datasets.clevr.executor import ANSWERS as CLEVR_ANSWERS

SAVED_MODELS = Path(__file__).resolve().parent.parent / "saved_models"
HOME_ENV = "RELZOO_HOME"


class UnknownModelError(ValueError):
    """The name is not in the registry."""


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """One zoo model, as data.

    Attributes:
        name: registry name (also the artifact folder's name).
        family: RN, RMC, MAC, RRN, WReN, VIN or MLRN (or "test").
        description: one sentence for people.
        paper: the paper the model reproduces.
        builder: name of a builder in `relzoo.models.BUILDERS`.
        kwargs: the builder's keyword arguments.
        dataset: `{"name", "version", "split": ..., ...}`: what it is trained and measured on.
        inputs: input name -> `{"shape": [...] (no batch axis), "dtype": ...}`.
        outputs: output name -> `{"shape": [...], "dtype": ...}`.
        answer_vocab: the answer strings, index = class id, or None.
        paper_metrics: the figures the paper reports, for comparison with the card's.
        recipe: the training recipe (a path relative to the source tree), or None.
        question_vocab: for models reading questions as token ids, the name of the relzoo
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
    inputs: dict
    outputs: dict
    answer_vocab: tuple | None = None
    paper_metrics: dict = dataclasses.field(default_factory=dict)
    recipe: str | None = None
    question_vocab: str | None = None
    test_only: bool = False

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["answer_vocab"] = None if self.answer_vocab is None else list(self.answer_vocab)
        return d


_ENTRIES = [
    ZooEntry(
        name="rn_tiny_test",
        family="test",
        description=(
            "A tiny Relation Network over 4 state vectors and a 2-d question, 3 answers. A fixture that "
            "proves the build -> save -> card -> load path; not a model to use."
        ),
        paper="Santoro et al. 2017, A simple neural network module for relational reasoning, arXiv:1706.01427",
        builder="rn_state",
        kwargs={
            "num_objects": 4,
            "object_dim": 3,
            "question_dim": 2,
            "num_answers": 3,
            "g_units": [16, 16],
            "f_units": [16],
            "dropout": 0.0,
            "name": "rn_tiny_test",
        },
        dataset={"name": "none", "version": None, "seed": None},
        inputs={
            "objects": {"shape": [4, 3], "dtype": "float32"},
            "question": {"shape": [2], "dtype": "float32"},
        },
        outputs={"answer_logits": {"shape": [3], "dtype": "float32"}},
        answer_vocab=("a", "b", "c"),
        test_only=True,
    ),
]

_NEAREST_COLOURS = ("red", "green", "blue", "orange", "gray", "yellow")

_ENTRIES.append(
    ZooEntry(
        name="rn_nearest_object",
        family="RN",
        description=(
            "A small Relation Network on nearest_object, the pipeline's tiny relational task: six coloured "
            "points, 'what colour is the object nearest to the <colour> one?'. Trains in seconds on a CPU; "
            "the fast model for demos and pipeline tests."
        ),
        paper="Santoro et al. 2017, A simple neural network module for relational reasoning, arXiv:1706.01427",
        builder="rn_state",
        kwargs={
            "num_objects": 6,
            "object_dim": 8,
            "question_dim": 6,
            "num_answers": 6,
            "g_units": [64, 64, 64],
            "f_units": [64],
            "dropout": 0.0,
            "name": "rn_nearest_object",
        },
        dataset={
            "name": "nearest_object",
            "version": "1.0.0",
            "seed": 0,
            "train_size": 100000,
            "validation_size": 2000,
            "test_size": 5000,
            "options": {"num_objects": 6},
        },
        inputs={
            "objects": {"shape": [6, 8], "dtype": "float32"},
            "question": {"shape": [6], "dtype": "float32"},
        },
        outputs={"answer_logits": {"shape": [6], "dtype": "float32"}},
        answer_vocab=_NEAREST_COLOURS,
        recipe="training/recipes/rn_nearest_object.toml",
    )
)

_RN_PAPER = "Santoro et al. 2017, A simple neural network module for relational reasoning, arXiv:1706.01427"
_SORT_OF_CLEVR = {
    "name": "sort_of_clevr",
    "version": "1.0.0",
    "seed": 0,
    "train_size": 9800,  # images; 30 questions each
    "validation_size": 200,
    "test_size": 200,
    "options": {"representation": "pixels"},
}
_SORT_OF_CLEVR_ANSWERS = ("yes", "no", "rectangle", "circle", "count4", "count5", "count6", "count7", "count8",
                          "count9")
_PIXEL_INPUTS = {
    "image": {"shape": [75, 75, 3], "dtype": "float32"},
    "question": {"shape": [18], "dtype": "float32"},
}
_ANSWER10 = {"answer_logits": {"shape": [10], "dtype": "float32"}}
_SOC_PIXELS_COMMON = dict(family="RN", paper=_RN_PAPER, dataset=_SORT_OF_CLEVR, inputs=_PIXEL_INPUTS,
                          outputs=_ANSWER10, answer_vocab=_SORT_OF_CLEVR_ANSWERS)

_ENTRIES += [
    ZooEntry(
        **_SOC_PIXELS_COMMON,
        name="rn_sort_of_clevr",
        description=(
            "The RN paper's Sort-of-CLEVR model: a 4-layer CNN over the 75x75 image, its 5x5 feature map as 25 "
            "objects with coordinates, PairwiseRelation conditioned on the 18-float question (g 4x256), f "
            "(256, 256, dropout 0.5), 10 answers. Answers non-relational, binary and ternary questions."
        ),
        builder="rn_pixels",
        kwargs={
            "image_size": 75,
            "question_dim": 18,
            "num_answers": 10,
            "conv_layers": 4,
            "conv_filters": 24,
            "g_units": [256, 256, 256, 256],
            "f_units": [256, 256],
            "dropout": 0.5,
            "name": "rn_sort_of_clevr",
        },
        paper_metrics={
            "accuracy/non-relational": "> 0.94 (RN paper, Sort-of-CLEVR, its own generator)",
            "accuracy/binary": "> 0.94 (RN paper: 'relational'; the public PyTorch port reports 0.89)",
        },
        recipe="training/recipes/rn_sort_of_clevr.toml",
    ),
    ZooEntry(
        **_SOC_PIXELS_COMMON,
        name="cnn_mlp_sort_of_clevr",
        description=(
            "The RN paper's CNN+MLP baseline on Sort-of-CLEVR: the same 4-layer CNN, flattened and joined with "
            "the question, an MLP (256, 256, dropout 0.5), 10 answers; no relation module. Trained with the same "
            "budget as rn_sort_of_clevr to show what the relation module adds."
        ),
        builder="cnn_mlp",
        kwargs={
            "image_size": 75,
            "question_dim": 18,
            "num_answers": 10,
            "conv_layers": 4,
            "conv_filters": 24,
            "f_units": [256, 256],
            "dropout": 0.5,
            "name": "cnn_mlp_sort_of_clevr",
        },
        paper_metrics={
            "accuracy/non-relational": "> 0.94 (RN paper, CNN+MLP, Sort-of-CLEVR)",
            "accuracy/binary": "0.63 (RN paper: 'relational', CNN+MLP plateau)",
        },
        recipe="training/recipes/cnn_mlp_sort_of_clevr.toml",
    ),
    ZooEntry(
        name="rn_sort_of_clevr_state",
        family="RN",
        description=(
            "The rn_sort_of_clevr relation head on Sort-of-CLEVR state descriptions: 6 objects (colour and "
            "shape one-hots, x / 75, y / 75), 36 pairs, g 4x256, f (256, 256, dropout 0.5), 10 answers. "
            "Trains in minutes on a CPU; the fast model for smoke tests."
        ),
        paper=_RN_PAPER,
        builder="rn_state",
        kwargs={
            "num_objects": 6,
            "object_dim": 10,
            "question_dim": 18,
            "num_answers": 10,
            "g_units": [256, 256, 256, 256],
            "f_units": [256, 256],
            "dropout": 0.5,
            "name": "rn_sort_of_clevr_state",
        },
        dataset=dict(_SORT_OF_CLEVR, options={"representation": "state"}),
        inputs={
            "objects": {"shape": [6, 10], "dtype": "float32"},
            "question": {"shape": [18], "dtype": "float32"},
        },
        outputs=_ANSWER10,
        answer_vocab=_SORT_OF_CLEVR_ANSWERS,
        recipe="training/recipes/rn_sort_of_clevr_state.toml",
    ),
]

_RMC_PAPER = "Santoro et al. 2018, Relational recurrent neural networks, arXiv:1806.01822"
_NTH_FARTHEST = {
    "name": "nth_farthest",
    "version": "1.0.0",
    "seed": 0,
    "train_size": 100000,  # fresh examples per epoch (a stream)
    "validation_size": 10000,
    "test_size": 10000,
}
_SEQUENCE_INPUT = {"sequence": {"shape": [8, 40], "dtype": "float32"}}
_ANSWER8 = {"answer_logits": {"shape": [8], "dtype": "float32"}}
_LABELS8 = tuple(str(k) for k in range(8))
_NTH_FARTHEST_COMMON = dict(family="RMC", paper=_RMC_PAPER, dataset=_NTH_FARTHEST, inputs=_SEQUENCE_INPUT,
                            outputs=_ANSWER8, answer_vocab=_LABELS8)

_ENTRIES += [
    ZooEntry(
        **_NTH_FARTHEST_COMMON,
        name="rmc_nth_farthest",
        description=(
            "The Relational Memory Core on the N-th farthest task: RNN(RelationalMemoryCell: 4 slots, 4 heads "
            "of 64, 1 block, unit gates) over the 8 steps, its last memory through an MLP (4x256) to the label "
            "of the n-th farthest vector from vector m."
        ),
        builder="rmc_sequence",
        kwargs={
            "seq_len": 8,
            "step_dim": 40,
            "num_answers": 8,
            "mem_slots": 4,
            "head_size": 64,
            "num_heads": 4,
            "num_blocks": 1,
            "gate_style": "unit",
            "attention_mlp_layers": 2,
            "mlp_units": [256, 256, 256, 256],
            "name": "rmc_nth_farthest",
        },
        paper_metrics={"accuracy": "0.91 (RMC, paper; LSTM and DNC stayed under 0.30)"},
        recipe="training/recipes/rmc_nth_farthest.toml",
    ),
    ZooEntry(
        **_NTH_FARTHEST_COMMON,
        name="lstm_nth_farthest",
        description=(
            "The LSTM baseline of the N-th farthest task: LSTM(512) over the 8 steps, the same MLP (4x256) "
            "readout, trained with rmc_nth_farthest's budget."
        ),
        builder="lstm_sequence",
        kwargs={
            "seq_len": 8,
            "step_dim": 40,
            "num_answers": 8,
            "units": 512,
            "mlp_units": [256, 256, 256, 256],
            "name": "lstm_nth_farthest",
        },
        paper_metrics={"accuracy": "< 0.30 (LSTM, paper)"},
        recipe="training/recipes/lstm_nth_farthest.toml",
    ),
]

# ----------------------------------------------------------------------------- RN on CLEVR
# Vocabulary and answers of the CLEVR-format world (relzoo/datasets/clevr/vocab.json, 90 tokens;
# CLEVR's 28 answers). Sizes are in scenes, 10 questions each.
_CLEVR_VOCAB_SIZE = 90
_CLEVR_WORLD = {
    "name": "clevr_world",
    "version": "1.0.0",
    "seed": 0,
    "train_size": 7000,
    "validation_size": 1500,
    "test_size": 1500,
}
_QUESTION_TOKENS = {"question": {"shape": [50], "dtype": "int32"}}
_ANSWER28 = {"answer_logits": {"shape": [28], "dtype": "float32"}}
_CLEVR_PAPER_METRICS = {
    "pixels": {
        "accuracy": "0.955 (RN paper, real CLEVR pixels)",
        "accuracy/count": "0.901",
        "accuracy/exist": "0.978",
        "accuracy/compare_integer": "0.936",
        "accuracy/query_attribute": "0.979",
        "accuracy/compare_attribute": "0.971",
    },
    "state": {"accuracy": "0.964 (RN paper, real CLEVR state descriptions)"},
}

_ENTRIES += [
    ZooEntry(
        name="rn_clevr",
        family="RN",
        description=(
            "The RN paper's CLEVR model with one more conv layer: a 5-layer CNN (24 kernels, 3x3, stride 2, "
            "batch norm) over the 128x128 image, its 4x4 feature map as 16 objects with coordinates (the paper's "
            "4 layers give 8x8 = 64 objects and 16x the relation cost; the 5th is the recorded CPU recipe "
            "choice), PairwiseRelation conditioned on an LSTM (128) over the question's word embeddings (32), "
            "g 4x256, f (256, 256, dropout 0.5), CLEVR's 28 answers."
        ),
        paper=_RN_PAPER,
        builder="rn_clevr_pixels",
        kwargs={
            "vocab_size": _CLEVR_VOCAB_SIZE,
            "image_size": 128,
            "num_answers": 28,
            "embedding_dim": 32,
            "lstm_units": 128,
            "conv_layers": 5,
            "conv_filters": 24,
            "g_units": [256, 256, 256, 256],
            "f_units": [256, 256],
            "dropout": 0.5,
            "name": "rn_clevr",
        },
        # 20,000 rendered training scenes (200k questions): with 7,000 the pixel model memorised its images
        # after about 20 epochs (training/recipes/rn_clevr.toml); rendering costs about 1 minute per 1,500
        dataset=dict(_CLEVR_WORLD, train_size=20000, options={"representation": "pixels"}),
        inputs={"image": {"shape": [128, 128, 3], "dtype": "float32"}, **_QUESTION_TOKENS},
        outputs=_ANSWER28,
        answer_vocab=CLEVR_ANSWERS,
        paper_metrics=_CLEVR_PAPER_METRICS["pixels"],
        recipe="training/recipes/rn_clevr.toml",
        question_vocab="clevr",
    ),
    ZooEntry(
        name="rn_clevr_state",
        family="RN",
        description=(
            "The RN paper's CLEVR state-description model: up to 10 objects (3D coordinates and colour, shape, "
            "material, size one-hots) with a padding mask, PairwiseRelation conditioned on an LSTM (256) over "
            "the question, g 4x512, f (512, 1024, dropout 0.5), CLEVR's 28 answers."
        ),
        paper=_RN_PAPER,
        builder="rn_clevr_state",
        kwargs={
            "vocab_size": _CLEVR_VOCAB_SIZE,
            "num_objects": 10,
            "object_dim": 18,
            "num_answers": 28,
            "embedding_dim": 32,
            "lstm_units": 256,
            "g_units": [512, 512, 512, 512],
            "f_units": [512, 1024],
            "dropout": 0.5,
            "name": "rn_clevr_state",
        },
        # state descriptions cost no rendering: first trained on CLEVR's size (70,000 scenes, 700k
        # questions); since 2026-12-05 on twice that (the first 70,000 are the same scenes: a smaller
        # split is a prefix of a larger one), as the model had memorised the 70,000; since
        # 2026-12-05 (later that day) on three times CLEVR's size, 210,000, for the same reason, and
        # since 2026-12-06 on four times, 280,000 (one epoch on 70,000 new scenes gained most each time)
        dataset=dict(_CLEVR_WORLD, train_size=280000, options={"representation": "state"}),
        inputs={"objects": {"shape": [10, 18], "dtype": "float32"},
                "object_mask": {"shape": [10], "dtype": "bool"}, **_QUESTION_TOKENS},
        outputs=_ANSWER28,
        answer_vocab=CLEVR_ANSWERS,
        paper_metrics=_CLEVR_PAPER_METRICS["state"],
        recipe="training/recipes/rn_clevr_state.toml",
        question_vocab="clevr",
    ),
]

REGISTRY = {e.name: e for e in _ENTRIES}


def register(entry, overwrite=False):
    """Adds a `ZooEntry` (e.g. a user's own model) to the registry."""
    if not isinstance(entry, ZooEntry):
        raise TypeError(f"register expects a ZooEntry, got {type(entry).__name__}.")
    if entry.name in REGISTRY and not overwrite:
        raise ValueError(f"A model named {entry.name!r} is already registered; pass overwrite=True to replace it.")
    REGISTRY[entry.name] = entry


def list_models(include_test=False):
    """Names of the registered models, sorted (test fixtures only with `include_test=True`)."""
    return sorted(n for n, e in REGISTRY.items() if include_test or not e.test_only)


def get_entry(name):
    """The `ZooEntry` for `name`; an unknown name lists the known ones and the closest match."""
    if not isinstance(name, str):
        raise TypeError(f"A model name is a string, got {type(name).__name__}.")
    try:
        return REGISTRY[name]
    except KeyError:
        known = list_models(include_test=True)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.4)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownModelError(f"Unknown model {name!r}.{hint} Known models: {', '.join(known)}.") from None


def search_dirs(name):
    """The folders where `name`'s artifact is looked for, in order."""
    dirs = []
    home = os.environ.get(HOME_ENV)
    if home:
        dirs.append(Path(home).expanduser() / name)
    dirs.append(SAVED_MODELS / name)
    return dirs


def shipped_models():
    """Names with a published artifact (a card) in the source tree's `saved_models/`, sorted."""
    return sorted(p.parent.name for p in SAVED_MODELS.glob(f"*/{artifacts.CARD_FILE}"))


def artifact_dir(name):
    """The first folder holding `name`'s card, or None."""
    for d in search_dirs(name):
        if (d / artifacts.CARD_FILE).is_file():
            return d
    return None


def build(name):
    """The untrained architecture of `name`."""
    from relzoo.models import get_builder

    entry = get_entry(name)
    return get_builder(entry.builder)(**entry.kwargs)


def model_card(name):
    """The entry's data joined with its artifact's card (`card` is None when there is no artifact)."""
    entry = get_entry(name)
    info = entry.to_dict()
    d = artifact_dir(name)
    info["artifact_dir"] = None if d is None else str(d)
    info["card"] = None if d is None else artifacts.read_card(d)
    return info


def _load_keras_file(path):
    import keras

    import relzoo.layers  # noqa: F401  registers the custom layers

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as err:  # Keras raises many types for a bad file
        raise ArtifactError(f"Keras could not load {path} as a .keras model (safe_mode=True): {err}") from err


def _check_signature(model, entry, path):
    """The loaded model must have the entry's inputs and outputs."""
    names = sorted(t.name for t in model.inputs) if hasattr(model, "inputs") and model.inputs else None
    want = sorted(entry.inputs)
    if names is not None and names != want:
        raise ArtifactError(f"{path} is not a {entry.name} model: its inputs are {names}, the entry expects {want}.")
    out_shapes = [tuple(o.shape[1:]) for o in model.outputs] if getattr(model, "outputs", None) else []
    want_out = [tuple(o["shape"]) for o in entry.outputs.values()]
    if out_shapes and sorted(out_shapes) != sorted(want_out):
        raise ArtifactError(
            f"{path} is not a {entry.name} model: its outputs have shapes {out_shapes}, the entry expects {want_out}."
        )


def load(name, weights="pretrained"):
    """Returns the zoo model `name` as a `keras.Model`.

    Args:
        name: a registered model name (`list_models()`).
        weights: `"pretrained"` (the published artifact, found in
            `$RELZOO_HOME/<name>/` or the source tree's `saved_models/<name>/`),
            `None` (the untrained architecture), or a path to a `.keras` file
            (checked against a `card.json` beside it when there is one).

    The weights file's size and sha256 are checked against the card before
    loading, and the model is loaded with `safe_mode=True`. Any mismatch raises
    an `ArtifactError` naming the file: nothing is silently rebuilt or reloaded.
    """
    entry = get_entry(name)
    if weights is None:
        return build(name)
    if isinstance(weights, str) and weights == "pretrained":
        d = artifact_dir(name)
        if d is None:
            searched = ", ".join(str(p) for p in search_dirs(name))
            how = f" Train it with `python -m training.train {entry.recipe}`." if entry.recipe else ""
            raise ArtifactNotFoundError(
                f"No published artifact for {name!r}: no {artifacts.CARD_FILE} in {searched}.{how} "
                f"Set {HOME_ENV} to a folder holding {name}/ to use your own, or pass weights=None "
                "for the untrained architecture."
            )
        card = artifacts.verify_artifact(d)
        path = d / card["weights_file"]
    elif isinstance(weights, (str, os.PathLike)):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ArtifactNotFoundError(f"No weights file at {path} (weights= takes 'pretrained', None or a .keras path).")
        if path.suffix != ".keras":
            raise ArtifactError(f"{path} is not a .keras file; relzoo loads Keras 3 `.keras` files only.")
        card_path = path.parent / artifacts.CARD_FILE
        if card_path.is_file():
            card = artifacts.read_card(path.parent)
            if card.get("weights_file") == path.name:
                artifacts.verify_weights(path, card["sha256"], card.get("size_bytes"))
    else:
        raise TypeError(f"weights must be 'pretrained', None or a path to a .keras file; got {weights!r}.")
    model = _load_keras_file(path)
    _check_signature(model, entry, path)
    return model

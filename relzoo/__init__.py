"""relzoo: relational-reasoning networks for Keras 3.

    import relzoo
    relzoo.list_models()
    model = relzoo.load("rn_clevr")                                    # trained, sha256-checked
    relzoo.ask("rn_clevr", "How many cubes are there?", image=image)   # English in, answer out

Layers live in `relzoo.layers`, builders in `relzoo.models`, the zoo's models as data in
`relzoo.presets`, artifact lookup and downloads in `relzoo.hub`. Keras (and its backend) is
imported on first use of a layer or model, and no data set generator is imported at all, so
`import relzoo` stays light.
"""

import importlib

__version__ = "0.2.0"

from relzoo import presets  # noqa: E402
from relzoo.artifacts import ArtifactError, ArtifactIntegrityError, ArtifactNotFoundError  # noqa: E402
from relzoo.hub import load, model_card  # noqa: E402
from relzoo.presets import Preset, UnknownModelError, build, list_models, register  # noqa: E402
from relzoo.text import ask, decode_answers, encode_questions  # noqa: E402

ZooEntry = Preset  # the 0.1 name

_LAZY_SUBMODULES = ("layers", "models", "testing", "zoo")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"relzoo.{name}")
    raise AttributeError(f"module 'relzoo' has no attribute {name!r}")


__all__ = [
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
    "Preset",
    "UnknownModelError",
    "ZooEntry",
    "ask",
    "build",
    "decode_answers",
    "encode_questions",
    "layers",
    "list_models",
    "load",
    "model_card",
    "models",
    "presets",
    "register",
    "testing",
]

"""relzoo: relational-reasoning networks for Keras 3.

    import relzoo
    relzoo.list_models()
    model = relzoo.load("rn_tiny_test", weights=None)
    relzoo.ask("rn_clevr", "How many cubes are there?", image=image)   # English in, answer out

Layers live in `relzoo.layers`, builders in `relzoo.models`, the registry in
`relzoo.zoo`. Keras (and its backend) is imported on first use of a layer or
model, so `import relzoo` and the registry stay light.
"""

import importlib

__version__ = "0.1.0"

from relzoo.artifacts import ArtifactError, ArtifactIntegrityError, ArtifactNotFoundError  # noqa: E402
from relzoo.text import ask, decode_answers, encode_questions  # noqa: E402
from relzoo.zoo import UnknownModelError, ZooEntry, build, list_models, load, model_card, register  # noqa: E402

_LAZY_SUBMODULES = ("layers", "models", "testing")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"relzoo.{name}")
    raise AttributeError(f"module 'relzoo' has no attribute {name!r}")


__all__ = [
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
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
    "register",
    "testing",
]

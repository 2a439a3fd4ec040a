"""Deprecated: the 0.1 registry module. The zoo's models are `relzoo.presets`; finding, downloading
and loading their artifacts is `relzoo.hub`. These names keep working and will be removed in 0.3."""

import warnings

from relzoo.hub import HOME_ENV, SOURCE_SAVED_MODELS, artifact_dir, load, model_card, search_dirs, shipped_models
from relzoo.presets import PRESETS, Preset, UnknownModelError, build, list_models, register
from relzoo.presets import get as get_entry

warnings.warn("relzoo.zoo is deprecated: use relzoo.presets (the registry) and relzoo.hub (artifacts).",
              DeprecationWarning, stacklevel=2)

REGISTRY = PRESETS
SAVED_MODELS = SOURCE_SAVED_MODELS
ZooEntry = Preset

__all__ = ["HOME_ENV", "REGISTRY", "SAVED_MODELS", "UnknownModelError", "ZooEntry", "artifact_dir", "build",
           "get_entry", "list_models", "load", "model_card", "register", "search_dirs", "shipped_models"]

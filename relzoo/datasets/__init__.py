"""Deterministic data generators (numpy), their TFDS builders, readers of the real data sets, and
split loading.

`load_split(spec, split)` gives the `Examples` of a data set spec's split (the `dataset` of a
preset or a card). `get_dataset(name)` imports a generator module on first use: each has
`VERSION` and either `generate_examples(size, seed, split, ...)` returning an `Examples`, or
`generate(size, seed, split, ...)` returning `(inputs dict, answers)`.
"""

import importlib

from relzoo.datasets.examples import Examples
from relzoo.datasets.splits import SPLITS, load_split

DATASETS = {
    "clevr_v1": "relzoo.datasets.clevr.folder",  # real CLEVR v1.0 from a local folder (options.root)
    "clevr_world": "relzoo.datasets.clevr.dataset",
    "nearest_object": "relzoo.datasets.nearest_object",
    "nth_farthest": "relzoo.datasets.nth_farthest",
    "sort_of_clevr": "relzoo.datasets.sort_of_clevr",
}


def get_dataset(name):
    """The generator module of the data set `name` (imported now)."""
    try:
        return importlib.import_module(DATASETS[name])
    except KeyError:
        raise ValueError(f"Unknown dataset {name!r}; known datasets: {sorted(DATASETS)}.") from None


def __getattr__(name):
    if name in DATASETS:
        return get_dataset(name)
    raise AttributeError(f"module 'relzoo.datasets' has no attribute {name!r}")


__all__ = ["DATASETS", "Examples", "SPLITS", "get_dataset", "load_split"]

"""Deterministic data generators (numpy) and their loaders.

`DATASETS` maps a dataset name to its module, which has `VERSION` and either
`generate_examples(size, seed, split, ...)` returning an `Examples`, or
`generate(size, seed, split, ...)` returning `(inputs dict, answers)`.
"""

from relzoo.datasets import nearest_object, nth_farthest, sort_of_clevr
from relzoo.datasets.clevr import dataset as clevr_world
from relzoo.datasets.examples import Examples

DATASETS = {"clevr_world": clevr_world, "nearest_object": nearest_object, "nth_farthest": nth_farthest,
            "sort_of_clevr": sort_of_clevr}


def get_dataset(name):
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"Unknown dataset {name!r}; known datasets: {sorted(DATASETS)}.") from None


__all__ = ["DATASETS", "Examples", "clevr_world", "get_dataset", "nearest_object", "nth_farthest", "sort_of_clevr"]

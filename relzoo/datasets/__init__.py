"""Deterministic data generators (numpy) and their loaders.

`DATASETS` maps a dataset name to its module, which has `generate(num_examples,
seed, split, ...)` returning `(inputs dict, answers)` and `VERSION`.
"""

from relzoo.datasets import nearest_object, sort_of_clevr

# Datasets whose `generate` feeds the trainer and `relzoo evaluate` directly. sort_of_clevr
# has its scene generator (`generate_scenes`); its training/evaluation adapter comes with
# the rn_sort_of_clevr models.
DATASETS = {"nearest_object": nearest_object}


def get_dataset(name):
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"Unknown dataset {name!r}; known datasets: {sorted(DATASETS)}.") from None


__all__ = ["DATASETS", "get_dataset", "nearest_object", "sort_of_clevr"]

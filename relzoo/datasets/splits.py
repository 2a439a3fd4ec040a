"""Split loading: the `Examples` of a data set spec's split, as the trainer, the evaluation and the
export use them."""

import inspect

from relzoo.datasets.examples import Examples

SPLITS = ("train", "validation", "test")


def load_split(spec, split, renderer=None):
    """The `Examples` of a dataset spec's split (`{"name", "version", "seed", "<split>_size", "options"}`).

    `renderer`: for data sets that render images (clevr_world), which renderer makes them
    ("numpy", the default, or "jax"); None leaves the data set's default."""
    from relzoo.datasets import get_dataset

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    key = f"{split}_size"
    if key not in spec:
        raise ValueError(f"The dataset spec {spec.get('name')!r} has no {key!r}.")
    module = get_dataset(spec["name"])
    version = spec.get("version")
    if version is not None and version != module.VERSION:
        raise ValueError(
            f"The dataset spec asks for {spec['name']} version {version}, but this relzoo generates "
            f"version {module.VERSION}: the numbers would not be comparable."
        )
    options = dict(spec.get("options", {}))
    generate = getattr(module, "generate_examples", None) or module.generate
    if renderer is not None:
        if "renderer" not in inspect.signature(generate).parameters:
            raise ValueError(f"The dataset {spec['name']!r} renders no images; it takes no renderer "
                             f"(got {renderer!r}).")
        options["renderer"] = renderer
    if "spec" in inspect.signature(generate).parameters:  # a reader whose splits depend on each other's sizes
        options["spec"] = spec
    if hasattr(module, "generate_examples"):
        return generate(spec[key], seed=spec.get("seed", 0), split=split, **options)
    inputs, answers = generate(spec[key], seed=spec["seed"], split=split, **options)
    return Examples(inputs=inputs, answers=answers)

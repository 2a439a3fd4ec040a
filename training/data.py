"""A run's data: the recipe's three splits, generated once and kept in the run folder.

Each generated split is cached as `.npz` under a name keyed by its spec, the split and the data
set code (every `.py` and `.json` file that generates it), so a cached copy is used only when the
generator would make the same one; a resumed run reuses it. A stream (fresh examples every epoch)
is not cached. `--prepare-scenes` writes the training split's scenes and questions without images,
for a GPU machine to render with `--renderer jax`.
"""

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from relzoo.datasets import get_dataset, load_split
from relzoo.datasets.examples import Examples, Stream

ROOT = Path(__file__).resolve().parent.parent
DATA_CODE = ("relzoo/datasets", "relzoo/vocabularies", "relzoo/vocab.py")


def data_code():
    """The data set code, as bytes: the path and content of every .py and .json file that generates data."""
    parts = []
    for where in DATA_CODE:
        base = ROOT / where
        for path in sorted(base.rglob("*")) if base.is_dir() else [base]:
            if path.suffix in (".py", ".json") and path.is_file():
                parts += [str(path.relative_to(ROOT)).encode(), path.read_bytes()]
    return b"".join(parts)


def fingerprint(spec, split, code=None, renderer="numpy"):
    """What a generated split depends on: its spec, the data set code and, when it is not the
    default, the renderer of its images."""
    fields = {"spec": spec, "split": split}
    if renderer != "numpy":
        fields["renderer"] = renderer
    key = json.dumps(fields, sort_keys=True).encode()
    return hashlib.sha256(key + (data_code() if code is None else code)).hexdigest()[:16]


def unrendered_path(path):
    """Where `--prepare-scenes` keeps a split's scenes and questions: beside its cache `path`."""
    return Path(path).with_name(Path(path).name.replace(".npz", ".unrendered.npz"))


def _log(line):
    print(f"train: {line}", flush=True)


def _cached(path, split):
    """The cached split at `path`, or None (a damaged file is reported and generated again)."""
    if path is None or not path.is_file():
        return None
    try:
        examples = Examples.load(path)
    except Exception as err:  # noqa: BLE001  any reader error: regenerate, never use
        _log(f"the cached {split} split {path} is unreadable ({err}); generating it again")
        return None
    _log(f"{split} split from the cache {path.name}")
    return examples


def _generate(spec, split, renderer, path):
    started = time.perf_counter()
    scenes_file = None if path is None else unrendered_path(path)
    if renderer == "jax" and scenes_file is not None and scenes_file.is_file():  # made ahead (--prepare-scenes)
        with np.load(scenes_file) as parts:
            examples = get_dataset(spec["name"]).render_unrendered(parts)
        _log(f"rendered the {split} split's images from {scenes_file.name} with the jax renderer in "
             f"{time.perf_counter() - started:.0f} s")
        return examples
    examples = load_split(spec, split, renderer=None if renderer == "numpy" else renderer)
    if path is not None and not isinstance(examples, Stream):
        path.parent.mkdir(parents=True, exist_ok=True)
        examples.save(path)
        how = "" if renderer == "numpy" else f" (images by the {renderer} renderer)"
        _log(f"generated the {split} split{how} in {time.perf_counter() - started:.0f} s; cached as {path.name}")
    return examples


def load_data(spec, cache_dir=None, renderer="numpy"):
    """The train, validation and test `Examples` of the data set `spec`, from the cache when it has them.

    `renderer` ("numpy" or "jax") renders the training split's images, for data sets with images;
    validation and test are always rendered by numpy."""
    code = None if cache_dir is None else data_code()  # read the code once, not per split
    data = {}
    for split in ("train", "validation", "test"):
        split_renderer = renderer if split == "train" else "numpy"
        path = None if cache_dir is None else \
            Path(cache_dir) / f"{split}-{fingerprint(spec, split, code, split_renderer)}.npz"
        cached = _cached(path, split)
        data[split] = cached if cached is not None else _generate(spec, split, split_renderer, path)
    return data


def prepare_scenes(spec, cache_dir):
    """Writes the training split's scenes and questions, without images (`generate_unrendered`),
    where a `--renderer jax` run with the same recipe and code finds them. Returns the path."""
    module = get_dataset(spec["name"])
    if not hasattr(module, "generate_unrendered"):
        raise ValueError(f"--prepare-scenes: the dataset {spec['name']!r} has no unrendered form (only clevr_world "
                         "with the pixels representation).")
    if spec.get("options", {}).get("representation", "pixels") != "pixels":
        raise ValueError("--prepare-scenes is for image data (representation = \"pixels\"); state descriptions "
                         "need no rendering: use --prepare-data.")
    path = unrendered_path(Path(cache_dir) / f"train-{fingerprint(spec, 'train', data_code(), 'jax')}.npz")
    parts = module.generate_unrendered(spec["train_size"], seed=spec["seed"], split="train", progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(tmp, **parts)
    os.replace(tmp, path)
    return path

"""clevr_v1: real CLEVR v1.0 from a local folder, as a data set the trainer and `load_split` read.

A recipe trains on real CLEVR by naming this data set in place of the generated world, with
the folder in its options (nothing else changes; sizes are in scenes, as for `clevr_world`):

    python -m training.train training/recipes/rn_clevr.toml 'dataset.name="clevr_v1"' \\
        'dataset.version="1.0"' 'dataset.options.root="/data/CLEVR_v1.0"' \\
        dataset.train_size=70000 dataset.validation_size=7500 dataset.test_size=7500

CLEVR's test split has no answers, so both held-out splits come from its val split: validation
is its first `validation_size` images (in question order), test the `test_size` images after
them. Train is the first `train_size` images of CLEVR's train split. The seed is not used (the
data is what it is). `split_scenes` gives each split's scene annotations in the order of its
scene arrays, for `train.cell_loss`.
"""

from relzoo.datasets.clevr.reader import ClevrFolder

VERSION = "1.0"
NAME = "clevr_v1"
_FOLDERS = {}  # root -> ClevrFolder, so that the three splits read each JSON file once


def _folder(root):
    if root is None:
        raise ValueError("clevr_v1: the data set spec needs options.root, the CLEVR_v1.0 folder (or its parent).")
    if str(root) not in _FOLDERS:
        _FOLDERS[str(root)] = ClevrFolder(root)
    return _FOLDERS[str(root)]


def _image_order(questions):
    """CLEVR image indices in the order their first question comes, and `{index: questions before
    its first}`, so that the first k images' questions are `questions[:first[k-th image]]`."""
    order, first = [], {}
    for position, question in enumerate(questions):
        index = int(question["image_index"])
        if index not in first:
            first[index] = position
            order.append(index)
    return order, first


def _window(spec, split, questions):
    """`(first image, images)` of our split inside CLEVR's (train -> train, validation and test -> val)."""
    size = int(spec[f"{split}_size"])
    start = int(spec["validation_size"]) if split == "test" else 0
    order, _ = _image_order(questions)
    if start + size > len(order):
        raise ValueError(f"clevr_v1: the {split} split asks for images {start} to {start + size} of CLEVR's "
                         f"{'train' if split == 'train' else 'val'} split, which has {len(order)}.")
    return start, size


def _clevr_split(split):
    return "train" if split == "train" else "val"


def generate_examples(num_scenes, seed=0, split="train", root=None, representation="pixels", spec=None):
    """The `Examples` of our `split`'s images of a CLEVR folder (see the module docstring)."""
    folder = _folder(root)
    spec = spec or {f"{split}_size": num_scenes, "validation_size": num_scenes}
    questions = folder.questions(_clevr_split(split))
    start, size = _window(spec, split, questions)
    order, first = _image_order(questions)
    stop = first[order[start + size]] if start + size < len(order) else len(questions)
    begin = first[order[start]]
    return folder.examples(_clevr_split(split), representation=representation, limit=stop, start=begin)


def split_scenes(spec, split):
    """The scene dicts of a spec's split, in the order of its `Examples`' scene arrays."""
    folder = _folder(spec.get("options", {}).get("root"))
    questions = folder.questions(_clevr_split(split))
    start, size = _window(spec, split, questions)
    order, _ = _image_order(questions)
    by_index = {int(s["image_index"]): s for s in folder.scenes(_clevr_split(split))}
    return [by_index[i] for i in order[start:start + size]]


__all__ = ["NAME", "VERSION", "generate_examples", "split_scenes"]

"""clevr_v1: a local real-CLEVR folder (the `clevr_folder` fixture) as a data set spec that load_split and
the trainer read."""

import numpy as np
import pytest

from relzoo.datasets import get_dataset, load_split
from relzoo.datasets.clevr import folder
from relzoo.datasets.clevr.scenes import generate_scenes


def _spec(root, **sizes):
    return {"name": "clevr_v1", "version": "1.0", "seed": 0, "train_size": 4, "validation_size": 2, "test_size": 2,
            **sizes, "options": {"root": str(root), "representation": "pixels"}}


def test_splits_are_windows_of_clevrs_train_and_val(clevr_folder):
    spec = _spec(clevr_folder)
    assert get_dataset("clevr_v1") is folder
    train, validation, test = (load_split(spec, s) for s in ("train", "validation", "test"))
    assert [len(x.scenes["image"]) for x in (train, validation, test)] == [4, 2, 2]
    assert [len(x) for x in (train, validation, test)] == [16, 10, 10]
    # test begins where validation ends: val's images 2..3, not 0..1
    val_all = load_split(_spec(clevr_folder, validation_size=4), "validation")
    np.testing.assert_array_equal(test.scenes["image"], val_all.scenes["image"][2:4])
    np.testing.assert_array_equal(validation.scenes["image"], val_all.scenes["image"][:2])


def test_split_scenes_follow_the_scene_arrays(clevr_folder):
    spec = _spec(clevr_folder)
    for split, clevr in (("train", "train"), ("test", "validation")):
        scenes = folder.split_scenes(spec, split)
        examples = load_split(spec, split)
        assert len(scenes) == len(examples.scenes["image"])
        generated = generate_scenes(4 if clevr == "validation" else 6, seed=22 if clevr == "validation" else 21,
                                    split=clevr)
        first = 2 if split == "test" else 0
        for got, want in zip(scenes, generated[first:]):
            assert [o["pixel_coords"] for o in got["objects"]] == [o["pixel_coords"] for o in want["objects"]]


def test_clear_errors(clevr_folder):
    with pytest.raises(ValueError, match="needs options.root"):
        load_split({**_spec(clevr_folder), "options": {}}, "train")
    with pytest.raises(ValueError, match=r"asks for images 2 to 10 of CLEVR's val split, which has 4"):
        load_split(_spec(clevr_folder, test_size=8), "test")

"""Examples: scene arrays stored once and gathered per batch, identically in numpy, tf.data and PyDataset."""

import numpy as np
import pytest

from relzoo.datasets import sort_of_clevr
from relzoo.datasets.examples import Examples
from relzoo.datasets import load_split
from relzoo.evaluate import accuracy_values


def _toy():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 3, 3, 1), dtype=np.uint8)
    index = np.array([0, 0, 1, 3, 2, 3, 1])
    q = rng.random((7, 2)).astype(np.float32)
    return Examples(inputs={"question": q}, answers=np.arange(7) % 3, scenes={"image": images}, scene_index=index,
                    scale={"image": 1 / 255}, groups={"g": (np.array([0, 1, 0, 1, 0, 1, 0]), ("even", "odd"))})


def test_batch_gathers_and_scales():
    ex = _toy()
    b = ex.batch(np.array([3, 0]))
    assert b["image"].dtype == np.float32 and b["image"].shape == (2, 3, 3, 1)
    np.testing.assert_allclose(b["image"][0], ex.scenes["image"][3] / 255, rtol=1e-6)
    np.testing.assert_array_equal(b["question"], ex.inputs["question"][[3, 0]])
    batches = list(ex.numpy_batches(3))
    assert [len(y) for _, y in batches] == [3, 3, 1]
    sub = ex.subset(np.array([6, 2]))
    assert len(sub) == 2 and list(sub.groups["g"][0]) == [0, 0]
    np.testing.assert_array_equal(sub.batch(slice(None))["image"], ex.batch(np.array([6, 2]))["image"])


def test_tf_dataset_and_py_dataset_match_numpy():
    ex = _toy()
    want = ex.batch(slice(None))
    got = [(x, y) for x, y in ex.tf_dataset(4).as_numpy_iterator()]
    np.testing.assert_allclose(np.concatenate([x["image"] for x, _ in got]), want["image"], rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate([y for _, y in got]), ex.answers)
    # shuffled: the same examples, each still paired with its own answer and image
    x, y = next(iter(ex.tf_dataset(7, seed=3, shuffle=True).as_numpy_iterator()))
    order = [int(np.where(np.all(ex.inputs["question"] == qq, axis=1))[0][0]) for qq in x["question"]]
    assert sorted(order) == list(range(7)) and list(y) == list(ex.answers[order])
    np.testing.assert_allclose(x["image"], want["image"][order], rtol=1e-6)
    from training.batches import ExampleBatches

    pyd = ExampleBatches(ex, 5, seed=1, shuffle=True)
    assert len(pyd) == 2
    seen = np.concatenate([pyd[i][1] for i in range(len(pyd))])
    assert sorted(seen) == sorted(ex.answers)
    # each epoch's order is drawn from (seed, epoch): a run resumed at epoch 1 sees epoch 1's batches
    pyd.on_epoch_end()
    resumed = ExampleBatches(ex, 5, seed=1, shuffle=True, start_epoch=1)
    assert [list(resumed[i][1]) for i in range(2)] == [list(pyd[i][1]) for i in range(2)]


def test_batches_of_padded_ids_are_cut_after_their_longest_row():
    from relzoo.datasets.examples import trailing_length
    from training.batches import ExampleBatches

    ids = np.zeros((6, 10), np.int32)
    for row, length in enumerate([3, 7, 2, 5, 1, 4]):
        ids[row, :length] = np.arange(1, length + 1)
    ids[5, 1] = 0  # a zero inside a row keeps the columns after it
    ex = Examples(inputs={"question": ids, "other": ids.copy()}, answers=np.arange(6))
    assert trailing_length(ids[:3]) == 7 and trailing_length(ids[2:3]) == 2 and trailing_length(ids[2:3], 8) == 8
    assert trailing_length(np.zeros((2, 10), np.int32)) == 1 and trailing_length(ids, multiple=8) == 8
    for batches, expected in [
        (list(ex.tf_dataset(3, trim=["question"]).as_numpy_iterator()), [7, 5]),
        ([ExampleBatches(ex, 3, trim=["question"])[i] for i in range(2)], [8, 8]),  # a multiple of 8 (at most 10)
    ]:
        assert [x["question"].shape[1] for x, _ in batches] == expected
        for k, (x, _) in enumerate(batches):
            full = ids[3 * k:3 * k + 3]
            np.testing.assert_array_equal(x["question"], full[:, :x["question"].shape[1]])  # the kept columns, as they were
            assert not full[:, x["question"].shape[1]:].any()  # only padding was cut
            assert x["other"].shape[1] == 10  # inputs not named are left whole


def test_bad_examples_are_clear_errors():
    with pytest.raises(ValueError, match="scene_index"):
        Examples(inputs={"q": np.zeros((2, 1))}, answers=[0, 1], scenes={"image": np.zeros((1, 2))})
    with pytest.raises(ValueError, match="out of range"):
        Examples(inputs={"q": np.zeros((2, 1))}, answers=[0, 1], scenes={"image": np.zeros((1, 2))},
                 scene_index=[0, 1])
    with pytest.raises(ValueError, match="rows"):
        Examples(inputs={"q": np.zeros((3, 1))}, answers=[0, 1])


def test_accuracy_per_group():
    ex = _toy()
    pred = ex.answers.copy()
    pred[[1, 3]] = 9  # two odd-group examples wrong (of 3)
    v = accuracy_values(pred, ex)
    assert v["accuracy"] == pytest.approx(5 / 7, abs=1e-6)
    assert v["accuracy/even"] == 1.0 and v["accuracy/odd"] == pytest.approx(1 / 3, abs=1e-6)


@pytest.mark.parametrize("representation", ["pixels", "state"])
def test_sort_of_clevr_examples_are_the_generators_questions(representation):
    spec = {"name": "sort_of_clevr", "version": sort_of_clevr.VERSION, "seed": 5, "test_size": 3,
            "options": {"representation": representation}}
    ex = load_split(spec, "test")
    scenes = sort_of_clevr.generate_scenes(3, seed=5, split="test")
    assert len(ex) == 90
    k = 47  # scene 1, question 17 (binary)
    b = ex.batch(np.array([k]))
    np.testing.assert_array_equal(b["question"][0], scenes["question"][1, 17])
    assert ex.answers[k] == scenes["answer"][1, 17]
    if representation == "pixels":
        assert set(b) == {"image", "question"}
        np.testing.assert_allclose(b["image"][0], scenes["image"][1] / 255.0, rtol=1e-6)
        assert b["image"].max() <= 1.0
    else:
        assert set(b) == {"objects", "question"}
        np.testing.assert_array_equal(b["objects"][0], scenes["objects"][1])
    types, names = ex.groups["type"]
    assert names == sort_of_clevr.TYPE_NAMES and types[k] == 1
    assert ex.groups["kind"][1][scenes["kind"][1, 17]].startswith("binary/")
    with pytest.raises(ValueError, match="representation"):
        load_split(dict(spec, options={"representation": "voxels"}), "test")

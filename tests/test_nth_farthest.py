"""nth_farthest: answers against a brute force, encoding, determinism, the stream."""

import math

import numpy as np
import pytest

from relzoo.datasets import nth_farthest as nf


def _brute(vectors, labels, n, m):
    ref = [v for v, lab in zip(vectors, labels) if lab == m]
    assert len(ref) == 1
    dists = [(math.dist(v, ref[0]), lab) for v, lab in zip(vectors, labels)]
    dists.sort(key=lambda t: -t[0])
    return dists[n][1]


def test_answers_match_brute_force():
    seqs, answers, parts = nf.sample(500, np.random.default_rng(4))
    for i in range(500):
        want = _brute(parts["vectors"][i].tolist(), parts["labels"][i].tolist(), int(parts["n"][i]), int(parts["m"][i]))
        assert answers[i] == want
    # the farthest from m is never m; the nearest (n index 7) always is m
    assert not np.any((parts["n"] == 0) & (answers == parts["m"]))
    assert np.all(answers[parts["n"] == 7] == parts["m"][parts["n"] == 7])


def test_encoding():
    (x, y) = nf.generate(64, seed=1, split="test")
    s = x["sequence"]
    assert s.shape == (64, 8, 40) and s.dtype == np.float32 and y.dtype == np.int32
    assert np.all(np.abs(s[..., :16]) <= 1.0)
    labels = np.argmax(s[..., 16:24], -1)
    assert all(sorted(row) == list(range(8)) for row in labels)  # a permutation per example
    assert np.all(s[..., 16:].sum(-1) == 3.0)  # three one-hots per step
    assert np.all(s[:, :, 24:] == s[:, :1, 24:])  # n and m are the same at every step
    assert not np.all(labels == np.arange(8))  # labels are not the step index
    assert "farthest first" in nf.describe(s[0])


def test_determinism_disjoint_splits_and_stream():
    a, ya = nf.generate(100, seed=3, split="test")
    b, yb = nf.generate(100, seed=3, split="test")
    assert a["sequence"].tobytes() == b["sequence"].tobytes() and (ya == yb).all()
    c, _ = nf.generate(100, seed=3, split="validation")
    assert not np.array_equal(a["sequence"], c["sequence"])
    assert len(nf.generate(split="validation")[1]) == 10000
    batches = nf.stream(32, seed=3)
    first, second = next(batches), next(batches)
    assert first[0]["sequence"].shape == (32, 8, 40) and not np.array_equal(first[0]["sequence"], second[0]["sequence"])
    # answers are spread over all 8 labels
    assert np.bincount(ya, minlength=8).min() > 0
    with pytest.raises(ValueError, match="split must be one of"):
        nf.generate(5, split="dev")


def test_training_stream_is_fresh_each_epoch_and_resumable():
    from relzoo.datasets.examples import Stream
    from relzoo.datasets import load_split

    spec = {"name": "nth_farthest", "version": nf.VERSION, "seed": 2, "train_size": 100, "test_size": 50}
    train = load_split(spec, "train")
    assert isinstance(train, Stream) and len(train) == 100
    assert len(load_split(spec, "test")) == 50
    from training.batches import StreamBatches

    ds = StreamBatches(train, 32)
    assert len(ds) == 4 and len(ds[3][1]) == 4  # 100 = 3 x 32 + 4
    epoch0 = [ds[i][0]["sequence"] for i in range(4)]
    ds.on_epoch_end()
    assert not np.array_equal(ds[0][0]["sequence"], epoch0[0])  # fresh examples each epoch
    resumed = StreamBatches(train, 32, start_epoch=1)  # a resumed run sees the same epoch-1 batches
    np.testing.assert_array_equal(resumed[2][0]["sequence"], ds[2][0]["sequence"])
    x, y = resumed[1]
    assert y.dtype == np.int32 and x["sequence"].shape == (32, 8, 40)


@pytest.mark.slow
def test_tfds_builder_builds_offline_and_matches_the_generator(tmp_path):
    import tensorflow_datasets as tfds

    import relzoo.datasets.nth_farthest_tfds  # noqa: F401  registers the builder

    ds = tfds.load("nth_farthest/tiny", split="test", data_dir=str(tmp_path), download=True)
    got = list(tfds.as_numpy(ds))
    x, y = nf.generate(16, seed=0, split="test")
    by_bytes = {ex["sequence"].tobytes(): ex for ex in got}
    assert len(by_bytes) == 16
    for i in range(16):
        assert by_bytes[x["sequence"][i].tobytes()]["answer"] == y[i]
    builder = tfds.builder("nth_farthest/tiny", data_dir=str(tmp_path))
    assert builder.info.splits["train"].num_examples == 64

"""Sort-of-CLEVR: the generator against an independent brute force, layout, pixels, determinism."""

import math

import numpy as np
import pytest

from relzoo.datasets import sort_of_clevr as soc


@pytest.fixture(scope="module")
def scenes():
    return soc.generate_scenes(300, seed=5, split="validation")


def brute_force_answer(centres, shapes, question):
    """Recomputes one answer from the 18 floats and the scene, with plain Python and math."""
    q = [float(v) for v in question]
    a = q[0:6].index(1.0)
    qtype = q[12:15].index(1.0)
    sub = q[15:18].index(1.0)
    pts = [(int(x), int(y)) for x, y in centres]
    shp = [int(s) for s in shapes]
    if qtype == 0:
        assert sum(q[6:12]) == 0.0
        if sub == 0:
            return 2 + shp[a]
        if sub == 1:
            return 0 if pts[a][0] < 37.5 else 1
        return 0 if pts[a][1] < 37.5 else 1
    if qtype == 1:
        assert sum(q[6:12]) == 0.0
        others = [k for k in range(6) if k != a]
        dist = {k: math.dist(pts[a], pts[k]) for k in others}
        if sub == 0:
            return 2 + shp[min(others, key=dist.get)]
        if sub == 1:
            return 2 + shp[max(others, key=dist.get)]
        return 3 + sum(1 for k in range(6) if shp[k] == shp[a])
    b = q[6:12].index(1.0)
    assert a != b
    (ax, ay), (bx, by) = pts[a], pts[b]
    others = [k for k in range(6) if k not in (a, b)]
    if sub == 0:
        inside = [k for k in others
                  if min(ax, bx) <= pts[k][0] <= max(ax, bx) and min(ay, by) <= pts[k][1] <= max(ay, by)]
        return 4 + len(inside)
    if sub == 1:
        for k in others:
            cx, cy = pts[k]
            if ax == bx:
                if cx == ax:
                    return 0
            elif abs(cy - (ay + (by - ay) / (bx - ax) * (cx - ax))) <= 12 + 1e-9:
                return 0
        return 1
    count = 0
    for k in others:
        c = pts[k]
        sides = sorted([math.dist(pts[a], pts[b]), math.dist(pts[a], c), math.dist(pts[b], c)])
        if abs(sides[2] - sides[0] - sides[1]) < 1e-9:  # collinear: not a triangle
            continue
        # the largest angle is opposite the longest side (law of cosines)
        cos_largest = (sides[0] ** 2 + sides[1] ** 2 - sides[2] ** 2) / (2 * sides[0] * sides[1])
        if cos_largest <= 1e-12:
            count += 1
    return 4 + count


def test_answers_match_brute_force(scenes):
    n, q = scenes["answer"].shape
    assert (n, q) == (300, 30)
    for i in range(n):
        for j in range(q):
            want = brute_force_answer(scenes["centre"][i], scenes["shape"][i], scenes["question"][i, j])
            assert scenes["answer"][i, j] == want, (i, j, soc.describe_question(scenes["question"][i, j]))


def test_question_encoding_and_mix(scenes):
    qs = scenes["question"]
    assert qs.shape[-1] == 18 and qs.dtype == np.float32
    np.testing.assert_array_equal(qs[..., 0:6].sum(-1), 1.0)
    np.testing.assert_array_equal(qs[..., 12:15].sum(-1), 1.0)
    np.testing.assert_array_equal(qs[..., 15:18].sum(-1), 1.0)
    types = qs[..., 12:15].argmax(-1)
    np.testing.assert_array_equal((types == 0).sum(1), 10)
    np.testing.assert_array_equal((types == 1).sum(1), 10)
    np.testing.assert_array_equal((types == 2).sum(1), 10)
    np.testing.assert_array_equal(qs[..., 6:12].sum(-1), (types == 2).astype(np.float32))
    np.testing.assert_array_equal(scenes["kind"], types * 3 + qs[..., 15:18].argmax(-1))
    # every subtype occurs, roughly uniformly; answers stay in the 10 classes
    counts = np.bincount(scenes["kind"].ravel(), minlength=9)
    assert counts.min() > 0.8 * counts.mean()
    assert scenes["answer"].min() >= 0 and scenes["answer"].max() <= 9


def test_layout_and_pixels(scenes):
    c = scenes["centre"]
    assert c.min() >= 5 and c.max() < 70
    d2 = ((c[:, :, None, :] - c[:, None, :, :]) ** 2).sum(-1)
    off = ~np.eye(6, dtype=bool)
    assert (d2[:, off] >= 100).all()
    img = scenes["image"]
    assert img.shape == (300, 75, 75, 3) and img.dtype == np.uint8
    for i in range(50):
        for k in range(6):
            x, y = c[i, k]
            np.testing.assert_array_equal(img[i, y, x], soc.RGB[k])  # rows are y, columns x
            corner = img[i, y - 5, x - 5]
            if (np.abs(c[i] - c[i, k]).max(-1) >= 11).sum() < 5:
                continue  # a neighbour's 11x11 box may cover the corner (later objects draw over)
            if scenes["shape"][i, k] == 0:
                np.testing.assert_array_equal(corner, soc.RGB[k])  # squares fill their corners
            else:
                np.testing.assert_array_equal(corner, [255, 255, 255])  # circles do not
    # white background: most pixels untouched
    white = (img == 255).all(-1).mean()
    assert 0.8 < white < 0.97
    state = scenes["objects"]
    assert state.shape == (300, 6, soc.STATE_DIM)
    np.testing.assert_allclose(state[..., 8:10] * 75, c, atol=1e-4)
    np.testing.assert_array_equal(state[..., 6:8].argmax(-1), scenes["shape"])


def test_same_seed_same_bytes_and_disjoint_splits():
    a = soc.generate_scenes(20, seed=3, split="test")
    b = soc.generate_scenes(20, seed=3, split="test")
    for key in a:
        assert a[key].tobytes() == b[key].tobytes(), key
    c = soc.generate_scenes(20, seed=3, split="train")
    assert a["image"].tobytes() != c["image"].tobytes()
    d = soc.generate_scenes(20, seed=4, split="test")
    assert a["image"].tobytes() != d["image"].tobytes()
    with pytest.raises(ValueError, match="split must be one of"):
        soc.generate_scenes(2, split="dev")


def test_words():
    q = np.zeros(18, np.float32)
    q[[0, 6 + 2, 14, 17]] = 1.0
    assert soc.describe_question(q) == "How many objects form an obtuse triangle with the red and blue ones?"
    assert soc.describe_answer(5, q) == "1"
    q2 = np.zeros(18, np.float32)
    q2[[3, 13, 17]] = 1.0
    assert soc.describe_question(q2) == "How many objects have the shape of the orange one?"
    assert soc.describe_answer(5, q2) == "2"
    assert soc.describe_answer(3, q2) == "circle"


@pytest.mark.slow
def test_tfds_builder_builds_offline_and_matches_the_generator(tmp_path):
    import tensorflow_datasets as tfds

    import relzoo.datasets.sort_of_clevr_tfds  # noqa: F401  registers the builder

    ds = tfds.load("sort_of_clevr/tiny", split="test", data_dir=str(tmp_path), download=True)
    examples = list(tfds.as_numpy(ds))
    want = soc.generate_scenes(4, seed=0, split="test")
    assert len(examples) == 4
    # TFDS may shuffle example order on write; match them by image bytes
    by_image = {ex["image"].tobytes(): ex for ex in examples}
    for i in range(4):
        ex = by_image[want["image"][i].tobytes()]
        np.testing.assert_array_equal(ex["question"], want["question"][i])
        np.testing.assert_array_equal(ex["answer"], want["answer"][i])
        np.testing.assert_array_equal(ex["kind"], want["kind"][i])
        np.testing.assert_array_equal(ex["objects"], want["objects"][i])
    builder = tfds.builder("sort_of_clevr/tiny", data_dir=str(tmp_path))
    assert builder.info.splits["train"].num_examples == 16 and builder.info.splits["validation"].num_examples == 4


def test_cell_targets_match_a_loop_over_objects():
    """Each object lands in the cell of its centre, in its colour's slot, with its offset and shape."""
    grid = 5
    spec = {"seed": 0, "test_size": 6}
    centres, shapes = soc.split_layouts(spec, "test")
    full = soc.generate_scenes(6, seed=0, split="test")
    np.testing.assert_array_equal(centres, full["centre"])
    np.testing.assert_array_equal(shapes, full["shape"])
    got = soc.cell_targets(centres, shapes, grid)
    want = np.zeros((6, grid, grid, 6, 5), np.float32)
    for s in range(6):
        for k in range(6):
            x, y = (centres[s, k] + 0.5) * grid / 75.0
            col, row = int(x), int(y)
            want[s, row, col, k, :3] = 1.0, x - col - 0.5, y - row - 0.5
            want[s, row, col, k, 3 + shapes[s, k]] = 1.0
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got[..., 0].sum() == 36 and np.abs(got[..., 1:3]).max() < 0.5
    flat = soc.cell_annotations(spec, "test", grid)
    np.testing.assert_array_equal(flat, got.reshape(6, 25, 30))
    with pytest.raises(ValueError, match=r"expected centres \(S, 6, 2\)"):
        soc.cell_targets(centres[:, :5], shapes, grid)
    with pytest.raises(ValueError, match="grid must be a positive int"):
        soc.cell_targets(centres, shapes, 0)


def test_circle_styles_change_only_the_circles():
    round_, opencv, mixed = (soc.generate_scenes(40, seed=3, split="train", circles=c) for c in soc.CIRCLES)
    for key in ("question", "answer", "kind", "centre", "shape"):
        np.testing.assert_array_equal(opencv[key], round_[key])
        np.testing.assert_array_equal(mixed[key], round_[key])
    circles = int((round_["shape"] == 1).sum())
    differ = (opencv["image"] != round_["image"]).any(-1).sum()
    assert 0.98 * 16 * circles <= differ <= 16 * circles  # 97 - 81 pixels a circle, but where a later object covers it
    spiky = ((mixed["image"] != round_["image"]).any(-1).sum()) / 16
    assert 0.3 * circles < spiky < 0.7 * circles  # about half of them
    assert soc.SPIKY_DISC.sum() == 81 and not (soc.SPIKY_DISC & ~soc._DISC).any()
    np.testing.assert_array_equal(soc.generate_scenes(40, seed=3, split="train")["image"], round_["image"])
    with pytest.raises(ValueError, match="circles must be one of"):
        soc.generate_scenes(2, circles="square")

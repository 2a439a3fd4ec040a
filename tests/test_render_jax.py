"""`render_jax.render_batch` against `render.render_scene`, pixel by pixel, and `scene_table`.

Scenes: `generate_scenes(6, seed=3)` (every shape in both materials, both sizes, many
rotations), a 10-object scene (no padding), and a built scene: a large metal sphere mirroring
a rotated red cube, a large cylinder hiding half of a small metal sphere, the sphere hiding
part of a small cube (rotated 400.5 degrees) that lies in its shadow, a cube turned by a
negative angle and a large metal cube; its coordinates are not multiples of 1e-4, so its
table holds float64 coordinates. At 48x32 also an empty scene.

Measured on this CPU (jax 0.10.2; 8 scenes of the tests at 192x128 and 96 scenes of
`generate_scenes(96, seed=3)` at 192x128 and 48x32):
- float64: every uint8 value identical (100%, max |diff| 0).
- float32: 99.975-99.98% of values identical, 99.999% within 2 levels, mean |diff| 0.0005-0.0012;
  the rest are single pixels on silhouettes and shadow edges (max |diff| up to 168).
The bounds below leave a margin for other XLA builds and backends (a silhouette pixel that
flips by rounding) while still failing on a shading or geometry change that touches more than
a sliver of an image.
"""

import sys

import numpy as np
import pytest

pytest.importorskip("jax")

from relzoo.datasets.clevr import camera  # noqa: E402
from relzoo.datasets.clevr import render as R  # noqa: E402
from relzoo.datasets.clevr import render_jax as RJ  # noqa: E402
from relzoo.datasets.clevr import scenes as S  # noqa: E402

_RIGHT, _BEHIND = camera.DIRECTIONS["right"][:2], camera.DIRECTIONS["behind"][:2]


def _obj(shape, color, material, size, right, behind, rotation):
    r = S.SIZE_RADIUS[size]
    xy = right * _RIGHT + behind * _BEHIND
    return {"shape": shape, "color": color, "material": material, "size": size, "rotation": rotation,
            "3d_coords": [float(xy[0]), float(xy[1]), r]}


def built_scene():
    return {"objects": [
        _obj("sphere", "gray", "metal", "large", 0.0, 0.0, 0.0),
        _obj("cube", "red", "rubber", "large", 1.8, 0.0, 30.0),
        _obj("cylinder", "green", "rubber", "large", -1.0, -1.8, 10.0),
        _obj("sphere", "cyan", "metal", "small", -1.1, 1.4, 0.0),  # half behind the green cylinder
        _obj("cube", "yellow", "rubber", "small", 0.9, 1.4, 400.5),  # behind the sphere, in its shadow
        _obj("cylinder", "red", "metal", "small", -0.6, 2.6, -45.0),
        _obj("cube", "blue", "metal", "large", -2.6, 0.4, 72.25),
    ]}


@pytest.fixture(scope="module")
def scenes():
    out = S.generate_scenes(6, seed=3)
    out.append(S.sample_scene(np.random.default_rng(11), index=6, num_objects=S.MAX_OBJECTS))
    out.append(built_scene())
    return out


def agreement(a, b):
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {"identical": float((d == 0).mean()), "within2": float((d <= 2).mean()), "mean": float(d.mean()),
            "max": int(d.max()), "pixels_off": float((d.max(-1) > 2).mean())}


def reference(scenes, width, height, shadow_samples=R.SHADOW_SAMPLES):
    return np.stack([R.render_scene(s, width, height, shadow_samples=shadow_samples) for s in scenes])


def assert_float64_agrees(got, ref):
    assert got.shape == ref.shape and got.dtype == np.uint8
    a = agreement(got, ref)
    # measured: all identical; allow a rounding-boundary level here and there and a flipped silhouette pixel
    assert a["identical"] >= 0.9999 and a["mean"] < 0.005 and a["pixels_off"] <= 2e-4, a


def test_covers_what_it_claims(scenes):
    objs = [o for s in scenes for o in s["objects"]]
    assert {(o["shape"], o["material"], o["size"]) for o in objs} == {
        (sh, m, sz) for sh in S.SHAPES for m in S.MATERIALS for sz in S.SIZES}
    ids = R.object_ids(built_scene(), 96, 64)
    for k in (3, 4):  # partly hidden by a nearer object, still seen
        alone = (R.object_ids({"objects": [built_scene()["objects"][k]]}, 96, 64) == 0).sum()
        assert 0 < (ids == k).sum() < 0.8 * alone


def test_float64_matches_render_192x128(scenes):
    import jax

    x64_before = bool(jax.config.jax_enable_x64)
    table = RJ.scene_table(scenes)
    got = RJ.render_batch(table, 192, 128, batch_size=3)  # 3 chunks, the last one padded
    assert_float64_agrees(got, reference(scenes, 192, 128))
    # the x64 switch was scoped: jax's default dtype is what it was
    assert bool(jax.config.jax_enable_x64) == x64_before
    assert jax.numpy.zeros(1).dtype == (np.float64 if x64_before else np.float32)


def test_float32_is_close_192x128(scenes):
    got = RJ.render_batch(scenes, 192, 128, dtype="float32", batch_size=3)  # scene dicts are packed too
    a = agreement(got, reference(scenes, 192, 128))
    # measured: 99.98% identical, 99.999% within 2, mean 0.0005
    assert a["identical"] >= 0.995 and a["within2"] >= 0.999 and a["mean"] < 0.02 and a["pixels_off"] <= 2e-3, a


def test_small_images_empty_scene_and_hard_shadows(scenes):
    small = scenes + [{"objects": []}]
    assert_float64_agrees(RJ.render_batch(small, 48, 32, batch_size=3), reference(small, 48, 32))
    one = small[:3] + small[-2:]
    assert_float64_agrees(RJ.render_batch(one, 48, 32, shadow_samples=1, batch_size=3),
                          reference(one, 48, 32, shadow_samples=1))


def test_scene_table_padding_and_mask(scenes, tmp_path):
    table = RJ.scene_table(scenes)
    n, k = len(scenes), S.MAX_OBJECTS
    assert set(table) == set(RJ.TABLE_KEYS)
    assert all(v.shape == (n, k) for v in table.values())
    counts = [len(s["objects"]) for s in scenes]
    np.testing.assert_array_equal(table["mask"].sum(1), counts)
    for i, c in enumerate(counts):
        assert table["mask"][i, :c].all() and not table["mask"][i, c:].any()
        for key in ("shape", "size", "color", "material", "rotation"):
            assert (table[key][i, c:] == 0).all()
    assert table["shape"].dtype == np.int8 and table["mask"].dtype == bool
    # built_scene's coordinates are not multiples of 1e-4: float64; generated ones pack exactly into int16
    assert table["x"].dtype == np.float64 and table["rotation"].dtype == np.int32
    gen = RJ.scene_table(scenes[:7])
    assert gen["x"].dtype == np.int16 and gen["y"].dtype == np.int16
    for i, s in enumerate(scenes[:7]):
        for j, o in enumerate(s["objects"]):
            assert gen["x"][i, j] / RJ.COORD_SCALE == o["3d_coords"][0]
            assert gen["y"][i, j] / RJ.COORD_SCALE == o["3d_coords"][1]
            assert gen["rotation"][i, j] / RJ.ROTATION_SCALE == o["rotation"]
            assert S.SHAPES[gen["shape"][i, j]] == o["shape"] and S.COLORS[gen["color"][i, j]] == o["color"]
            assert S.MATERIALS[gen["material"][i, j]] == o["material"] and S.SIZES[gen["size"][i, j]] == o["size"]
    # it survives np.savez_compressed
    np.savez_compressed(tmp_path / "t.npz", **gen)
    with np.load(tmp_path / "t.npz") as back:
        assert all(np.array_equal(back[key], gen[key]) and back[key].dtype == gen[key].dtype for key in gen)
        np.testing.assert_array_equal(RJ.render_batch(back, 48, 32, batch_size=3),
                                      RJ.render_batch(scenes[:7], 48, 32, batch_size=3))
    empty = RJ.scene_table([])
    assert empty["mask"].shape == (0, k)
    assert RJ.render_batch(empty, 48, 32).shape == (0, 32, 48, 3)


def test_bad_inputs(scenes):
    too_many = {"objects": [_obj("sphere", "red", "rubber", "small", 0.0, 0.0, 0.0)] * (S.MAX_OBJECTS + 1)}
    with pytest.raises(ValueError, match="at most"):
        RJ.scene_table([too_many])
    with pytest.raises(ValueError, match="unknown color"):
        RJ.scene_table([{"objects": [_obj("sphere", "pink", "rubber", "small", 0.0, 0.0, 0.0)]}])
    with pytest.raises(ValueError, match="scene dict"):
        RJ.scene_table([[1, 2, 3]])
    table = RJ.scene_table(scenes[:2])
    with pytest.raises(ValueError, match="supersample"):
        RJ.render_batch(table, 48, 32, supersample=2)
    with pytest.raises(ValueError, match="dtype"):
        RJ.render_batch(table, 48, 32, dtype="float16")
    with pytest.raises(ValueError, match="lacks"):
        RJ.render_batch({k: v for k, v in table.items() if k != "mask"}, 48, 32)
    with pytest.raises(ValueError, match="MAX_OBJECTS"):
        RJ.render_batch({k: v[:, :5] for k, v in table.items()}, 48, 32)
    with pytest.raises(ValueError, match="codes"):
        RJ.render_batch(dict(table, color=table["color"] + 8), 48, 32)


def test_missing_jax_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # `import jax` raises ImportError
    with pytest.raises(ImportError, match="test dependency"):
        RJ.render_batch(RJ.scene_table([built_scene()]), 48, 32)


def test_the_dataset_renders_with_jax_as_with_numpy(tmp_path):
    """`generate_split(renderer="jax")`: the same scenes, questions and (on this CPU, float64) images."""
    from relzoo.datasets.clevr import dataset as D
    from relzoo.datasets import load_split
    from training import data

    want = D.generate_split(5, seed=2, split="validation", representation="pixels", workers=1, progress=False,
                            image_size=32)
    got = D.generate_split(5, seed=2, split="validation", representation="pixels", workers=1, progress=False,
                           image_size=32, renderer="jax")
    for a, b in ((want[0], got[0]), (want[1], got[1])):
        assert set(a) == set(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert want[2] == got[2]
    with pytest.raises(ValueError, match="renderer must be one of"):
        D.generate_split(1, representation="pixels", renderer="blender", progress=False)
    with pytest.raises(ValueError, match="takes no renderer"):
        load_split({"name": "nearest_object", "seed": 0, "test_size": 4}, "test", renderer="jax")
    # the trainer keys its cache by the renderer of the training split only
    spec = {"name": "clevr_world", "seed": 0, "train_size": 3}
    assert data.fingerprint(spec, "train", b"", "jax") != data.fingerprint(spec, "train", b"")
    assert data.fingerprint(spec, "train", b"", "numpy") == data.fingerprint(spec, "train", b"")


def test_an_unrendered_split_renders_into_the_same_examples(tmp_path):
    """`generate_unrendered` (scenes and questions, no images, saved compressed) then
    `render_unrendered` gives the `Examples` of `generate_examples` (on this CPU, to the byte)."""
    from relzoo.datasets.clevr import dataset as D

    want = D.generate_examples(4, seed=5, split="train", representation="pixels", workers=1)
    parts = D.generate_unrendered(4, seed=5, split="train", workers=1)
    np.savez_compressed(tmp_path / "u.npz", **parts)
    with np.load(tmp_path / "u.npz") as back:
        got = D.render_unrendered(back)
    assert set(got.inputs) == set(want.inputs) and set(got.scenes) == set(want.scenes) == {"image"}
    np.testing.assert_array_equal(got.inputs["question"], want.inputs["question"])
    np.testing.assert_array_equal(got.scenes["image"], want.scenes["image"])
    np.testing.assert_array_equal(got.answers, want.answers)
    np.testing.assert_array_equal(got.scene_index, want.scene_index)
    np.testing.assert_array_equal(got.groups["category"][0], want.groups["category"][0])
    assert got.scale == want.scale and got.inputs["question"].dtype == np.int32
    with pytest.raises(ValueError, match="generate_unrendered"):
        D.render_unrendered({k: v for k, v in parts.items() if k != "questions/answer"})

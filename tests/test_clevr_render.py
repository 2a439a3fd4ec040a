"""The CLEVR-format renderer: shapes, determinism, agreement with `camera.project`, colours,
silhouettes, materials, occlusion, sizes and shadows. Small images, so it runs in seconds."""

import colorsys

import numpy as np
import pytest
from PIL import Image

from relzoo.datasets.clevr import camera
from relzoo.datasets.clevr import render as R
from relzoo.datasets.clevr import scenes as S

W, H = 240, 160  # half of CLEVR's 480x320


def make_obj(shape="sphere", color="red", material="rubber", size="large", x=0.0, y=0.0, rotation=30.0):
    r = S.SIZE_RADIUS[size]
    px = camera.project(np.array([x, y, r]))
    return {"shape": shape, "color": color, "material": material, "size": size, "rotation": rotation,
            "3d_coords": [x, y, r], "pixel_coords": [int(round(px[0])), int(round(px[1])), round(float(px[2]), 4)]}


def scene_of(*objs):
    return {"objects": list(objs)}


def centre_pixel(obj, width=W, height=H):
    x, y, _ = obj["pixel_coords"]
    return int(round(x * width / camera.WIDTH)), int(round(y * height / camera.HEIGHT))


def hue_class(rgb):
    """The colour name (of the 8) nearest in hue to `rgb`; 'gray' when unsaturated."""
    h, s, _ = colorsys.rgb_to_hsv(*(np.asarray(rgb, float) / 255.0))
    if s < 0.3:
        return "gray"
    best, dist = None, 9.0
    for name, ref in R.COLOR_RGB.items():
        if name == "gray":
            continue
        hr = colorsys.rgb_to_hsv(*(np.asarray(ref, float) / 255.0))[0]
        d = min(abs(h - hr), 1.0 - abs(h - hr))
        if d < dist:
            best, dist = name, d
    return best


@pytest.fixture(scope="module")
def scenes():
    return S.generate_scenes(12, seed=7, split="validation")


def test_hue_classes_of_the_palette():
    for name, rgb in R.COLOR_RGB.items():
        assert hue_class(rgb) == name


def test_shape_dtype_and_supersample(scenes):
    for k in (1, 2):
        img = R.render_scene(scenes[0], 96, 64, supersample=k)
        assert img.shape == (64, 96, 3) and img.dtype == np.uint8
    ids = R.object_ids(scenes[0], 96, 64)
    assert ids.shape == (64, 96) and np.issubdtype(ids.dtype, np.integer)
    assert ids.min() >= -1 and ids.max() < len(scenes[0]["objects"])
    with pytest.raises(ValueError):
        R.render_scene(scenes[0], 96, 64, supersample=0)


def test_deterministic(scenes):
    a = R.render_scene(scenes[1], 120, 80, supersample=2)
    b = R.render_scene(scenes[1], 120, 80, supersample=2)
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, R.render_scene(scenes[2], 120, 80, supersample=2))


def test_single_object_centre_is_covered_exactly():
    for shape in S.SHAPES:
        for size in S.SIZES:
            for x, y in [(0.0, 0.0), (2.5, -2.5), (-2.8, 2.6), (2.7, 2.9)]:
                obj = make_obj(shape, size=size, x=x, y=y, rotation=47.0)
                for width, height in [(W, H), (480, 320), (192, 128)]:
                    ids = R.object_ids(scene_of(obj), width, height)
                    cx, cy = centre_pixel(obj, width, height)
                    assert ids[cy, cx] == 0, (shape, size, x, y, width)


def test_generated_centres_show_their_object(scenes):
    shown = total = 0
    for scene in scenes:
        ids = R.object_ids(scene, W, H)
        objs = scene["objects"]
        for k, obj in enumerate(objs):
            cx, cy = centre_pixel(obj, W, H)
            who = ids[cy, cx]
            total += 1
            shown += who == k
            # never the ground, never a farther object: only a nearer object may hide the centre
            assert who >= 0, (scene["image_index"], k)
            assert who == k or objs[who]["pixel_coords"][2] < obj["pixel_coords"][2]
    assert shown >= 0.9 * total, (shown, total)


def test_centre_colour_is_the_objects_hue(scenes):
    # exact for lone objects: every colour, shape and material
    for color in S.COLORS:
        for shape in S.SHAPES:
            for material in S.MATERIALS:
                obj = make_obj(shape, color, material, "large", 0.5, -0.5)
                img = R.render_scene(scene_of(obj), W, H)
                cx, cy = centre_pixel(obj)
                assert hue_class(img[cy, cx]) == color, (color, shape, material, img[cy, cx])
    # the large majority in generated scenes (reflections of neighbours may tint metal)
    good = total = 0
    for scene in scenes:
        img = R.render_scene(scene, W, H)
        ids = R.object_ids(scene, W, H)
        for k, obj in enumerate(scene["objects"]):
            cx, cy = centre_pixel(obj)
            if ids[cy, cx] == k:
                total += 1
                good += hue_class(img[cy, cx]) == obj["color"]
    assert total and good >= 0.9 * total, (good, total)


def test_silhouettes_differ_by_shape():
    masks = {s: R.object_ids(scene_of(make_obj(s, size="large", rotation=20.0)), W, H) == 0 for s in S.SHAPES}
    for a, b in [("sphere", "cube"), ("sphere", "cylinder"), ("cube", "cylinder")]:
        differ = (masks[a] != masks[b]).sum()
        assert differ > 0.05 * (masks[a] | masks[b]).sum(), (a, b, differ)


def test_metal_has_a_brighter_highlight_than_rubber():
    for shape in S.SHAPES:
        for color in ("red", "blue", "gray"):
            peak = {}
            for material in S.MATERIALS:
                scene = scene_of(make_obj(shape, color, material, "large", 0.0, 0.0, 35.0))
                img = R.render_scene(scene, W, H).astype(float)
                mask = R.object_ids(scene, W, H) == 0
                peak[material] = img[mask].sum(-1).max()
            assert peak["metal"] > peak["rubber"] + 30, (shape, color, peak)


def test_nearer_object_occludes_farther():
    # both on the line from the camera through the origin: the nearer one hides part of the farther
    toward = camera.POSITION[:2] / np.linalg.norm(camera.POSITION[:2])
    near_xy, far_xy = 1.2 * toward, -1.2 * toward
    near = make_obj("cube", "red", "rubber", "large", *near_xy)
    far = make_obj("sphere", "blue", "metal", "large", *far_xy)
    alone_near = R.object_ids(scene_of(near), W, H) == 0
    alone_far = R.object_ids(scene_of(far), W, H) == 0
    overlap = alone_near & alone_far
    assert overlap.sum() > 20
    for objs, i_near in [((near, far), 0), ((far, near), 1)]:
        ids = R.object_ids(scene_of(*objs), W, H)
        assert (ids[overlap] == i_near).all()
        img = R.render_scene(scene_of(*objs), W, H)
        assert hue_class(np.median(img[overlap], axis=0)) == "red"


def test_large_covers_more_than_small():
    for shape in S.SHAPES:
        n = {size: (R.object_ids(scene_of(make_obj(shape, size=size)), W, H) == 0).sum() for size in S.SIZES}
        assert n["large"] > 3 * n["small"] > 0, (shape, n)


def test_objects_cast_shadows_away_from_the_light():
    away = -R.KEY_DIR[:2] / np.linalg.norm(R.KEY_DIR[:2])  # on the ground, away from the key light
    perp = np.array([-away[1], away[0]])
    for shape in S.SHAPES:
        obj = make_obj(shape, "yellow", "rubber", "large", 0.0, 0.0, 10.0)
        scene = scene_of(obj)
        img = R.render_scene(scene, W, H).astype(float).mean(-1)
        ids = R.object_ids(scene, W, H)
        c = np.array(obj["3d_coords"][:2])
        reach = 0.7 * (np.sqrt(2.0) if shape == "cube" else 1.0)
        shadow, lit = [], []
        # ground points just beyond the footprint, on the side away from the light and toward it
        for along in np.linspace(reach + 0.05, reach + 0.45, 9):
            for across in np.linspace(-0.3, 0.3, 5):
                for sign, out in ((1.0, shadow), (-1.0, lit)):
                    p = np.concatenate([c + sign * along * away + across * perp, [0.0]])
                    x, y, _ = camera.project(p, W, H)
                    x, y = int(round(x)), int(round(y))
                    if ids[y, x] == -1:  # the ground is seen there
                        out.append(img[y, x])
        open_ground = img[ids == -1].mean()
        assert len(shadow) >= 3 and len(lit) >= 3, (shape, len(shadow), len(lit))
        assert np.mean(shadow) < 0.75 * np.mean(lit), (shape, np.mean(shadow), np.mean(lit))
        assert np.mean(shadow) < 0.75 * open_ground, (shape, np.mean(shadow), open_ground)


def test_render_grid(scenes):
    grid = R.render_grid(scenes[:3], cols=2, width=60, height=40, captions=["a", "b\nc", "d"])
    assert isinstance(grid, Image.Image) and grid.mode == "RGB"
    assert grid.width > 2 * 60 and grid.height > 2 * 40
    plain = R.render_grid(scenes[:3], cols=3, width=60, height=40, pad=0)
    assert plain.size == (180, 40)
    assert np.array_equal(np.asarray(plain)[:, :60], R.render_scene(scenes[0], 60, 40))

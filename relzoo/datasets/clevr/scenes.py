"""Scenes of the CLEVR-format world, in CLEVR's scene JSON schema.

A scene has 3 to 10 objects on the ground plane, each with a shape (cube, sphere,
cylinder), colour (8), material (rubber, metal), size (large: half-extent 0.7, small:
0.35), a rotation in degrees, `3d_coords` (x, y on the plane in [-3, 3], z = the
half-extent: the object rests on the plane) and `pixel_coords` (see `camera.project`).
Placement follows CLEVR's rules so that spatial relations are unambiguous:

- objects do not overlap and keep a gap: `distance - r_i - r_j >= MIN_DIST`, with `r` the
  object's reach on the plane (a cube, side 2r, reaches r * sqrt(2); CLEVR instead shrinks
  cubes to side r * sqrt(2), a difference in looks only);
- along each of the left/right and front/behind directions, every pair is at least
  `MARGIN` apart, so "left of" and "behind" are never a near tie;
- each object keeps at least `MIN_VISIBLE` of its projected disc unoccluded by nearer
  objects (checked on a coarse depth-ordered raster), so its attributes can be seen.

A layout that cannot be completed in `MAX_TRIES` draws per object is restarted with the same
object count, as CLEVR does (so counts stay uniform over 3..10).
`relationships[R][i]` lists the objects j with `(p_j - p_i) . direction_R > RELATION_EPS`.
"""

import numpy as np

from relzoo.datasets.clevr import camera

SHAPES = ("cube", "sphere", "cylinder")
COLORS = ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")
MATERIALS = ("rubber", "metal")
SIZES = ("large", "small")
SIZE_RADIUS = {"large": 0.7, "small": 0.35}
RELATIONS = ("left", "right", "front", "behind")
MIN_OBJECTS, MAX_OBJECTS = 3, 10
EXTENT = 3.0
MIN_DIST = 0.25
MARGIN = 0.4
RELATION_EPS = 0.2
MIN_VISIBLE = 0.4
MAX_TRIES = 50
SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}


def _visible_fractions(xy, radii):
    """Fraction of each object's projected disc not hidden by nearer objects (coarse raster)."""
    w, h = 120, 80
    centres = np.concatenate([xy, radii[:, None]], axis=1)
    pix = camera.project(centres, w, h)  # (n, 3)
    f = camera.focal_pixels(w)
    disc = 1.15 * f * radii / pix[:, 2]  # projected radius of a bounding sphere, in pixels
    yy, xx = np.mgrid[0:h, 0:w]
    owner = np.full((h, w), -1)
    for k in np.argsort(-pix[:, 2]):  # far to near: nearer objects paint over
        owner[(xx - pix[k, 0]) ** 2 + (yy - pix[k, 1]) ** 2 <= disc[k] ** 2] = k
    out = np.empty(len(radii))
    for k in range(len(radii)):
        full = ((xx - pix[k, 0]) ** 2 + (yy - pix[k, 1]) ** 2 <= disc[k] ** 2).sum()
        out[k] = (owner == k).sum() / max(full, 1)
    return out


def _place(num, radii, rng):
    """x, y positions `(num, 2)` obeying the distance and margin rules, or None after MAX_TRIES draws."""
    dirs = np.stack([camera.DIRECTIONS["right"][:2], camera.DIRECTIONS["behind"][:2]])  # (2, 2)
    xy = np.zeros((num, 2))
    for k in range(num):
        for _ in range(MAX_TRIES):
            p = rng.uniform(-EXTENT, EXTENT, size=2)
            if k:
                d = xy[:k] - p
                gap = np.linalg.norm(d, axis=1) - radii[:k] - radii[k]
                along = np.abs(d @ dirs.T)  # (k, 2)
                if gap.min() < MIN_DIST or along.min() < MARGIN:
                    continue
            xy[k] = p
            break
        else:
            return None
    return xy


def relationships(coords):
    """CLEVR's `relationships`: for each relation, for each object i, the objects in that relation to i."""
    coords = np.asarray(coords, np.float64)
    out = {}
    for rel in RELATIONS:
        d = camera.DIRECTIONS[rel]
        dots = (coords[None, :, :] - coords[:, None, :]) @ d  # (i, j): (p_j - p_i) . d
        out[rel] = [[int(j) for j in np.flatnonzero(dots[i] > RELATION_EPS) if j != i] for i in range(len(coords))]
    return out


def sample_scene(rng, index=0, split="train", num_objects=None):
    """One scene dict in CLEVR's schema (`image_index`, `image_filename`, `split`, `objects`,
    `relationships`, `directions`)."""
    # the object count is drawn once; a failed layout restarts with the same count (as CLEVR does)
    n = int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1)) if num_objects is None else int(num_objects)
    while True:
        shape = rng.integers(0, len(SHAPES), n)
        color = rng.integers(0, len(COLORS), n)
        material = rng.integers(0, len(MATERIALS), n)
        size = rng.integers(0, len(SIZES), n)
        rotation = rng.uniform(0.0, 360.0, n)
        radii = np.array([SIZE_RADIUS[SIZES[s]] for s in size])
        # a cube (side 2r, any rotation) reaches r * sqrt(2) from its centre: space it by that
        reach = radii * np.where(shape == SHAPES.index("cube"), np.sqrt(2.0), 1.0)
        xy = _place(n, reach, rng)
        if xy is None or _visible_fractions(xy, reach).min() < MIN_VISIBLE:
            continue  # restart the layout, as CLEVR does
        coords = np.concatenate([xy, radii[:, None]], axis=1)  # (n, 3): objects rest on the plane
        pixels = camera.project(coords)
        objects = [
            {
                "shape": SHAPES[shape[k]],
                "color": COLORS[color[k]],
                "material": MATERIALS[material[k]],
                "size": SIZES[size[k]],
                "rotation": round(float(rotation[k]), 3),
                "3d_coords": [round(float(c), 4) for c in coords[k]],
                "pixel_coords": [int(round(pixels[k, 0])), int(round(pixels[k, 1])), round(float(pixels[k, 2]), 4)],
            }
            for k in range(n)
        ]
        return {
            "image_index": int(index),
            "image_filename": f"RELZOO_CLEVR_{split}_{int(index):06d}.png",
            "split": split,
            "objects": objects,
            "relationships": relationships(coords),
            "directions": camera.directions_json(),
        }


def generate_scenes(num_scenes, seed=0, split="train", start=0):
    """`num_scenes` scenes of a split; scene `i` depends only on (seed, split, start + i)."""
    if split not in SPLIT_IDS:
        raise ValueError(f"clevr scenes: split must be one of {sorted(SPLIT_IDS)}, got {split!r}.")
    return [sample_scene(np.random.default_rng([int(seed), SPLIT_IDS[split], 31, start + i]), start + i, split)
            for i in range(int(num_scenes))]

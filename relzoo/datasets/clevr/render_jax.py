"""`render.render_scene` in JAX: renders batches of CLEVR-format scenes on an accelerator.

The same ray caster as `render` (geometry, lights, materials, shadows, reflections, the
2.2-gamma encoding), restated for whole batches: every ray tests every object of its scene,
arrays have fixed shapes, and `jax.vmap` runs one compiled function over the scenes of a
chunk. Scenes are first packed into a compact table (`scene_table`), which is small enough
to save with `np.savez_compressed` and carry to another machine (13 bytes an object slot:
70,000 scenes of `generate_scenes` are 9.1 MB raw, about 4.3 MB compressed; measured on
10,000 scenes, 611 kB).

    table = scene_table(scenes)                     # dict of (N, MAX_OBJECTS) numpy arrays
    images = render_batch(table, 192, 128)          # uint8 (N, 128, 192, 3)

What is shared with `render`, and what is restated
- Constants (light directions and strengths, material and environment parameters, `BEVEL`,
  `_PANELS`, colours) are imported from `render`, and so is its numpy precomputation: the
  camera rays and the interleaved-gradient noise (`render._camera_rays`, float64), the key
  light's frame (`render._frame`). The jittered shadow-ray directions depend only on the
  pixel and the sample, so they are computed once per image size here in numpy float64,
  with the same expressions as `render._key_visibility`. The per-object quantities (cos and
  sin of the rotation, radii, albedo, tints) are computed on the host in numpy float64, as
  `render._Obj` does.
- The shading formulas (and the few numbers written inline in `render`'s functions, such as
  the 2e-4 ray offsets, the ground's fade distances or the tone curve's knee) are repeated
  in the jitted code below; `tests/test_render_jax.py` compares the two renderers pixel by
  pixel, so a change to `render` that is not made here fails those tests.
- `render` culls rays per object (screen boxes, bounding spheres and cones); culling is
  conservative there, so testing every ray against every object gives the same nearest
  hits. Its one non-conservative window, the +-(4r + reach) square of an object's contact
  shadow (`render._ground_ao`), is kept as a mask. Ties between objects go to the lower
  object index in both.

What differs: floating-point rounding only
- float64 (the default): the same operations in the same order, but XLA may fuse
  multiply-adds (GPUs do) and its sin/cos/exp/pow/arctan may differ from numpy's by an ulp.
  On the CPU (jax 0.10.2) every uint8 value of 104 scenes (`generate_scenes(96, seed=3)`
  and the tests' 8, at 192x128 and 48x32) came out identical to render's. Elsewhere expect a value on a rounding boundary off by one level here and
  there, and rarely a pixel whose ray grazes a silhouette or shadow edge within rounding.
- float32 (`dtype="float32"`): measured 99.975-99.986% of uint8 values identical, 99.999%
  within 2 levels, mean |diff| about 0.001; the rest are single pixels on silhouettes and
  penumbrae (there up to ~170 levels: the ray hits the other surface).
- `tests/test_render_jax.py` asserts, on scenes that cover every shape in both materials and
  sizes, rotations, partial occlusion, reflections and shadows, at 192x128 and 48x32:
  float64 >= 99.99% of values identical, mean |diff| < 0.005, <= 0.02% of pixels off by more
  than 2 levels; float32 >= 99.5% identical, >= 99.9% within 2, mean |diff| < 0.02, <= 0.2%
  of pixels off by more than 2.

Only `supersample=1` is supported (the dataset renders at 1 and resizes).

Cost: the dense form does more work than render's culled one (every pixel traces shadow and
reflection rays against every object slot, each tested as all three shapes), so on a CPU it
is slower than `render_scene` (2 shared cores: ~9 scenes/s float64, ~12 float32, against
~22 for render_scene on one core, at 192x128); it is meant for GPUs. Compiling takes ~6 s
per (size, shadow_samples, dtype, batch_size) on a CPU.

jax is a test dependency of relzoo, not a runtime one: it is imported inside the functions
that need it, and a missing jax raises an ImportError that says so. float64 rendering runs
inside JAX's scoped x64 switch (`jax.enable_x64(True)`, or `jax.experimental.enable_x64()`
on jax < 0.8), so jax's process-wide default dtype is left as it was (Keras may train in the
same process afterwards).

Public API: `scene_table`, `render_batch`; `SHADOW_SAMPLES`, `COORD_SCALE`, `ROTATION_SCALE`.
"""

import functools
from collections.abc import Mapping

import numpy as np

from relzoo.datasets.clevr import camera
from relzoo.datasets.clevr import render as R
from relzoo.datasets.clevr.scenes import COLORS, MATERIALS, MAX_OBJECTS, SHAPES, SIZE_RADIUS, SIZES

__all__ = ["scene_table", "render_batch", "SHADOW_SAMPLES", "COORD_SCALE", "ROTATION_SCALE"]

SHADOW_SAMPLES = R.SHADOW_SAMPLES
COORD_SCALE = 10_000  # table x, y: integer units of 1e-4 (scenes round 3d_coords to 4 decimals)
ROTATION_SCALE = 1_000  # table rotation: integer millidegrees (scenes round rotations to 3 decimals)
TABLE_KEYS = ("x", "y", "rotation", "shape", "size", "color", "material", "mask")

_CUBE, _SPHERE, _CYLINDER = SHAPES.index("cube"), SHAPES.index("sphere"), SHAPES.index("cylinder")
_METAL = MATERIALS.index("metal")


# --------------------------------------------------------------------------------------------
# jax, imported lazily


def _jax():
    try:
        import jax
    except ImportError as err:
        raise ImportError(
            "relzoo.datasets.clevr.render_jax needs jax, which relzoo lists as a test dependency only: "
            "install it (e.g. `pip install jax`, or `pip install 'jax[cuda12]'` for NVIDIA GPUs), or render "
            "with relzoo.datasets.clevr.render.render_scene.") from err
    return jax


def _x64_scope(enabled):
    """A context manager that turns JAX's 64-bit mode on (or off) in its scope only."""
    jax = _jax()
    state = getattr(jax, "enable_x64", None)  # jax >= 0.8: a config State, usable as a context manager
    if state is not None and callable(state):
        return state(bool(enabled))
    from jax import experimental  # jax < 0.8

    return experimental.enable_x64() if enabled else experimental.disable_x64()


# --------------------------------------------------------------------------------------------
# the scene table


def _code(names, value, what, i, k):
    try:
        return names.index(value)
    except ValueError:
        raise ValueError(f"scene_table: scene {i}, object {k}: unknown {what} {value!r} "
                         f"(expected one of {list(names)}).") from None


def _compact(values, scale, dtype):
    """`values` as integers of `1/scale` units in `dtype` when that is exact, else float64."""
    q = np.round(values * scale)
    info = np.iinfo(dtype)
    if (np.abs(q) <= info.max).all() and (q / scale == values).all():
        return q.astype(dtype)
    return values


def scene_table(scenes):
    """Packs scene dicts into fixed-shape numpy arrays for `render_batch`.

    Args:
      scenes: a sequence of scene dicts in CLEVR's schema (only `objects` is read: each
        object's `shape`, `size`, `color`, `material`, `rotation` (degrees, default 0) and
        `3d_coords` x, y), at most `scenes.MAX_OBJECTS` (10) objects each.

    Returns:
      a dict of numpy arrays, all `(N, MAX_OBJECTS)`, objects padded at the end:
        `x`, `y`: the object's `3d_coords[0]`, `[1]`; int16 in units of `1 / COORD_SCALE`
          (1e-4) when that is exact for every object (as for `generate_scenes`' coordinates,
          which are rounded to 4 decimals), else float64;
        `rotation`: degrees; int32 in units of `1 / ROTATION_SCALE` (millidegrees) when exact,
          else float64;
        `shape`, `size`, `color`, `material`: int8 indices into `scenes.SHAPES`, `SIZES`,
          `COLORS`, `MATERIALS`;
        `mask`: bool, True for real objects.
      Padding entries are 0 (a masked-off large gray rubber cube at the origin).
      The integer encoding decodes to exactly the float64 values of the scene dicts.

    Raises:
      ValueError: a scene with more than MAX_OBJECTS objects, an unknown attribute value, a
        non-finite coordinate, or a scene that is not a dict with `objects`.
    """
    scenes = list(scenes)
    n, kmax = len(scenes), MAX_OBJECTS
    codes = {key: np.zeros((n, kmax), np.int8) for key in ("shape", "size", "color", "material")}
    names = {"shape": SHAPES, "size": SIZES, "color": COLORS, "material": MATERIALS}
    xs, ys, rot = (np.zeros((n, kmax)) for _ in range(3))
    mask = np.zeros((n, kmax), bool)
    for i, scene in enumerate(scenes):
        if not isinstance(scene, dict) or "objects" not in scene:
            raise ValueError(f"scene_table: scene {i} is not a scene dict with 'objects' (got {type(scene).__name__}).")
        objs = scene["objects"]
        if len(objs) > kmax:
            raise ValueError(f"scene_table: scene {i} has {len(objs)} objects; at most {kmax} (scenes.MAX_OBJECTS).")
        for k, obj in enumerate(objs):
            for key, table in codes.items():
                table[i, k] = _code(names[key], obj[key], key, i, k)
            xs[i, k], ys[i, k] = float(obj["3d_coords"][0]), float(obj["3d_coords"][1])
            rot[i, k] = float(obj.get("rotation", 0.0))
            mask[i, k] = True
    if not (np.isfinite(xs).all() and np.isfinite(ys).all() and np.isfinite(rot).all()):
        raise ValueError("scene_table: 3d_coords and rotations must be finite.")
    out = {"x": _compact(xs, COORD_SCALE, np.int16), "y": _compact(ys, COORD_SCALE, np.int16),
           "rotation": _compact(rot, ROTATION_SCALE, np.int32)}
    out.update(codes)
    out["mask"] = mask
    return out


def _decode(table):
    """The table -> per-object float64 arrays (as `render._Obj` computes them) and codes."""
    if not isinstance(table, Mapping):
        raise ValueError(f"render_batch: expected a dict from scene_table, got {type(table).__name__}.")
    missing = [k for k in TABLE_KEYS if k not in table]
    if missing:
        raise ValueError(f"render_batch: the table lacks {missing} (make it with scene_table).")
    arrs = {k: np.asarray(table[k]) for k in TABLE_KEYS}
    shape0 = arrs["mask"].shape
    if len(shape0) != 2 or shape0[1] != MAX_OBJECTS or any(a.shape != shape0 for a in arrs.values()):
        raise ValueError("render_batch: every table array must be (N, MAX_OBJECTS="
                         f"{MAX_OBJECTS}); got {({k: a.shape for k, a in arrs.items()})}.")
    for key, names in (("shape", SHAPES), ("size", SIZES), ("color", COLORS), ("material", MATERIALS)):
        a = arrs[key]
        if a.dtype.kind not in "iu" or (a.size and (a.min() < 0 or a.max() >= len(names))):
            raise ValueError(f"render_batch: table[{key!r}] must hold integer codes in [0, {len(names)}).")

    def real(a, scale):
        return a / scale if a.dtype.kind in "iu" else a.astype(np.float64)

    shape = arrs["shape"].astype(np.int32)
    r = np.array([float(SIZE_RADIUS[s]) for s in SIZES])[arrs["size"]]
    th = np.radians(real(arrs["rotation"], ROTATION_SCALE))
    cube = shape == _CUBE
    albedo = np.stack([R._ALBEDO[c] for c in COLORS])[arrs["color"]]  # (N, K, 3)
    tint = albedo / np.maximum(albedo.max(-1, keepdims=True), 1e-6)  # as render._shade_objects
    reach = r * np.where(cube, np.sqrt(2.0), 1.0)
    obj = {
        "cx": real(arrs["x"], COORD_SCALE), "cy": real(arrs["y"], COORD_SCALE), "r": r,
        "cos": np.cos(th), "sin": np.sin(th),
        "rb": r - R.BEVEL * r,  # where the rounded edge starts (render._Obj.normal)
        "win": 4 * r + reach,  # half-width of the contact-shadow window (render._ground_ao)
        "aor": r * np.where(shape != _SPHERE, 1.15, 1.0),  # contact-shadow radius
        "albedo": albedo, "spec": 0.35 + 0.65 * tint, "base": albedo * R.METAL_GAIN,
        "shape": shape, "metal": arrs["material"] == _METAL, "mask": arrs["mask"].astype(bool),
    }
    return obj


# --------------------------------------------------------------------------------------------
# per-image-size constants (numpy float64, as render computes them)


@functools.lru_cache(maxsize=8)
def _pixel_constants(width, height, shadow_samples):
    """Camera ray directions `(P, 3)` and the shadow-ray directions `(S, P, 3)` of each pixel
    (P = height * width, row-major), float64; `render._key_visibility`'s expressions."""
    dirs, noise = R._camera_rays(width, height, 1)
    dirs, noise = dirs.reshape(-1, 3), noise.reshape(-1)
    samples = max(int(shadow_samples), 1)
    if samples == 1:
        return dirs, np.broadcast_to(R.KEY_DIR, (1,) + dirs.shape).copy()
    j = np.arange(samples)  # a Vogel spiral on the light's disc, rotated per pixel by the dither
    rad = np.sqrt((j + 0.5) / samples)
    ang = j * 2.399963229728653  # the golden angle, pi * (3 - sqrt(5)), as render writes it
    offsets = np.stack([rad * np.cos(ang), rad * np.sin(ang)], -1)
    t1, t2 = R._frame(R.KEY_DIR)
    rot = 2.0 * np.pi * noise
    cr, sr = np.cos(rot), np.sin(rot)
    out = []
    for u, v in offsets:
        uu = (u * cr - v * sr) * np.tan(R.LIGHT_ANGLE)
        vv = (u * sr + v * cr) * np.tan(R.LIGHT_ANGLE)
        d = R.KEY_DIR + uu[:, None] * t1 + vv[:, None] * t2
        out.append(d / np.linalg.norm(d, axis=-1, keepdims=True))
    return dirs, np.stack(out)


# --------------------------------------------------------------------------------------------
# the jitted renderer


@functools.lru_cache(maxsize=1)
def _renderer():
    """The jitted batch renderer: `(obj dict of (B, K[, 3]) arrays, dirs (P, 3), sdirs (S, P, 3))`
    -> uint8 `(B, P, 3)`. One compilation per (B, P, S, dtype, x64 mode)."""
    jax = _jax()
    import jax.numpy as jnp

    inf = jnp.inf
    eps = float(R._EPS)
    pos = tuple(float(c) for c in camera.POSITION)
    key, fill, rim = (tuple(float(c) for c in v) for v in (R.KEY_DIR, R.FILL_DIR, R.RIM_DIR))
    amb_g, amb_d = float(R.AMBIENT_GROUND), float(R.AMBIENT_SKY - R.AMBIENT_GROUND)
    panels = [tuple(float(v) for v in p) for p in R._PANELS]
    lift = tuple(2e-4 * c for c in R.KEY_DIR)  # render: p + 2e-4 * KEY_DIR
    lift = tuple(float(c) for c in lift)

    def dot(a, b):
        return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]

    def hits(ob, o, d, skip=None):
        """Hit distances `(K, P)` of rays `o + t d` (tuples of `(P,)` arrays or floats) with
        every object of the scene; inf on a miss, a masked object or the ray's own object."""
        ox, oy, oz = o
        dx, dy, dz = d
        r = ob["r"][:, None]
        qx, qy, qz = ox - ob["cx"][:, None], oy - ob["cy"][:, None], oz - r
        # sphere (render._Obj.intersect)
        b = qx * dx + qy * dy + qz * dz
        cc = qx * qx + qy * qy + qz * qz - r * r
        disc = b * b - cc
        t = -b - jnp.sqrt(jnp.maximum(disc, 0.0))
        t_sph = jnp.where((disc >= 0) & (t > eps), t, inf)
        # cylinder: the side, then the cap facing the ray (render's own function)
        t_cyl = R.cylinder_hits(qx, qy, qz, dx, dy, dz, r, xp=jnp)
        # cube: slabs in the object's frame
        cs, sn = ob["cos"][:, None], ob["sin"][:, None]
        qlx, qly = cs * qx + sn * qy, -sn * qx + cs * qy
        dlx, dly = cs * dx + sn * dy, -sn * dx + cs * dy
        tmin = tmax = None
        for ql, dl in ((qlx, dlx), (qly, dly), (qz, dz)):
            t1, t2 = (-r - ql) / dl, (r - ql) / dl
            lo, hi = jnp.minimum(t1, t2), jnp.maximum(t1, t2)
            tmin = lo if tmin is None else jnp.maximum(tmin, lo)
            tmax = hi if tmax is None else jnp.minimum(tmax, hi)
        t_cub = jnp.where((tmax >= tmin) & (tmin > eps), tmin, inf)
        shape = ob["shape"][:, None]
        t = jnp.where(shape == _CUBE, t_cub, jnp.where(shape == _SPHERE, t_sph, t_cyl))
        ok = ob["mask"][:, None]
        if skip is not None:
            ok = ok & (jnp.arange(ok.shape[0])[:, None] != skip[None, :])
        return jnp.where(ok, t, inf)

    def nearest(ob, o, d, skip=None):
        t = hits(ob, o, d, skip)
        tmin = t.min(0)
        ids = jnp.where(jnp.isfinite(tmin), jnp.argmin(t, 0), -1)  # ties: the lower index, as render
        return tmin, ids

    def gather(ob, ids):
        i = jnp.maximum(ids, 0)
        return {k: v[i] for k, v in ob.items()}

    def normal(g, p):
        """Unit normals (tuple of `(P,)`) at points `p` on objects `g` (gathered per pixel)."""
        r, rb = g["r"], g["rb"]
        qx, qy, qz = p[0] - g["cx"], p[1] - g["cy"], p[2] - r
        sph = (qx / r, qy / r, qz / r)  # render returns q / r for spheres, unnormalised
        rho = jnp.sqrt(qx ** 2 + qy ** 2)
        u = jnp.maximum(rho - rb, 0.0) ** 2 / jnp.maximum(rho, 1e-9)
        w = jnp.maximum(jnp.abs(qz) - rb, 0.0) ** 2 * jnp.sign(qz)
        cyl = (u * qx, u * qy, w)
        cs, sn = g["cos"], g["sin"]
        qlx, qly = cs * qx + sn * qy, -sn * qx + cs * qy
        mx = jnp.maximum(jnp.abs(qlx) - rb, 0.0) ** 2 * jnp.sign(qlx)
        my = jnp.maximum(jnp.abs(qly) - rb, 0.0) ** 2 * jnp.sign(qly)
        mz = jnp.maximum(jnp.abs(qz) - rb, 0.0) ** 2 * jnp.sign(qz)
        cub = (cs * mx - sn * my, sn * mx + cs * my, mz)
        is_cube = g["shape"] == _CUBE
        n = tuple(jnp.where(is_cube, c1, c2) for c1, c2 in zip(cub, cyl))
        norm = jnp.maximum(jnp.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]), 1e-12)
        n = tuple(c / norm for c in n)
        is_sph = g["shape"] == _SPHERE
        return tuple(jnp.where(is_sph, c1, c2) for c1, c2 in zip(sph, n))

    def key_visibility(ob, p, own, sdirs):
        """Fraction `(P,)` of the key light seen from points `p`; `sdirs` `(S, P, 3)` or a
        list of direction tuples."""
        o = (p[0] + lift[0], p[1] + lift[1], p[2] + lift[2])
        lit = 0.0
        for d in sdirs:
            blocked = jnp.isfinite(hits(ob, o, d, own)).any(0)
            lit = lit + (~blocked).astype(p[0].dtype)
        return lit / len(sdirs)

    def ground_ao(ob, p):
        vis = jnp.ones_like(p[0])
        for k in range(ob["r"].shape[0]):  # sequential products, in object order, as render
            cx, cy, r = ob["cx"][k], ob["cy"][k], ob["r"][k]
            near = (jnp.abs(p[0] - cx) < ob["win"][k]) & (jnp.abs(p[1] - cy) < ob["win"][k]) & ob["mask"][k]
            qx, qy = p[0] - cx, p[1] - cy
            cs, sn = ob["cos"][k], ob["sin"][k]
            ex = jnp.maximum(jnp.abs(cs * qx + sn * qy) - r, 0.0)
            ey = jnp.maximum(jnp.abs(-sn * qx + cs * qy) - r, 0.0)
            e = jnp.where(ob["shape"][k] == _CUBE, jnp.sqrt(ex * ex + ey * ey),
                          jnp.maximum(jnp.sqrt(qx * qx + qy * qy) - r, 0.0))
            rr = ob["aor"][k]
            occ = (rr / jnp.sqrt((e + rr) ** 2 + rr * rr)) ** 3.0
            vis = jnp.where(near, vis * (1.0 - R.AO_STRENGTH * occ), vis)
        return vis

    def ground_color(p, dist, key_vis, ao):
        r2 = (p[0] ** 2 + p[1] ** 2) / 49.0
        albedo = R.GROUND_ALBEDO * (1.0 + 0.10 * jnp.exp(-r2))
        irr = float(R.KEY * R.KEY_DIR[2]) * key_vis + float(R.AMBIENT_SKY + R.FILL * R.FILL_DIR[2]) * ao
        col = albedo * irr
        fade = jnp.clip((dist - 13.0) / 22.0, 0.0, 1.0) ** 1.5
        return col * (1.0 - fade) + R.BACKDROP * fade

    def environment_ground(z):
        down = jnp.clip(-z, 0.0, 1.0)
        return R.ENV_GROUND_NEAR + (R.ENV_GROUND_FAR - R.ENV_GROUND_NEAR) * (1.0 - down) ** 4.0

    def environment(d):
        z = d[2]
        up = jnp.clip(z, 0.0, 1.0)
        sky = R.ENV_SKY * (0.85 + 0.15 * jnp.sqrt(up))
        ground = environment_ground(z)
        w = jnp.clip(0.5 + z / 0.08, 0.0, 1.0)
        env = w * sky + (1.0 - w) * ground
        az = jnp.arctan2(d[1], d[0])
        el = jnp.arcsin(jnp.clip(z, -1.0, 1.0))
        for paz, pel, saz, sel, rad in panels:
            x = az - paz
            daz = jnp.arctan2(jnp.sin(x), jnp.cos(x))  # np.angle(np.exp(1j * x))
            q2 = (daz / saz) ** 2 + ((el - pel) / sel) ** 2
            core = jnp.clip((1.0 - q2) / 0.25, 0.0, 1.0)
            env = env + rad * (0.6 * core + 0.4 * jnp.exp(-q2))
        return env

    def simple_radiance(ob, o, d, own):
        """Radiance `(3 of (P,))` along reflection rays (render._simple_radiance)."""
        t, ids = nearest(ob, o, d, own)
        env = environment(d)
        g = jnp.isinf(t) & (d[2] < 0)
        tg = -o[2] / d[2]
        pg = (o[0] + tg * d[0], o[1] + tg * d[1], o[2] + tg * d[2])
        dist = jnp.sqrt((pg[0] - pos[0]) ** 2 + (pg[1] - pos[1]) ** 2 + (pg[2] - pos[2]) ** 2)
        none = jnp.full(t.shape, -1)
        kv = key_visibility(ob, pg, none, [key])
        gcol = ground_color(pg, dist, kv, ground_ao(ob, pg))
        gcol = gcol * (1.0 - 0.85 * jnp.exp(-tg / 0.8))
        env = jnp.where(g, R.REFLECT_GROUND * gcol + (env - environment_ground(d[2])), env)
        hit = jnp.isfinite(t)
        th = jnp.where(hit, t, 0.0)
        gi = gather(ob, ids)
        n = normal(gi, (o[0] + th * d[0], o[1] + th * d[1], o[2] + th * d[2]))
        irr = (R.KEY * jnp.maximum(dot(n, key), 0.0) + R.FILL * jnp.maximum(dot(n, fill), 0.0)
               + amb_g + amb_d * (0.5 + 0.5 * n[2]))
        return tuple(jnp.where(hit, gi["albedo"][:, c] * irr, env) for c in range(3))

    def scene(ob, dirs, sdirs):
        """One scene: object arrays `(K,)` / `(K, 3)` -> uint8 `(P, 3)`."""
        d = (dirs[:, 0], dirs[:, 1], dirs[:, 2])
        sd = [(s[:, 0], s[:, 1], s[:, 2]) for s in sdirs]
        t, ids = nearest(ob, pos, d)
        hit = ids >= 0
        ground = ~hit & (d[2] < 0)
        tg = -pos[2] / d[2]
        th = jnp.where(hit, t, tg)  # the surface each ray ends on: its object, else the ground
        p = tuple(pos[c] + th * d[c] for c in range(3))
        vis = key_visibility(ob, p, ids, sd)
        gcol = ground_color(p, tg, vis, ground_ao(ob, p))
        # objects (render._shade_objects)
        g = gather(ob, ids)
        n = normal(g, p)
        v = (-d[0], -d[1], -d[2])
        ndl = jnp.maximum(dot(n, key), 0.0)
        irr = (R.KEY * ndl * vis + R.FILL * jnp.maximum(dot(n, fill), 0.0) + R.RIM * jnp.maximum(dot(n, rim), 0.0)
               + amb_g + amb_d * (0.5 + 0.5 * n[2]))

        def blinn(ldir, shine):
            h = (ldir[0] + v[0], ldir[1] + v[1], ldir[2] + v[2])
            hn = jnp.sqrt(h[0] * h[0] + h[1] * h[1] + h[2] * h[2])
            h = tuple(c / hn for c in h)
            return jnp.maximum(dot(n, h), 0.0) ** float(shine) * (dot(n, ldir) > 0)

        spec = 0.10 * R.KEY * blinn(key, R.RUBBER_SHINE) * vis
        rubber = tuple(g["albedo"][:, c] * irr + spec for c in range(3))
        nv = dot(n, v)
        refl = tuple(2.0 * nv * n[c] - v[c] for c in range(3))
        env = simple_radiance(ob, tuple(p[c] + 2e-4 * n[c] for c in range(3)), refl, ids)
        cos = jnp.clip(nv, 0.0, 1.0)
        fres = R.METAL_F0 + (1.0 - R.METAL_F0) * (1.0 - cos) ** 5.0
        graze = (1.0 - cos) ** 5.0
        hl = (R.KEY * 5.0 * blinn(key, R.METAL_SHINE) * vis + R.FILL * 4.0 * blinn(fill, R.METAL_SHINE))
        metal = []
        for c in range(3):
            a, sc, base = g["albedo"][:, c], g["spec"][:, c], g["base"][:, c]
            refl_col = base + (sc - base) * graze
            metal.append(a * irr * R.METAL_DIFFUSE + fres * env[c] * refl_col + hl * sc)
        lin = jnp.stack([jnp.where(hit, jnp.where(g["metal"], metal[c], rubber[c]),
                                   jnp.where(ground, gcol, R.BACKDROP)) for c in range(3)], -1)
        return encode(lin)

    def encode(lin):
        x = jnp.maximum(lin, 0.0)
        m = x.max(-1, keepdims=True)
        knee = 0.8
        scale = jnp.where(m > knee, (knee + (1.0 - knee) * jnp.tanh((m - knee) / (1.0 - knee))) / jnp.maximum(m, 1e-9),
                          1.0)
        y = x * scale
        y = y + (1.0 - y) * jnp.clip((m - 1.2) / 3.0, 0.0, 0.9)
        return jnp.clip(jnp.round(255.0 * y ** (1.0 / R.GAMMA)), 0, 255).astype(jnp.uint8)

    def batch(ob, dirs, sdirs):
        return jax.vmap(scene, in_axes=(0, None, None))(ob, dirs, sdirs)

    return jax.jit(batch)


# --------------------------------------------------------------------------------------------
# public API


def render_batch(table, width, height, shadow_samples=SHADOW_SAMPLES, dtype="float64", batch_size=None,
                 supersample=1):
    """Renders the scenes of a table as `render.render_scene(scene, width, height)` would.

    Args:
      table: a dict from `scene_table`, or what `np.load` gives back for one saved with
        `np.savez_compressed(path, **table)`, or a sequence of scene dicts (packed here).
      width, height: image size in pixels (the dataset uses `dataset.render_size`, 192x128).
      shadow_samples: jittered shadow rays per pixel toward the key light, as in render.
      dtype: "float64" (default: agrees with render to rounding; runs under JAX's scoped x64
        switch, which is restored on return) or "float32" (faster, see the module docstring;
        it runs with x64 switched off in its scope, so it stays float32 even where the
        process enabled x64).
      batch_size: scenes per compiled call; the last chunk is padded with empty scenes, so one
        compilation serves any N. Default 8 on the CPU backend, 128 on accelerators (memory
        grows about as batch_size * 10 objects * height * width * 8 bytes for each live array).
      supersample: only 1 is supported.

    Returns:
      uint8 numpy array `(N, height, width, 3)`, RGB.

    The first call for a given (size, shadow_samples, dtype, batch_size) compiles (seconds).
    """
    k = int(supersample)
    if k != 1:
        raise ValueError(f"render_batch: only supersample=1 is supported (got {supersample!r}); "
                         "use render.render_scene for supersampled images.")
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"render_batch: dtype must be float32 or float64, got {dtype!r}.")
    width, height = int(width), int(height)
    if width < 1 or height < 1:
        raise ValueError(f"render_batch: width and height must be positive, got {width}x{height}.")
    if not isinstance(table, Mapping):  # a dict, or np.load of an np.savez'd table
        table = scene_table(table)
    obj = _decode(table)
    n = obj["mask"].shape[0]
    out = np.empty((n, height, width, 3), np.uint8)
    if n == 0:
        return out
    jax = _jax()
    if batch_size is None:
        batch_size = 8 if jax.default_backend() == "cpu" else 128
    bs = int(batch_size)
    if bs < 1:
        raise ValueError(f"render_batch: batch_size must be >= 1, got {batch_size!r}.")
    dirs, sdirs = _pixel_constants(width, height, max(int(shadow_samples), 1))
    floats = {k for k, v in obj.items() if v.dtype == np.float64}

    def chunk(start):
        stop = min(start + bs, n)
        part = {}
        for key, v in obj.items():
            c = v[start:stop]
            if stop - start < bs:  # pad with masked-off copies of the chunk's last scene
                fill = np.zeros_like(c[-1:]) if key == "mask" else c[-1:]
                c = np.concatenate([c, np.repeat(fill, bs - (stop - start), axis=0)])
            part[key] = c.astype(dt) if key in floats else c
        return part, stop

    with _x64_scope(dt == np.float64):
        fn = _renderer()
        dirs_d, sdirs_d = jax.device_put(dirs.astype(dt)), jax.device_put(sdirs.astype(dt))
        pending = []
        for start in range(0, n, bs):
            part, stop = chunk(start)
            pending.append((start, stop, fn(part, dirs_d, sdirs_d)))  # dispatched asynchronously
            if len(pending) > 2:
                s0, s1, res = pending.pop(0)
                out[s0:s1] = np.asarray(res)[: s1 - s0].reshape(s1 - s0, height, width, 3)
        for s0, s1, res in pending:
            out[s0:s1] = np.asarray(res)[: s1 - s0].reshape(s1 - s0, height, width, 3)
    return out

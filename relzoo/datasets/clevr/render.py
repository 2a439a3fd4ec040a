"""A small numpy ray caster that draws CLEVR-format scenes the way CLEVR's Blender renders look.

Every pixel casts one ray (or `supersample**2` rays) from `camera.POSITION` through the
same pinhole model that `camera.project` uses, so an object's `pixel_coords` (scaled by
`width / 480`, `height / 320`) fall on that object in the image. Pixel `(row, col)` samples
the image point `x = col, y = row` of `camera.project`'s convention (pixel centres at
integer coordinates), so a rounded `pixel_coords` names the nearest pixel.

What is modelled
- Geometry, intersected analytically and exactly: the ground plane z = 0 (infinite);
  spheres (radius r, centre at z = r); upright cylinders (radius r, height 2r, flat caps);
  cubes (side 2r, turned by `rotation` degrees about z, counter-clockwise seen from above,
  resting on the plane). r is `scenes.SIZE_RADIUS[size]` (0.7 large, 0.35 small); the
  centre is `(x, y, r)` from `3d_coords`. The nearest hit wins, so occlusion is exact.
  Rays are culled per object (a screen-space box for camera rays, a bounding sphere or
  cone for the others), so the cost is per pixel plus per object's footprint.
- Lights: a key light from above-left-front (as seen from the camera, 55 degrees up) that
  casts shadows on the ground and on other objects; it has an angular radius of 5 degrees,
  sampled by `shadow_samples` jittered shadow rays per ray (a Vogel spiral rotated per pixel
  by interleaved gradient noise: deterministic), so penumbrae are soft. A fill light from
  the right-front and a rim light from behind (no shadows); a sky/ground hemisphere ambient
  term; analytic ambient occlusion of the ground around each footprint (contact shadows).
- Materials: `rubber` is Lambertian with a weak, broad Blinn-Phong lobe (exponent 12).
  `metal` is a coloured mirror: a Schlick-Fresnel weighted reflection (traced once against
  the other objects and the ground, else a studio environment: a bright sky, a darker
  ground, soft "softbox" panels where the lights are) tinted by the object's colour, a
  little diffuse, and sharp bright Blinn-Phong highlights (exponent 200) of key and fill.
  Colours are CLEVR's RGB values (`COLOR_RGB`), lit in linear light and written back with a
  2.2 gamma; bright values roll off by their largest channel (hue kept), highlights bleach
  toward white.
- Cube and cylinder edges are shaded as if rounded (`BEVEL`, like CLEVR's bevelled models);
  silhouettes stay exact.
- Background: a neutral gray ground, slightly brighter around the scene's centre, fading
  with distance into a light-gray backdrop, as in CLEVR's images.

What is simplified (against CLEVR's Blender/Cycles renders)
- No global illumination: inter-reflection of diffuse light, colour bleeding and soft
  area-light shading are approximated by the ambient, fill and occlusion terms.
- Reflections are one bounce; reflected objects are diffuse-lit without shadows or
  highlights; the reflected ground darkens near its mirror point more than physics would
  (so metal faces visibly darken toward their base). The studio environment is stylised.
- No refraction, depth of field, camera or light jitter (CLEVR jitters both per image),
  and the backdrop is an infinite plane.
- Cubes have side 2r as `scenes` places them (CLEVR itself shrinks cubes to side 2r/sqrt(2)).
- With `supersample=1` edges alias and the penumbra is dithered at the pixel level.

Public API: `render_scene`, `object_ids`, `render_grid`; `COLOR_RGB`.
"""

import functools

import numpy as np

from relzoo.datasets.clevr import camera
from relzoo.datasets.clevr.scenes import SIZE_RADIUS

__all__ = ["COLOR_RGB", "render_scene", "object_ids", "render_grid"]

COLOR_RGB = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}

GAMMA = 2.2
SHADOW_SAMPLES = 4  # jittered shadow rays per pixel toward the key light
LIGHT_ANGLE = np.radians(5.0)  # angular radius of the key light (shadow softness)
_EPS = 1e-4
_FRONT = -camera.BEHIND  # toward the camera, on the ground plane


def _unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


# Directions toward the lights (world, z up). Key: above-left-front; fill: right-front; rim: behind.
KEY_DIR = _unit(-0.55 * camera.RIGHT + 0.35 * _FRONT + np.array([0.0, 0.0, 1.0]) * 0.95)
FILL_DIR = _unit(0.75 * camera.RIGHT + 0.45 * _FRONT + np.array([0.0, 0.0, 0.6]))
RIM_DIR = _unit(0.2 * camera.RIGHT - 1.0 * _FRONT + np.array([0.0, 0.0, 0.8]))
KEY, FILL, RIM = 1.25, 0.30, 0.25  # radiance scale of each light
AMBIENT_SKY, AMBIENT_GROUND = 0.30, 0.14  # hemisphere ambient, from above / from below
GROUND_ALBEDO = 0.30
BACKDROP = 0.48  # linear value of the far backdrop the ground fades into
AO_STRENGTH = 0.75
METAL_SHINE = 200.0  # Blinn-Phong exponent of metal highlights
METAL_F0, METAL_GAIN, METAL_DIFFUSE = 0.85, 1.9, 0.10  # Fresnel at normal incidence, mirror tint gain, diffuse share
RUBBER_SHINE = 12.0  # Blinn-Phong exponent of rubber's weak sheen
BEVEL = 0.16  # rounded-edge radius of cubes and cylinders, as a fraction of r (shading only)


def _linear(rgb):
    return (np.asarray(rgb, np.float64) / 255.0) ** GAMMA


_ALBEDO = {k: _linear(v) for k, v in COLOR_RGB.items()}


# --------------------------------------------------------------------------------------------
# camera rays


@functools.lru_cache(maxsize=8)
def _camera_rays(width, height, supersample):
    """Unit ray directions `(height*k, width*k, 3)` and per-sample dither `(height*k, width*k)`.

    Sub-sample `s` of pixel `i` looks at image coordinate `i + (s + 0.5) / k - 0.5`, so the
    average over a pixel's samples is centred on the pixel's integer coordinate.
    """
    k = int(supersample)
    f = camera.focal_pixels(width)
    fy = f * (height / (width * camera.HEIGHT / camera.WIDTH))
    xs = (np.arange(width * k) + 0.5) / k - 0.5  # image x of each sample column
    ys = (np.arange(height * k) + 0.5) / k - 0.5
    a = (xs - width / 2.0) / f  # right / depth
    b = -(ys - height / 2.0) / fy  # up / depth
    d = (camera.FORWARD[None, None, :] + a[None, :, None] * camera.RIGHT[None, None, :]
         + b[:, None, None] * camera.UP[None, None, :])  # (H, W, 3)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    # interleaved gradient noise: a deterministic, well-spread per-sample rotation for shadow rays
    jj, ii = np.meshgrid(np.arange(width * k), np.arange(height * k))
    noise = np.modf(52.9829189 * np.modf(0.06711056 * jj + 0.00583715 * ii)[0])[0]
    d.setflags(write=False)
    noise.setflags(write=False)
    return d, noise


def _sample_index(x, k):
    """Image coordinate(s) -> sample index along one axis (inverse of `_camera_rays`' grid)."""
    return (np.asarray(x) + 0.5) * k - 0.5


# --------------------------------------------------------------------------------------------
# objects and intersections


def cylinder_hits(qx, qy, qz, dx, dy, dz, r, xp=np):
    """Nearest hit distances of rays `q + t d` (relative to the centre of an upright cylinder of
    radius and half-height `r`; components as arrays) with its side and the cap facing the ray;
    `inf` on a miss. `xp`: numpy, or `jax.numpy` for `render_jax`."""
    a = dx * dx + dy * dy
    b = qx * dx + qy * dy
    cc = qx * qx + qy * qy - r * r
    disc = b * b - a * cc
    ts = (-b - xp.sqrt(xp.maximum(disc, 0.0))) / a
    zs = qz + ts * dz
    ts = xp.where((disc >= 0) & (ts > _EPS) & (xp.abs(zs) <= r), ts, xp.inf)
    # the cap facing the ray: top (z = +r) for rays going down, bottom otherwise
    zc = xp.where(dz < 0, r, -r)
    tc = (zc - qz) / dz
    xc, yc = qx + tc * dx, qy + tc * dy
    tc = xp.where((tc > _EPS) & (xc * xc + yc * yc <= r * r), tc, xp.inf)
    return xp.minimum(ts, tc)


class _Obj:
    """One scene object prepared for ray casting."""

    def __init__(self, obj):
        self.shape = obj["shape"]
        self.metal = obj["material"] == "metal"
        self.r = r = float(SIZE_RADIUS[obj["size"]])
        x, y = float(obj["3d_coords"][0]), float(obj["3d_coords"][1])
        self.c = np.array([x, y, r])
        th = np.radians(float(obj.get("rotation", 0.0)))
        self.cos, self.sin = np.cos(th), np.sin(th)
        self.albedo = _ALBEDO[obj["color"]]
        # bounding sphere radius and the horizontal reach (for culling)
        self.bound = r * {"sphere": 1.0, "cylinder": np.sqrt(2.0), "cube": np.sqrt(3.0)}[self.shape]
        self.reach = r * (np.sqrt(2.0) if self.shape == "cube" else 1.0)

    def to_local(self, v):
        """World vectors `(..., 3)` -> the object's frame (rotation about z undone)."""
        return np.stack([self.cos * v[..., 0] + self.sin * v[..., 1],
                         -self.sin * v[..., 0] + self.cos * v[..., 1], v[..., 2]], axis=-1)

    def to_world(self, v):
        return np.stack([self.cos * v[..., 0] - self.sin * v[..., 1],
                         self.sin * v[..., 0] + self.cos * v[..., 1], v[..., 2]], axis=-1)

    def corners(self):
        """The 8 corners `(8, 3)` of an axis-aligned box holding the object."""
        e = self.reach
        xs = self.c[0] + np.array([-e, e])
        ys = self.c[1] + np.array([-e, e])
        zs = np.array([0.0, 2.0 * self.r])
        return np.stack(np.meshgrid(xs, ys, zs, indexing="ij"), axis=-1).reshape(-1, 3)

    def intersect(self, o, d):
        """Nearest hit distance `(m,)` along rays `o + t d` (`o` `(3,)` or `(m, 3)`, `d` `(m, 3)`
        unit); `inf` where the ray misses. Only hits with t > eps from outside count."""
        r = self.r
        q = o - self.c
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.shape == "sphere":
                b = (q * d).sum(-1)
                cc = (q * q).sum(-1) - r * r
                disc = b * b - cc
                t = -b - np.sqrt(np.maximum(disc, 0.0))
                return np.where((disc >= 0) & (t > _EPS), t, np.inf)
            if self.shape == "cylinder":
                return cylinder_hits(q[..., 0], q[..., 1], q[..., 2], d[..., 0], d[..., 1], d[..., 2], r)
            # cube: slabs in the object's frame
            ql, dl = self.to_local(q), self.to_local(d)
            t1 = (-r - ql) / dl
            t2 = (r - ql) / dl
            tmin = np.minimum(t1, t2).max(-1)
            tmax = np.maximum(t1, t2).min(-1)
            return np.where((tmax >= tmin) & (tmin > _EPS), tmin, np.inf)

    def normal(self, p):
        """Outward unit normals `(m, 3)` at surface points `p` `(m, 3)`.

        Cubes and cylinders are shaded as if their edges were rounded with radius `BEVEL * r`
        (as CLEVR's bevelled models are): the silhouette stays sharp, the normals turn over
        the last bit of each face, which catches a thin highlight along the edges."""
        r = self.r
        q = p - self.c
        if self.shape == "sphere":
            return q / r
        b = BEVEL * r
        if self.shape == "cylinder":
            rho = np.sqrt(q[:, 0] ** 2 + q[:, 1] ** 2)
            u = np.maximum(rho - (r - b), 0.0) ** 2 / np.maximum(rho, 1e-9)
            w = np.maximum(np.abs(q[:, 2]) - (r - b), 0.0) ** 2 * np.sign(q[:, 2])
            n = np.stack([u * q[:, 0], u * q[:, 1], w], -1)
        else:  # squared depths into the bevel band: the normal turns smoothly across it
            ql = self.to_local(q)
            n = self.to_world(np.maximum(np.abs(ql) - (r - b), 0.0) ** 2 * np.sign(ql))
        return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)

    def cull(self, o, d, spread=0.0):
        """Boolean `(m,)`: rays (origins `o` `(m, 3)`, unit directions `d` `(3,)` or `(m, 3)`)
        that may hit the object; `spread` widens the test by that slope (a cone of rays)."""
        q = self.c - o
        b = (q * d).sum(-1)
        dist2 = (q * q).sum(-1) - b * b
        rad = self.bound + spread * np.maximum(b, 0.0) + 1e-6
        return (b > -self.bound) & (dist2 <= rad * rad)

    def footprint_distance(self, p):
        """Horizontal distance `(m,)` from ground points `p` `(m, 3)` to the object's footprint."""
        q = p[:, :2] - self.c[:2]
        if self.shape == "cube":
            ql = np.stack([self.cos * q[:, 0] + self.sin * q[:, 1], -self.sin * q[:, 0] + self.cos * q[:, 1]], -1)
            e = np.maximum(np.abs(ql) - self.r, 0.0)
            return np.sqrt((e * e).sum(-1))
        return np.maximum(np.sqrt((q * q).sum(-1)) - self.r, 0.0)


def _objects(scene):
    return [_Obj(o) for o in scene["objects"]]


def _nearest(objs, o, d, skip=None):
    """Nearest object hit along rays: `(t (m,), ids (m,))`, `ids` -1 where nothing is hit.

    `o` `(m, 3)`, `d` `(m, 3)`; `skip` `(m,)` gives an object id each ray ignores (its own:
    objects are convex, so a ray leaving a surface cannot hit the same object again)."""
    m = len(d)
    t = np.full(m, np.inf)
    ids = np.full(m, -1)
    for k, ob in enumerate(objs):
        sel = ob.cull(o, d)
        if skip is not None:
            sel &= skip != k
        sel = np.flatnonzero(sel)
        if not len(sel):
            continue
        tk = ob.intersect(o[sel], d[sel])
        better = tk < t[sel]
        t[sel[better]] = tk[better]
        ids[sel[better]] = k
    return t, ids


def _cast_primary(objs, width, height, k):
    """Primary rays: directions `(n, 3)`, hit distance `(n,)`, object id `(n,)` (-1: ground/sky),
    dither `(n,)`, with n = height*k * width*k in row-major order."""
    dirs, noise = _camera_rays(width, height, k)
    H, W = dirs.shape[:2]
    t = np.full((H, W), np.inf)
    ids = np.full((H, W), -1)
    for i, ob in enumerate(objs):
        px = camera.project(ob.corners(), width, height)  # (8, 3)
        if (px[:, 2] <= 0).any():  # behind the camera: test everything
            x0, x1, y0, y1 = 0, W, 0, H
        else:
            xs = _sample_index(px[:, 0], k)
            ys = _sample_index(px[:, 1], k)
            x0, x1 = max(int(np.floor(xs.min())) - 1, 0), min(int(np.ceil(xs.max())) + 2, W)
            y0, y1 = max(int(np.floor(ys.min())) - 1, 0), min(int(np.ceil(ys.max())) + 2, H)
        if x0 >= x1 or y0 >= y1:
            continue
        sub = dirs[y0:y1, x0:x1].reshape(-1, 3)
        ti = ob.intersect(camera.POSITION, sub).reshape(y1 - y0, x1 - x0)
        tt = t[y0:y1, x0:x1]
        better = ti < tt
        tt[better] = ti[better]
        ids[y0:y1, x0:x1][better] = i
    return dirs.reshape(-1, 3), t.reshape(-1), ids.reshape(-1), noise.reshape(-1)


# --------------------------------------------------------------------------------------------
# shading


def _frame(v):
    """Two unit vectors orthogonal to unit `v` `(3,)` and to each other."""
    a = np.array([1.0, 0.0, 0.0]) if abs(v[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    t1 = _unit(np.cross(v, a))
    return t1, np.cross(v, t1)


def _key_visibility(objs, p, ids, noise, samples):
    """Fraction `(m,)` of the key light visible from points `p` `(m, 3)` (ids: the object each
    point lies on, -1 for the ground), from `samples` jittered shadow rays per point."""
    m = len(p)
    if not m or not objs:
        return np.ones(m)
    samples = max(int(samples), 1)
    o = p + 2e-4 * KEY_DIR  # lift off the surface
    lit = np.zeros(m)
    if samples == 1:
        offsets = np.zeros((1, 2))
    else:  # a Vogel spiral on the light's disc, rotated per point by the dither
        j = np.arange(samples)
        rad = np.sqrt((j + 0.5) / samples)
        ang = j * 2.399963229728653
        offsets = np.stack([rad * np.cos(ang), rad * np.sin(ang)], -1)
    t1, t2 = _frame(KEY_DIR)
    rot = 2.0 * np.pi * noise  # (m,)
    cr, sr = np.cos(rot), np.sin(rot)
    # candidate occluders per point, once, with a cone as wide as the light
    spread = np.tan(LIGHT_ANGLE) * 1.05
    cand = []
    for k, ob in enumerate(objs):
        sel = ob.cull(o, KEY_DIR, spread) & (ids != k)
        cand.append(np.flatnonzero(sel))
    for u, v in offsets:
        if samples == 1:
            d = np.broadcast_to(KEY_DIR, (m, 3))
        else:
            uu = (u * cr - v * sr) * np.tan(LIGHT_ANGLE)
            vv = (u * sr + v * cr) * np.tan(LIGHT_ANGLE)
            d = KEY_DIR + uu[:, None] * t1 + vv[:, None] * t2
            d = d / np.linalg.norm(d, axis=-1, keepdims=True)
        blocked = np.zeros(m, bool)
        for ob, sel in zip(objs, cand):
            if len(sel):
                blocked[sel] |= np.isfinite(ob.intersect(o[sel], d[sel]))
        lit += ~blocked
    return lit / len(offsets)


def _ground_ao(objs, p):
    """Ambient visibility `(m,)` of ground points `p` `(m, 3)`: 1 in the open, less near objects."""
    vis = np.ones(len(p))
    for ob in objs:
        near = np.flatnonzero((np.abs(p[:, 0] - ob.c[0]) < 4 * ob.r + ob.reach)
                              & (np.abs(p[:, 1] - ob.c[1]) < 4 * ob.r + ob.reach))
        if not len(near):
            continue
        e = ob.footprint_distance(p[near])
        r = ob.r * (1.15 if ob.shape != "sphere" else 1.0)
        occ = (r / np.sqrt((e + r) ** 2 + r * r)) ** 3  # sphere-like: 1/2^1.5 at the footprint edge
        vis[near] *= 1.0 - AO_STRENGTH * occ
    return vis


def _ground_color(p, dist, key_vis, ao):
    """Linear gray radiance `(m,)` of ground points `p` `(m, 3)` at camera distance `dist` `(m,)`."""
    # a subtle gradient: a soft pool of light around the scene's centre, darker far away
    r2 = (p[:, 0] ** 2 + p[:, 1] ** 2) / 49.0
    albedo = GROUND_ALBEDO * (1.0 + 0.10 * np.exp(-r2))
    irr = KEY * KEY_DIR[2] * key_vis + (AMBIENT_SKY + FILL * FILL_DIR[2]) * ao
    col = albedo * irr
    fade = np.clip((dist - 13.0) / 22.0, 0.0, 1.0) ** 1.5  # into the backdrop
    return col * (1.0 - fade) + BACKDROP * fade


def _azimuth(v):
    return np.arctan2(v[..., 1], v[..., 0])


# The studio as metal surfaces see it: soft panels (the area lights' reflections), as
# (azimuth, elevation, azimuth width, elevation width, radiance), all angles in radians.
_PANELS = [
    (_azimuth(KEY_DIR), np.radians(5.0), 0.30, 0.75, 1.6),
    (_azimuth(FILL_DIR), np.radians(0.0), 0.25, 0.65, 0.8),
    (_azimuth(RIM_DIR), np.radians(10.0), 0.35, 0.60, 0.8),
]
ENV_SKY, ENV_GROUND_NEAR, ENV_GROUND_FAR = 1.0, 0.06, 0.30
REFLECT_GROUND = 0.7  # the traced ground in mirror reflections, relative to its direct look


def _environment_ground(d):
    """The untraced ground term of `_environment` `(m,)` (darker looking down)."""
    down = np.clip(-d[:, 2], 0.0, 1.0)
    return ENV_GROUND_NEAR + (ENV_GROUND_FAR - ENV_GROUND_NEAR) * (1.0 - down) ** 4


def _environment(d):
    """Radiance `(m,)` of the surroundings seen along directions `d` `(m, 3)` (for mirror
    reflections): a bright sky, a darker ground that brightens toward the horizon, and the
    soft panels of the lights."""
    z = d[:, 2]
    up = np.clip(z, 0.0, 1.0)
    sky = ENV_SKY * (0.85 + 0.15 * np.sqrt(up))
    ground = _environment_ground(d)
    w = np.clip(0.5 + z / 0.08, 0.0, 1.0)  # a soft horizon line
    env = w * sky + (1.0 - w) * ground
    az = _azimuth(d)
    el = np.arcsin(np.clip(z, -1.0, 1.0))
    for paz, pel, saz, sel, rad in _PANELS:
        daz = np.angle(np.exp(1j * (az - paz)))
        q2 = (daz / saz) ** 2 + ((el - pel) / sel) ** 2
        core = np.clip((1.0 - q2) / 0.25, 0.0, 1.0)  # a softbox with a crisp edge ...
        env = env + rad * (0.6 * core + 0.4 * np.exp(-q2))  # ... and a soft glow around it
    return env


def _simple_radiance(objs, o, d, skip):
    """Radiance `(m, 3)` seen along secondary rays (reflections): other objects diffuse-lit
    without shadows, else the environment."""
    t, ids = _nearest(objs, o, d, skip=skip)
    env = _environment(d)
    g = np.flatnonzero(np.isinf(t) & (d[:, 2] < 0))
    if len(g):  # the ground, as the camera would see it there (key shadows, contact shadows)
        tg = -o[g, 2] / d[g, 2]
        pg = o[g] + tg[:, None] * d[g]
        gcol = _ground_color(pg, np.linalg.norm(pg - camera.POSITION, axis=-1),
                             _key_visibility(objs, pg, np.full(len(g), -1), np.zeros(len(g)), 1),
                             _ground_ao(objs, pg))
        # nearby ground reads darker (exaggerated contact shadow), so mirror faces darken toward their base
        gcol = gcol * (1.0 - 0.85 * np.exp(-tg / 0.8))
        env[g] = REFLECT_GROUND * gcol + (env[g] - _environment_ground(d[g]))
    out = np.repeat(env[:, None], 3, axis=1)
    for k, ob in enumerate(objs):
        s = np.flatnonzero(ids == k)
        if not len(s):
            continue
        p = o[s] + t[s, None] * d[s]
        n = ob.normal(p)
        irr = (KEY * np.maximum(n @ KEY_DIR, 0.0) + FILL * np.maximum(n @ FILL_DIR, 0.0)
               + AMBIENT_GROUND + (AMBIENT_SKY - AMBIENT_GROUND) * (0.5 + 0.5 * n[:, 2]))
        out[s] = ob.albedo * irr[:, None]
    return out


def _shade_objects(objs, d, t, ids, noise, samples, out):
    """Writes linear radiance into `out` `(n, 3)` for the pixels whose ray hit an object."""
    hit = np.flatnonzero(ids >= 0)
    if not len(hit):
        return
    p = camera.POSITION + t[hit, None] * d[hit]
    n = np.empty_like(p)
    hid = ids[hit]
    for k, ob in enumerate(objs):
        s = hid == k
        if s.any():
            n[s] = ob.normal(p[s])
    v = -d[hit]  # toward the camera
    vis = _key_visibility(objs, p, hid, noise[hit], samples)
    ndl = np.maximum(n @ KEY_DIR, 0.0)
    irr = (KEY * ndl * vis + FILL * np.maximum(n @ FILL_DIR, 0.0) + RIM * np.maximum(n @ RIM_DIR, 0.0)
           + AMBIENT_GROUND + (AMBIENT_SKY - AMBIENT_GROUND) * (0.5 + 0.5 * n[:, 2]))
    albedo = np.stack([objs[k].albedo for k in range(len(objs))])[hid]  # (m, 3)
    metal = np.array([ob.metal for ob in objs])[hid]

    def blinn(ldir, shine):
        h = ldir + v
        h /= np.linalg.norm(h, axis=-1, keepdims=True)
        return np.maximum((n * h).sum(-1), 0.0) ** shine * (n @ ldir > 0)

    col = np.empty_like(p)
    rub = ~metal
    if rub.any():
        spec = 0.10 * KEY * blinn(KEY_DIR, RUBBER_SHINE)[rub] * vis[rub]
        col[rub] = albedo[rub] * irr[rub, None] + spec[:, None]
    if metal.any():
        mi = np.flatnonzero(metal)
        nm, vm = n[mi], v[mi]
        refl = 2.0 * (nm * vm).sum(-1, keepdims=True) * nm - vm  # mirror direction
        env = _simple_radiance(objs, p[mi] + 2e-4 * nm, refl, hid[mi])
        cos = np.clip((nm * vm).sum(-1), 0.0, 1.0)
        fres = METAL_F0 + (1.0 - METAL_F0) * (1.0 - cos) ** 5  # Schlick
        a = albedo[mi]
        tint = a / np.maximum(a.max(-1, keepdims=True), 1e-6)  # hue of the metal, max 1
        spec_col = 0.35 + 0.65 * tint  # highlights: the light's white, tinted
        base = a * METAL_GAIN  # coloured mirror reflectance (as Blender's tinted glossy)
        refl_col = base + (spec_col - base) * ((1.0 - cos) ** 5)[:, None]  # whiter at grazing
        hl = (KEY * 5.0 * blinn(KEY_DIR, METAL_SHINE)[mi] * vis[mi]
              + FILL * 4.0 * blinn(FILL_DIR, METAL_SHINE)[mi])
        col[mi] = (a * irr[mi, None] * METAL_DIFFUSE + fres[:, None] * env * refl_col
                   + hl[:, None] * spec_col)
    out[hit] = col


def _radiance(scene, width, height, k, shadow_samples):
    """Linear radiance `(height*k, width*k, 3)` and object ids `(height*k, width*k)`."""
    objs = _objects(scene)
    d, t, ids, noise = _cast_primary(objs, width, height, k)
    n = len(d)
    out = np.empty((n, 3))
    g = np.flatnonzero(ids < 0)
    down = d[g, 2] < 0
    gg, sky = g[down], g[~down]
    if len(sky):
        out[sky] = BACKDROP
    if len(gg):
        tg = -camera.POSITION[2] / d[gg, 2]
        p = camera.POSITION + tg[:, None] * d[gg]
        vis = _key_visibility(objs, p, np.full(len(gg), -1), noise[gg], shadow_samples)
        out[gg] = _ground_color(p, tg, vis, _ground_ao(objs, p))[:, None]
    _shade_objects(objs, d, t, ids, noise, shadow_samples, out)
    H, W = height * k, width * k
    return out.reshape(H, W, 3), ids.reshape(H, W)


def _encode(lin):
    """Linear radiance `(..., 3)` -> uint8 sRGB-like (gamma 2.2).

    Bright colours are rolled off by their largest channel (keeping their hue) and only
    very bright ones (highlights) bleach toward white."""
    x = np.maximum(lin, 0.0)
    m = x.max(-1, keepdims=True)
    knee = 0.8
    scale = np.where(m > knee, (knee + (1.0 - knee) * np.tanh((m - knee) / (1.0 - knee))) / np.maximum(m, 1e-9), 1.0)
    y = x * scale
    y = y + (1.0 - y) * np.clip((m - 1.2) / 3.0, 0.0, 0.9)
    return np.clip(np.round(255.0 * y ** (1.0 / GAMMA)), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# public API


def render_scene(scene, width=camera.WIDTH, height=camera.HEIGHT, supersample=1, shadow_samples=SHADOW_SAMPLES):
    """Renders a CLEVR-format scene as seen from `camera`'s fixed camera.

    Args:
      scene: a scene dict in CLEVR's schema (only `objects` is read: each object's `shape`,
        `color`, `material`, `size`, `rotation` and `3d_coords` x, y).
      width, height: image size in pixels; CLEVR's is 480 x 320. Object `i` appears at
        `pixel_coords[:2] * (width / 480, height / 320)`.
      supersample: k >= 1; casts k x k rays per pixel and averages them (anti-aliasing).
      shadow_samples: jittered shadow rays per ray toward the key light (1: hard shadows).

    Returns:
      uint8 array `(height, width, 3)`, RGB.

    Deterministic: the same arguments give the same bytes.
    """
    k, width, height = int(supersample), int(width), int(height)
    if k < 1:
        raise ValueError(f"render_scene: supersample must be >= 1, got {supersample!r}.")
    lin, _ = _radiance(scene, width, height, k, shadow_samples)
    if k > 1:
        lin = lin.reshape(height, k, width, k, 3).mean(axis=(1, 3))
    return _encode(lin)


def object_ids(scene, width=camera.WIDTH, height=camera.HEIGHT):
    """Which object each pixel shows, by the same ray casting as `render_scene` (one ray per pixel).

    Args:
      scene: a scene dict in CLEVR's schema.
      width, height: image size in pixels.

    Returns:
      int array `(height, width)`: the index into `scene["objects"]` of the nearest object hit
      by the pixel's ray, or -1 where the pixel shows the ground or the background.
    """
    objs = _objects(scene)
    _, _, ids, _ = _cast_primary(objs, int(width), int(height), 1)
    return ids.reshape(int(height), int(width))


def render_grid(scenes, cols=4, width=camera.WIDTH, height=camera.HEIGHT, supersample=1, captions=None,
                pad=6, background=(255, 255, 255)):
    """A grid of renders, e.g. for a README.

    Args:
      scenes: a sequence of scene dicts.
      cols: images per row.
      width, height, supersample: passed to `render_scene` for each image.
      captions: optional sequence of strings (one per scene, may contain newlines), written
        under each image.
      pad: pixels between images.
      background: RGB of the margins.

    Returns:
      a `PIL.Image.Image` (RGB) of `rows x cols` renders, rows = ceil(len(scenes) / cols).
    """
    from PIL import Image, ImageDraw, ImageFont

    scenes = list(scenes)
    if captions is not None and len(captions) != len(scenes):
        raise ValueError(f"render_grid: {len(captions)} captions for {len(scenes)} scenes.")
    cols = max(1, min(int(cols), len(scenes) or 1))
    rows = max(1, -(-len(scenes) // cols))
    font = None
    cap_h = 0
    if captions is not None:
        try:
            font = ImageFont.load_default(size=max(10, height // 22))
        except TypeError:  # Pillow < 10.1
            font = ImageFont.load_default()
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        lines = max(str(c).count("\n") + 1 for c in captions) if captions else 1
        line_h = probe.textbbox((0, 0), "Ag", font=font)[3] + 3
        cap_h = lines * line_h + 4
    cell_w, cell_h = width + pad, height + cap_h + pad
    grid = Image.new("RGB", (cols * cell_w + pad, rows * cell_h + pad), background)
    draw = ImageDraw.Draw(grid)
    for i, scene in enumerate(scenes):
        r, c = divmod(i, cols)
        x, y = pad + c * cell_w, pad + r * cell_h
        grid.paste(Image.fromarray(render_scene(scene, width, height, supersample)), (x, y))
        if captions is not None:
            draw.multiline_text((x + 2, y + height + 3), str(captions[i]), fill=(0, 0, 0), font=font, spacing=3)
    return grid

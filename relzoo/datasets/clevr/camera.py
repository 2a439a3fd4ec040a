"""The fixed camera of the CLEVR-format world, and the ground-plane directions it defines.

CLEVR renders 480x320 images with Blender from a camera about 11 units from the origin,
26 degrees above the ground plane, with a 35 mm lens on a 32 mm sensor (a horizontal
field of view of 49.1 degrees). We use one fixed camera of that geometry (CLEVR jitters
it slightly per image), looking at the origin. Its horizontal axes define the spatial
relations: "behind" is the camera's forward direction on the ground plane, "right" the
camera's right; both are unit vectors in world coordinates (z up).

`project(points)` maps world points `(..., 3)` to CLEVR's `pixel_coords` convention:
`(x, y, depth)` with x the column and y the row from the top-left corner of a
`width x height` image (default CLEVR's 480x320), and depth the distance along the
camera's viewing axis.
"""

import numpy as np

WIDTH, HEIGHT = 480, 320  # CLEVR's image size; pixel_coords refer to it
FOCAL_MM, SENSOR_MM = 35.0, 32.0
BEHIND = np.array([-0.754, 0.656, 0.0]) / np.linalg.norm([-0.754, 0.656, 0.0])
ELEVATION_DEG = 26.1
DISTANCE = 11.26
POSITION = np.concatenate([-BEHIND[:2] * DISTANCE * np.cos(np.radians(ELEVATION_DEG)),
                           [DISTANCE * np.sin(np.radians(ELEVATION_DEG))]])  # (3,), about (7.6, -6.6, 4.95)
FORWARD = -POSITION / np.linalg.norm(POSITION)  # looks at the origin
RIGHT = np.cross(FORWARD, [0.0, 0.0, 1.0])
RIGHT /= np.linalg.norm(RIGHT)
UP = np.cross(RIGHT, FORWARD)

DIRECTIONS = {
    "right": RIGHT.copy(),
    "left": -RIGHT,
    "front": -BEHIND,
    "behind": BEHIND.copy(),
    "above": np.array([0.0, 0.0, 1.0]),
    "below": np.array([0.0, 0.0, -1.0]),
}


def focal_pixels(width=WIDTH):
    """The focal length in pixels for an image `width` pixels wide (horizontal sensor fit)."""
    return width * FOCAL_MM / SENSOR_MM


def camera_coords(points):
    """World points `(..., 3)` -> camera coordinates `(..., 3)`: right, up, depth (forward)."""
    v = np.asarray(points, np.float64) - POSITION
    return np.stack([v @ RIGHT, v @ UP, v @ FORWARD], axis=-1)


def project(points, width=WIDTH, height=HEIGHT):
    """World points `(..., 3)` -> `(..., 3)` pixel x (column), y (row), depth, for a `width x height` image.

    The image keeps CLEVR's 3:2 field of view: `height` only sets the vertical scale, so
    `project(p, 480, 320)` and `project(p, 240, 160)` differ by a factor of 2.
    """
    c = camera_coords(points)
    f = focal_pixels(width)
    x = width / 2.0 + f * c[..., 0] / c[..., 2]
    y = height / 2.0 - f * (height / (width * HEIGHT / WIDTH)) * c[..., 1] / c[..., 2]
    return np.stack([x, y, c[..., 2]], axis=-1)


def directions_json():
    """The `directions` entry of a scene: name -> [x, y, z] rounded like CLEVR's files."""
    return {k: [round(float(a), 4) for a in v] for k, v in DIRECTIONS.items()}

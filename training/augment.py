"""Training-time image jitter for the pixel models: small random shifts and rotations.

The RN paper trains its CLEVR pixel model on images padded by 8 pixels, randomly cropped back
to 128 x 128 and rotated by up to 0.05 radians; public RN ports on CLEVR do the same. Spatial
relations (left, right, in front, behind) survive such small moves, so every answer stays true,
while the convolutions see a slightly different image each time they meet a scene: with a few
thousand rendered scenes, that is the difference between learning the objects and
memorising the images.

`jitter_images` does both in one resampling (bilinear; what falls outside the image is 0, as
with zero padding). It is numpy, for the trainer's scene-grouped batches; `training.device_feed`
does the same resampling inside the compiled training step (`ImageJitter`). Models and
evaluation never see either.
"""

import numpy as np


def jitter_images(images, rng, max_shift=0, max_rotation=0.0):
    """Each image moved by a random whole-pixel shift, then rotated about its centre.

    Args:
        images: float `(K, H, W, C)`.
        rng: a `numpy.random.Generator`; the draws are K shifts `(dy, dx)`, each uniform in
            `[-max_shift, max_shift]`, then K angles uniform in `[-max_rotation, max_rotation]`.
        max_shift: int >= 0, pixels.
        max_rotation: float >= 0, radians.

    Returns:
        float32 `(K, H, W, C)`. With `max_shift = max_rotation = 0`, the images unchanged;
        with no rotation, each image exactly shifted (the uncovered border is 0).

    Raises:
        ValueError: for images that are not `(K, H, W, C)` or negative limits.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"jitter_images expects images (K, H, W, C), got shape {images.shape}.")
    if not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
        raise ValueError(f"max_shift must be an integer >= 0 (pixels), got {max_shift!r}.")
    if not np.isfinite(max_rotation) or max_rotation < 0:
        raise ValueError(f"max_rotation must be a number >= 0 (radians), got {max_rotation!r}.")
    if max_shift == 0 and max_rotation == 0:
        return images
    shift, angle = jitter_draws(rng, len(images), max_shift, max_rotation)
    return apply_jitter(images, shift, angle)


def jitter_draws(rng, count, max_shift, max_rotation):
    """`jitter_images`' draws for `count` images: shifts `(count, 2)` float32 `(dy, dx)`, whole
    pixels uniform in `[-max_shift, max_shift]`, then angles `(count,)` float32 uniform in
    `[-max_rotation, max_rotation]` radians."""
    shift = rng.integers(-max_shift, max_shift + 1, size=(count, 2)).astype(np.float32)
    angle = rng.uniform(-max_rotation, max_rotation, size=count).astype(np.float32)
    return shift, angle


def jitter_sources(height, width, shift, angle, xp=np):
    """Where each output pixel of `apply_jitter` reads from: `(src_y, src_x)`, each `(K, H, W)`
    float32, for shifts `(K, 2)` and angles `(K,)` (numpy, or `xp=keras.ops` for tensors)."""
    cos, sin = xp.cos(angle)[:, None, None], xp.sin(angle)[:, None, None]
    cy, cx = np.float32((height - 1) / 2), np.float32((width - 1) / 2)
    y, x = np.meshgrid(np.arange(height, dtype=np.float32) - cy, np.arange(width, dtype=np.float32) - cx,
                       indexing="ij")
    # the inverse rotation, then the inverse shift
    src_y = cos * y - sin * x + cy - shift[:, 0, None, None]
    src_x = sin * y + cos * x + cx - shift[:, 1, None, None]
    return src_y, src_x


def apply_jitter(images, shift, angle):
    """Images `(K, H, W, C)` float32 moved by `shift` `(K, 2)` (dy, dx; pixels) and rotated
    about their centres by `angle` `(K,)` (radians), bilinear, 0 outside (numpy)."""
    images = np.asarray(images, np.float32)
    k, h, w, _ = images.shape
    src_y, src_x = jitter_sources(h, w, np.asarray(shift, np.float32), np.asarray(angle, np.float32))
    y0, x0 = np.floor(src_y), np.floor(src_x)
    fy, fx = src_y - y0, src_x - x0
    rows = np.arange(k)[:, None, None]
    out = np.zeros_like(images)
    for dy, dx, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yi, xi = (y0 + dy).astype(np.int64), (x0 + dx).astype(np.int64)
        inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        weight = np.where(inside, weight, 0).astype(np.float32)
        out += images[rows, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)] * weight[..., None]
    return out

"""Per-cell targets from CLEVR scene annotations."""

import numpy as np
import pytest

from relzoo.datasets.clevr import camera, cells, features
from relzoo.datasets.clevr import scenes as S


def _scene(*objects):
    """A scene dict with objects given as (x, y, depth, colour)."""
    return {"objects": [{"pixel_coords": [x, y, d], "3d_coords": [0.0, 0.0, 0.35], "color": c, "shape": "cube",
                         "material": "rubber", "size": "small"} for x, y, d, c in objects]}


def test_cells_hold_the_object_whose_centre_they_contain():
    scene = _scene((0, 0, 10.0, "red"), (camera.WIDTH - 1, camera.HEIGHT - 1, 10.0, "blue"),
                   (camera.WIDTH / 2, camera.HEIGHT / 4, 10.0, "gray"))
    index, hidden = cells.cell_objects([scene], grid=4)
    want = np.full((4, 4), -1)
    want[0, 0], want[3, 3], want[1, 2] = 0, 1, 2
    np.testing.assert_array_equal(index[0], want)
    assert hidden == 0 and index.dtype == np.int8


def test_a_shared_cell_goes_to_the_nearer_object():
    index, hidden = cells.cell_objects([_scene((10, 10, 12.0, "red"), (20, 12, 8.0, "blue"), (30, 5, 15.0, "gray"))],
                                       grid=2)
    assert index[0, 0, 0] == 1 and hidden == 2  # depth 8 is the nearest of the three


def test_targets_are_the_state_rows():
    generated = S.generate_scenes(20, seed=0, split="validation")
    index, hidden = cells.cell_objects(generated, grid=16)
    states = np.stack([features.scene_state(s)[0] for s in generated])
    targets = cells.cell_targets(index, states)
    assert targets.shape == (20, 16, 16, 1 + features.STATE_DIM) and hidden == 0
    counts = targets[..., 0].reshape(20, -1).sum(1)
    np.testing.assert_array_equal(counts, [len(s["objects"]) for s in generated])
    for s, scene in enumerate(generated):
        rows, cols = cells.object_cells(scene, 16)
        for k in range(len(scene["objects"])):
            np.testing.assert_array_equal(targets[s, rows[k], cols[k], 1:], states[s, k])
    assert np.all(targets[targets[..., 0] == 0] == 0)


def test_bad_input():
    with pytest.raises(ValueError, match="grid must be a positive int"):
        cells.cell_objects([_scene((1, 1, 1.0, "red"))], grid=0)
    with pytest.raises(ValueError, match=r"index \(S, g, g\) and states \(S, n, D\)"):
        cells.cell_targets(np.zeros((2, 4, 4), np.int8), np.zeros((3, 10, 18), np.float32))

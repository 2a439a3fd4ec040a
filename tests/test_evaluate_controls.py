"""The mismatched-scenes control of `relzoo evaluate` (relzoo.evaluate.mismatch_scenes)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from relzoo import artifacts, hub, presets
from relzoo.datasets.examples import Examples
from relzoo.evaluate import evaluate, mismatch_scenes

ROOT = Path(__file__).resolve().parent.parent


def _examples(num_scenes=7, per_scene=3, seed=0):
    rng = np.random.default_rng(seed)
    scene_index = rng.permutation(np.repeat(np.arange(num_scenes), per_scene))
    n = len(scene_index)
    return Examples(inputs={"question": rng.random((n, 4)).astype("float32")}, answers=rng.integers(0, 3, n),
                    scenes={"image": rng.integers(0, 256, (num_scenes, 2, 2, 3), dtype=np.uint8)},
                    scene_index=scene_index, scale={"image": 1 / 255}, groups={"type": (rng.integers(0, 2, n),
                                                                                        ("a", "b"))})


def test_every_question_gets_another_scene_and_nothing_else_changes():
    ex = _examples()
    swapped = mismatch_scenes(ex)
    assert np.all(swapped.scene_index != ex.scene_index)
    # one scene for another, the same for all questions about it, each scene used once
    mapping = {int(a): int(b) for a, b in zip(ex.scene_index, swapped.scene_index)}
    assert len(mapping) == 7 and sorted(mapping.values()) == list(range(7))
    assert swapped.answers is ex.answers and swapped.inputs is ex.inputs and swapped.groups is ex.groups
    np.testing.assert_array_equal(swapped.batch(slice(0, 5))["question"], ex.batch(slice(0, 5))["question"])
    np.testing.assert_array_equal(mismatch_scenes(ex).scene_index, swapped.scene_index)  # seeded
    assert not np.array_equal(mismatch_scenes(ex, seed=1).scene_index, swapped.scene_index)


def test_data_without_scenes_is_refused():
    ex = _examples()
    with pytest.raises(ValueError, match="share scene arrays"):
        mismatch_scenes(Examples(inputs=ex.inputs, answers=ex.answers))
    with pytest.raises(ValueError, match="at least 2 scenes"):
        mismatch_scenes(_examples(num_scenes=1))


@pytest.mark.slow
def test_a_published_model_loses_what_it_reads_from_the_scene():
    """rn_sort_of_clevr_state answers 'what shape is the red object?' from the scene: shown
    another scene, it falls to the level of a guess; its card's numbers stay what evaluate gives."""
    name = "rn_sort_of_clevr_state"
    card = artifacts.read_card(hub.artifact_dir(name))
    test = next(m["values"] for m in card["metrics"] if m["split"] == "test")
    plain = evaluate(name, split="test")
    assert plain["values"] == test
    control = evaluate(name, split="test", mismatched_scenes=True)
    assert control["control"] == "mismatched_scenes" and control["command"].endswith("--mismatched-scenes")
    assert control["num_examples"] == plain["num_examples"]
    assert control["values"]["accuracy/non-relational"] < 0.6 < test["accuracy/non-relational"]
    assert control["values"]["accuracy"] < test["accuracy"] - 0.2


@pytest.mark.slow
def test_cli_prints_the_control_and_refuses_it_with_check():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    run = lambda *a: subprocess.run([sys.executable, "-m", "relzoo.cli", *a], cwd=ROOT, capture_output=True,
                                    text=True, timeout=600, env=env)
    out = run("evaluate", "rn_sort_of_clevr_state", "--mismatched-scenes")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "each shown another question's scene" in out.stdout and "overall" in out.stdout
    out = run("evaluate", "rn_sort_of_clevr_state", "--mismatched-scenes", "--check")
    assert out.returncode == 1 and "no --mismatched-scenes numbers" in out.stderr
    out = run("evaluate", "rn_nearest_object", "--mismatched-scenes")
    assert out.returncode == 2 and "share scene arrays" in out.stderr

"""The public Sort-of-CLEVR generator's pickle: written, read back, drawn as OpenCV draws, refused when unsafe."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from relzoo.datasets import sort_of_clevr as soc
from relzoo.datasets import sort_of_clevr_public as public

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    train, test = soc.generate_scenes(3, seed=2, split="train"), soc.generate_scenes(4, seed=2, split="test")
    path = tmp_path_factory.mktemp("public") / "sort-of-clevr.pickle"
    public.write_pickle(path, train, test)
    return path, train, test


def test_the_file_has_the_public_layout(written):
    path, train, test = written
    with open(path, "rb") as f:
        data_train, data_test = pickle.load(f)
    assert len(data_train) == 3 and len(data_test) == 4
    image, ternary, binary, norel = data_test[1]
    assert image.shape == (75, 75, 3) and image.dtype == np.float64 and image.min() >= 0 and image.max() == 1.0
    for (questions, answers), t in zip((norel, binary, ternary), range(3)):
        assert len(questions) == len(answers) == 10 and all(q.shape == (18,) for q in questions)
        assert all(np.argmax(q[12:15]) == t for q in questions) and all(isinstance(a, int) for a in answers)
        np.testing.assert_array_equal(answers, test["answer"][1, 10 * t:10 * t + 10])
    red = tuple(np.round(image[tuple(test["centre"][1, 0][::-1])] * 255))  # rows y, columns x
    assert red == (0.0, 0.0, 255.0)  # BGR, as OpenCV stores red


def test_read_back_gives_the_scenes(written):
    path, train, test = written
    got_train, got_test = public.read_pickle(path)
    for got, want in ((got_train, train), (got_test, test)):
        for key in ("question", "answer", "kind"):
            np.testing.assert_array_equal(got[key], want[key])
    # the pixels are the public drawing's, in RGB: our image but for the circles' outline
    differ = (got_test["image"] != test["image"]).any(-1)
    circles = test["shape"] == 1
    assert 0.95 * 16 * circles.sum() <= differ.sum() <= 16 * circles.sum()  # 97 - 81 pixels a circle (less overlaps)
    np.testing.assert_array_equal(got_test["image"], soc.generate_scenes(4, seed=2, split="test", circles="opencv")
                                  ["image"])
    examples = public.pickle_examples(path, "test")
    assert len(examples) == 120 and examples.scenes["image"].shape == (4, 75, 75, 3)
    with pytest.raises(ValueError, match=r"the splits \('train', 'test'\); got 'validation'"):
        public.pickle_examples(path, "validation")


def test_the_disc_is_opencvs():
    want = np.array([[abs(dx) <= h for dx in range(-5, 6)] for h in (0, 3, 4, 4, 4, 5, 4, 4, 4, 3, 0)])
    np.testing.assert_array_equal(public.SPIKY_DISC, want)
    assert public.SPIKY_DISC.sum() == 81
    cv2 = pytest.importorskip("cv2")
    scenes = soc.generate_scenes(20, seed=4, split="test")
    ours = public.render(scenes["centre"], scenes["shape"])
    colours = [tuple(int(v) for v in c[::-1]) for c in soc.RGB]
    for i in range(20):
        image = np.ones((75, 75, 3)) * 255
        for k in range(6):
            x, y = (int(v) for v in scenes["centre"][i, k])
            if scenes["shape"][i, k] == 0:
                cv2.rectangle(image, (x - 5, y - 5), (x + 5, y + 5), colours[k], -1)
            else:
                cv2.circle(image, (x, y), 5, colours[k], -1)
        np.testing.assert_array_equal(ours[i], image / 255.0)


def test_the_oldest_format_reads(tmp_path):
    """(image, relational, non-relational) with 11-float questions: type [6:8], subtype [8:11]."""
    scenes = soc.generate_scenes(2, seed=1, split="test")
    images = public.render(scenes["centre"], scenes["shape"])

    def old(q):
        out = np.zeros(11)
        out[0:6], out[6:8], out[8:11] = q[0:6], q[12:14], q[15:18]
        return out

    entries = [(images[i], ([old(q) for q in scenes["question"][i, 10:20]], list(map(int, scenes["answer"][i, 10:20]))),
                ([old(q) for q in scenes["question"][i, :10]], list(map(int, scenes["answer"][i, :10]))))
               for i in range(2)]
    path = tmp_path / "old.pickle"
    path.write_bytes(pickle.dumps((entries, entries), protocol=2))
    _, test = public.read_pickle(path)
    np.testing.assert_array_equal(test["question"], scenes["question"][:, :20])
    np.testing.assert_array_equal(test["kind"], scenes["kind"][:, :20])


class _Runs:
    def __reduce__(self):
        return (os.system, ("echo ran",))


@pytest.mark.parametrize("content, match", [
    (([_Runs()], []), "asks for posix.system"),
    (([], []), "should be a non-empty list"),
    (([(np.zeros((7, 7, 3)), ([], []), ([], []))], [1]), r"image is \(7, 7, 3\)"),
    ({"train": 1}, r"should hold \(train, test\)"),
])
def test_bad_files_are_refused(tmp_path, content, match):
    path = tmp_path / "bad.pickle"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(ValueError, match=match):
        public.read_pickle(path)


def test_evaluate_reads_the_pickle(written, tmp_path):
    """`relzoo evaluate rn_sort_of_clevr --data FILE`: per-type accuracy on the file's test list."""
    import keras

    from relzoo.models import build_rn_pixels

    path, _, test = written
    home = tmp_path / "home"
    (home / "rn_sort_of_clevr").mkdir(parents=True)
    keras.utils.set_random_seed(0)
    model = build_rn_pixels(conv_filters=4, g_units=[8, 8], f_units=[8], name="rn_sort_of_clevr")
    model.save(home / "rn_sort_of_clevr" / "model.keras")
    cmd = [sys.executable, "-m", "relzoo.cli", "evaluate", "rn_sort_of_clevr", "--data", str(path), "--json",
           "--weights", str(home / "rn_sort_of_clevr" / "model.keras")]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", RELZOO_HOME=str(home)))
    assert out.returncode == 0, out.stderr
    import json

    record = json.loads(out.stdout)
    _, got = public.read_pickle(path)
    x = {"image": got["image"].astype("float32") / 255.0}
    guesses = np.stack([np.argmax(model.predict({"image": x["image"], "question": got["question"][:, j]}, verbose=0),
                                  -1) for j in range(30)], axis=1)
    assert record["num_examples"] == 120 and record["split"] == "test"
    assert record["values"]["accuracy"] == pytest.approx(np.mean(guesses == got["answer"]), abs=1e-6)
    state = subprocess.run(cmd[:4] + ["rn_sort_of_clevr_state", "--data", str(path)], cwd=ROOT, capture_output=True,
                           text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert state.returncode == 2 and "holds images only" in state.stderr and "Traceback" not in state.stderr

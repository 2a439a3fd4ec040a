"""clevr_world: the generated CLEVR-format data set (generate_split, Examples, JSON folder, TFDS)."""

import json

import numpy as np
import pytest

from relzoo.datasets import get_dataset
from relzoo.datasets.clevr import dataset as world
from relzoo.datasets.clevr import executor, features
from relzoo.datasets.clevr.questions import FAMILIES, FAMILY_NAMES
from relzoo.datasets.clevr.scenes import generate_scenes

SMALL = 16  # image side for quick renders (a 24 x 16 view)


def _same(a, b):
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert a[key].tobytes() == b[key].tobytes(), key


@pytest.fixture(scope="module")
def sample():
    """200 scenes of states (no rendering), 2,000 questions, and the scene dicts."""
    scenes, questions, records = world.generate_split(200, seed=3, split="train", representation="state",
                                                      workers=1, progress=False)
    return scenes, questions, records, generate_scenes(200, seed=3, split="train")


def test_shapes_and_dtypes():
    scenes, questions, records = world.generate_split(4, seed=0, split="validation", workers=1, progress=False,
                                                      image_size=SMALL)
    assert scenes["image"].shape == (4, SMALL, SMALL, 3) and scenes["image"].dtype == np.uint8
    assert scenes["objects"].shape == (4, 10, 18) and scenes["objects"].dtype == np.float32
    assert scenes["object_mask"].shape == (4, 10) and scenes["object_mask"].dtype == bool
    n = len(records)
    assert n == 40
    for key, shape in (("scene_index", (n,)), ("question_tokens", (n, 50)), ("answer", (n,)), ("category", (n,)),
                       ("family", (n,))):
        assert questions[key].shape == shape and questions[key].dtype == np.int32, key
    assert [r["question_index"] for r in records] == list(range(n))
    assert questions["scene_index"].tolist() == [r["image_index"] for r in records]
    assert np.all(np.diff(questions["scene_index"]) >= 0) and questions["scene_index"].max() == 3
    vocab = features.Vocabulary.shipped("clevr")
    for k, r in enumerate(records):
        assert r["split"] == "validation"
        np.testing.assert_array_equal(questions["question_tokens"][k], vocab.encode(r["question"]))
        assert features.CATEGORIES[questions["category"][k]] == r["category"]
        assert FAMILY_NAMES[questions["family"][k]] == r["family"]
        assert executor.ANSWERS[questions["answer"][k]] == r["answer"]
    # the state rows are features.scene_state of the scenes; the answers the executor's
    scene_dicts = generate_scenes(4, seed=0, split="validation")
    for k, r in enumerate(records):
        value = executor.execute(scene_dicts[r["image_index"]], r["program"])
        assert executor.answer_to_index(value) == questions["answer"][k]
    for i, scene in enumerate(scene_dicts):
        objects, mask = features.scene_state(scene)
        np.testing.assert_array_equal(scenes["objects"][i], objects)
        np.testing.assert_array_equal(scenes["object_mask"][i], mask)
    # state only: no rendering, no image
    state_only, q2, _ = world.generate_split(4, seed=0, split="validation", representation="state", workers=1,
                                             progress=False)
    assert "image" not in state_only
    _same(q2, questions)


def test_image_is_the_resized_3_to_2_render():
    from relzoo.datasets.clevr.render import render_scene

    scenes, _, _ = world.generate_split(2, seed=1, split="test", workers=1, progress=False, image_size=SMALL)
    assert world.render_size(128) == (192, 128)
    scene = generate_scenes(2, seed=1, split="test")[1]
    want = features.resize_image(render_scene(scene, *world.render_size(SMALL)), SMALL)
    np.testing.assert_array_equal(scenes["image"][1], want)


def test_same_seed_same_bytes_and_seeds_differ():
    a = world.generate_split(5, seed=7, split="train", workers=1, progress=False, image_size=SMALL)
    b = world.generate_split(5, seed=7, split="train", workers=1, progress=False, image_size=SMALL)
    _same(a[0], b[0])
    _same(a[1], b[1])
    assert a[2] == b[2]
    c = world.generate_split(5, seed=8, split="train", representation="state", workers=1, progress=False)
    assert a[0]["objects"].tobytes() != c[0]["objects"].tobytes()


def test_workers_do_not_change_the_data(monkeypatch):
    # small chunks so that 2 workers really share the work (the chunk size is passed to the workers)
    monkeypatch.setattr(world, "CHUNK_SCENES", 3)
    one = world.generate_split(7, seed=2, split="train", workers=1, progress=False, image_size=SMALL)
    two = world.generate_split(7, seed=2, split="train", workers=2, progress=False, image_size=SMALL)
    _same(one[0], two[0])
    _same(one[1], two[1])
    assert one[2] == two[2]
    # a shorter split is a prefix of a longer one at a chunk boundary
    six = world.generate_split(6, seed=2, split="train", representation="state", workers=1, progress=False)
    n = len(six[2])
    assert six[2] == one[2][:n]
    np.testing.assert_array_equal(six[0]["objects"], one[0]["objects"][:6])
    np.testing.assert_array_equal(six[1]["question_tokens"], one[1]["question_tokens"][:n])


@pytest.mark.slow
def test_workers_do_not_change_the_data_at_the_real_chunk_size():
    n = world.CHUNK_SCENES + 5  # two chunks
    one = world.generate_split(n, seed=0, split="test", representation="state", workers=1, progress=False)
    two = world.generate_split(n, seed=0, split="test", representation="state", workers=2, progress=False)
    _same(one[0], two[0])
    _same(one[1], two[1])
    assert one[2] == two[2]


def test_splits_are_disjoint():
    states = {split: world.generate_split(6, seed=0, split=split, representation="state", workers=1,
                                          progress=False)[0]["objects"] for split in ("train", "validation", "test")}
    seen = {}
    for split, objects in states.items():
        for i, rows in enumerate(objects):
            key = rows.tobytes()
            assert key not in seen, f"{split} scene {i} is also {seen.get(key)}"
            seen[key] = (split, i)


@pytest.mark.slow  # the shared 200-scene sample takes a few seconds
def test_answers_agree_with_the_executor(sample):
    _, questions, records, scene_dicts = sample
    for k, r in enumerate(records[:600]):
        scene = scene_dicts[r["image_index"]]
        assert scene["image_filename"] == r["image_filename"]
        assert executor.answer_to_index(executor.execute(scene, r["program"])) == questions["answer"][k]
        assert features.category_of(r["program"]) == r["category"] == FAMILIES[r["family"]][0]


@pytest.mark.slow  # the shared 200-scene sample takes a few seconds
def test_every_category_and_family_present(sample):
    _, questions, records, _ = sample
    assert len(records) == 2000
    counts = np.bincount(questions["category"], minlength=len(features.CATEGORIES))
    assert (counts > 0).all(), dict(zip(features.CATEGORIES, counts))
    assert set(np.unique(questions["family"])) == set(range(len(FAMILY_NAMES)))


@pytest.mark.slow  # the shared 200-scene sample takes a few seconds
def test_answers_are_balanced_within_families(sample):
    _, questions, _, _ = sample
    yes, no = executor.ANSWERS.index("yes"), executor.ANSWERS.index("no")
    exist = [FAMILY_NAMES.index(f) for f, (category, _, _) in FAMILIES.items()
             if category in ("exist", "compare_integer", "compare_attribute")]
    pooled = np.isin(questions["family"], exist)
    answers = questions["answer"][pooled]
    assert set(answers.tolist()) <= {yes, no} and len(answers) >= 300
    assert 0.35 <= np.mean(answers == yes) <= 0.65
    for f in exist:
        a = questions["answer"][questions["family"] == f]
        assert 0.25 <= np.mean(a == yes) <= 0.75, (FAMILY_NAMES[f], np.mean(a == yes), len(a))
    # no answer dominates a count or query family
    for f, (category, _, _) in FAMILIES.items():
        if category in ("count", "query_attribute"):
            a = questions["answer"][questions["family"] == FAMILY_NAMES.index(f)]
            assert np.bincount(a).max() / len(a) < 0.6, f


def test_generate_examples_pixels_and_state():
    module = get_dataset("clevr_world")
    assert module is world and module.VERSION == "1.0.0"
    assert sum(world.SPLIT_SIZES.values()) * world.QUESTIONS_PER_SCENE == 100_000
    state = world.generate_examples(3, seed=0, split="test", representation="state", workers=1)
    assert len(state) == 30 and state.input_names == ["object_mask", "objects", "question"]
    inputs, answers = next(state.numpy_batches(8))
    assert inputs["objects"].shape == (8, 10, 18) and inputs["object_mask"].shape == (8, 10)
    assert inputs["question"].shape == (8, 50) and answers.shape == (8,) and answers.dtype == np.int32
    labels, names = state.groups["category"]
    assert names == features.CATEGORIES and len(labels) == 30

    pixels = world.generate_examples(2, seed=0, split="test", representation="pixels", workers=1)
    assert len(pixels) == 20 and pixels.input_names == ["image", "question"]
    inputs, _ = next(pixels.numpy_batches(4))
    assert inputs["image"].shape == (4, 128, 128, 3) and inputs["image"].dtype == np.float32
    assert 0.0 <= inputs["image"].min() and inputs["image"].max() <= 1.0
    # the evaluation's call: generate_examples(size, seed=, split=, **options)
    from relzoo.datasets import load_split

    spec = {"name": "clevr_world", "seed": 0, "version": "1.0.0", "test_size": 3,
            "options": {"representation": "state", "workers": 1}}
    got = load_split(spec, "test")
    np.testing.assert_array_equal(got.answers, state.answers)
    assert world.describe_question(state.inputs["question"][0]).endswith("?")
    assert world.describe_answer(state.answers[0]) in executor.ANSWERS


def test_save_json_writes_a_clevr_folder(tmp_path):
    from PIL import Image

    summary = world.save_json(tmp_path, split="validation", num_scenes=3, seed=0, workers=1, progress=False,
                              image_size=SMALL)
    scenes, questions, records = world.generate_split(3, seed=0, split="validation", workers=1, progress=False,
                                                      image_size=SMALL)
    q = json.loads((tmp_path / "questions" / "CLEVR_val_questions.json").read_text())
    s = json.loads((tmp_path / "scenes" / "CLEVR_val_scenes.json").read_text())
    assert q["info"]["split"] == "val" and s["info"]["split"] == "val"
    assert summary["questions"] == len(records) and summary["scenes"] == 3
    # CLEVR's split and file names; nothing else differs from generate_split's records
    ours = records + generate_scenes(3, seed=0, split="validation")
    assert len(q["questions"] + s["scenes"]) == len(ours)
    for written, mine in zip(q["questions"] + s["scenes"], ours):
        assert written["split"] == "val" and mine["split"] == "validation"
        assert written["image_filename"] == f"CLEVR_val_{mine['image_filename'][-10:]}"
        same = lambda d: {k: v for k, v in d.items() if k not in ("split", "image_filename")}  # noqa: E731
        assert same(written) == same(mine)
    _same(summary["question_arrays"], questions)
    vocab = features.Vocabulary.shipped("clevr")
    for k, record in enumerate(q["questions"]):
        got = features.question_features(record, vocab)
        assert got["category"] == record["category"] and got["family"] == record["family"]
        np.testing.assert_array_equal(got["question_tokens"], questions["question_tokens"][k])
        assert got["answer"] == questions["answer"][k]
    # a reader that resizes the PNGs as it resizes CLEVR's images gets the same pixels
    for i, scene in enumerate(s["scenes"]):
        assert scene["image_filename"] == f"CLEVR_val_{i:06d}.png"
        png = Image.open(tmp_path / "images" / "val" / scene["image_filename"])
        assert png.size == world.render_size(SMALL)
        np.testing.assert_array_equal(features.resize_image(png, SMALL), scenes["image"][i])


@pytest.mark.slow
def test_tfds_tiny_builds_offline_and_matches_generate_split(tmp_path):
    import tensorflow_datasets as tfds

    import relzoo.datasets.clevr_world_tfds  # noqa: F401  registers the builder

    builder = tfds.builder("clevr_world/tiny", data_dir=str(tmp_path))
    builder.download_and_prepare()
    assert builder.info.splits["train"].num_examples == 60
    assert builder.info.splits["validation"].num_examples == 30
    examples = list(tfds.as_numpy(builder.as_dataset(split="test")))
    scenes, questions, records = world.generate_split(3, seed=0, split="test", workers=1, progress=False)
    assert len(examples) == len(records) == 30
    # TFDS may shuffle the order on write: match by the question text and scene
    by_key = {(int(ex["image_index"]), ex["question"].decode()): ex for ex in examples}
    assert len(by_key) == 30
    for k, r in enumerate(records):
        ex = by_key[(r["image_index"], r["question"])]
        s = questions["scene_index"][k]
        np.testing.assert_array_equal(ex["image"], scenes["image"][s])
        np.testing.assert_array_equal(ex["objects"], scenes["objects"][s])
        np.testing.assert_array_equal(ex["object_mask"], scenes["object_mask"][s])
        np.testing.assert_array_equal(ex["question_tokens"], questions["question_tokens"][k])
        assert ex["answer"] == questions["answer"][k] and ex["answer"].dtype == np.int32
        assert ex["program"].decode() == json.dumps(r["program"], separators=(",", ":"))
        assert ex["family"].decode() == FAMILY_NAMES[questions["family"][k]]
        assert ex["category"].decode() == features.CATEGORIES[questions["category"][k]]


def test_generate_scene_images_gives_the_splits_scenes_and_images():
    scenes, images = world.generate_scene_images(3, seed=1, split="validation", image_size=SMALL, workers=1)
    arrays, _, _ = world.generate_split(3, seed=1, split="validation", workers=1, progress=False, image_size=SMALL)
    assert scenes == generate_scenes(3, seed=1, split="validation")
    assert images.dtype == np.uint8 and np.array_equal(images, arrays["image"])
    assert world.generate_scene_images(0, split="test", image_size=SMALL)[1].shape == (0, SMALL, SMALL, 3)

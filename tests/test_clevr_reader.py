"""The real-CLEVR reader and its TFDS builder, on a tiny folder in CLEVR v1.0's layout."""

import collections
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from relzoo.datasets.clevr import executor
from relzoo.datasets.clevr import features as F
from relzoo.datasets.clevr.questions import FAMILY_NAMES, generate_questions
from relzoo.datasets.clevr.reader import FEATURE_KEYS, ClevrFolder, load_examples
from relzoo.datasets.clevr.render import render_scene
from relzoo.datasets.clevr.scenes import generate_scenes

W, H = 48, 32
UNKNOWN_WORD = "zorblax"


def _clevr_scenes(split, num, seed):
    """Our scenes, renamed as CLEVR's (`split` "train"/"val"/"test", CLEVR image file names)."""
    ours = {"val": "validation"}.get(split, split)
    scenes = generate_scenes(num, seed=seed, split=ours)
    for s in scenes:
        s["split"] = split
        s["image_filename"] = f"CLEVR_{split}_{s['image_index']:06d}.png"
    return scenes


def _write_json(path, key, items, split):
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"split": split, "version": "1.0", "date": "2/14/2017", "license": "CC BY 4.0"}
    path.write_text(json.dumps({"info": info, key: items}))


@pytest.fixture(scope="module")
def clevr(tmp_path_factory):
    """A CLEVR_v1.0 folder: 3 train and 3 val scenes (3 questions each), 2 test images.

    Returns (parent folder, {split: scenes}, {split: our categories per question},
    {split: rendered RGB images}).
    """
    parent = tmp_path_factory.mktemp("clevr")
    root = parent / "CLEVR_v1.0"
    scenes, categories, images = {}, {}, {}
    for split, num, seed in (("train", 3, 1), ("val", 3, 2), ("test", 2, 3)):
        scenes[split] = _clevr_scenes(split, num, seed)
        images[split] = []
        for s in scenes[split]:
            rgb = render_scene(s, W, H, shadow_samples=1)
            images[split].append(rgb)
            path = root / "images" / split / s["image_filename"]
            path.parent.mkdir(parents=True, exist_ok=True)
            if split == "train":  # real CLEVR PNGs are RGBA
                rgba = np.concatenate([rgb, np.full((H, W, 1), 255, np.uint8)], axis=-1)
                Image.fromarray(rgba, "RGBA").save(path)
            else:
                Image.fromarray(rgb).save(path)
        questions = generate_questions(scenes[split], 3, np.random.default_rng(seed))
        categories[split] = [q["category"] for q in questions]
        for i, q in enumerate(questions):  # CLEVR's question form
            family = q.pop("family")
            q.pop("category")
            q["question_family_index"] = FAMILY_NAMES.index(family)
            q["question_index"] = i
            q["split"] = split
            q["image_filename"] = f"CLEVR_{split}_{q['image_index']:06d}.png"
            if split == "test":
                for key in ("answer", "program", "question_family_index"):
                    del q[key]
        if split == "val":
            questions[1]["question"] = f"{UNKNOWN_WORD.capitalize()}, {questions[1]['question'][0].lower()}" \
                                       f"{questions[1]['question'][1:]}"
        _write_json(root / "questions" / f"CLEVR_{split}_questions.json", "questions", questions, split)
        if split != "test":
            _write_json(root / "scenes" / f"CLEVR_{split}_scenes.json", "scenes", scenes[split], split)
    return parent, scenes, categories, images


def _scene_by_index(scenes):
    return {s["image_index"]: s for s in scenes}


def test_features_match_the_encoding(clevr):
    parent, scenes, categories, images = clevr
    folder = ClevrFolder(parent)
    for split in ("train", "val"):
        questions = folder.questions(split)
        feats = list(folder.features(split))
        assert len(feats) == len(questions) == len(categories[split]) > 0
        by_index = _scene_by_index(scenes[split])
        for q, f, category in zip(questions, feats, categories[split]):
            assert tuple(f) == FEATURE_KEYS
            assert f["image"].dtype == np.uint8 and f["image"].shape == (F.IMAGE_SIZE, F.IMAGE_SIZE, 3)
            assert f["objects"].dtype == np.float32 and f["objects"].shape == (F.MAX_OBJECTS, F.STATE_DIM)
            assert f["object_mask"].dtype == bool and f["object_mask"].shape == (F.MAX_OBJECTS,)
            assert f["question_tokens"].dtype == np.int32 and f["question_tokens"].shape == (F.MAX_QUESTION_LENGTH,)
            assert f["answer"].dtype == np.int32 and f["answer"].shape == ()
            assert all(isinstance(f[k], str) for k in ("question", "program", "family", "category"))
            scene = by_index[q["image_index"]]
            program = json.loads(f["program"])
            assert program == q["program"]
            assert f["answer"] == executor.answer_to_index(executor.execute(scene, program))
            objects, mask = F.scene_state(scene)
            np.testing.assert_array_equal(f["objects"], objects)
            np.testing.assert_array_equal(f["object_mask"], mask)
            assert f["category"] == category  # derived from the program; ours was recorded
            assert f["family"] == f"clevr_{q['question_family_index']}"
            np.testing.assert_array_equal(f["image"], F.resize_image(images[split][q["image_index"]]))
            np.testing.assert_array_equal(f["image"], folder.image(split, q["image_index"]))
    assert len(list(folder.features("validation", limit=2))) == 2


def test_unknown_words_map_to_unk(clevr):
    parent = clevr[0]
    folder = ClevrFolder(parent)
    assert folder.unknown_words("train") == collections.Counter()
    assert folder.unknown_words("val") == collections.Counter({UNKNOWN_WORD: 1})
    assert folder.unknown_words("val", limit=1) == collections.Counter()
    tokens = list(folder.features("val", limit=2))[1]["question_tokens"]
    assert tokens[1] == F.Vocabulary.shipped("clevr").index[F.UNK]


def test_examples_pixels_and_state(clevr):
    parent, scenes, _, _ = clevr
    folder = ClevrFolder(parent / "CLEVR_v1.0")
    feats = list(folder.features("train"))
    n = len(feats)
    pixels = folder.examples("train")
    assert len(pixels) == n and pixels.scenes["image"].shape == (3, F.IMAGE_SIZE, F.IMAGE_SIZE, 3)
    batch = pixels.batch(slice(0, 4))
    assert batch["image"].dtype == np.float32 and batch["image"].shape == (4, F.IMAGE_SIZE, F.IMAGE_SIZE, 3)
    assert batch["question"].shape == (4, F.MAX_QUESTION_LENGTH)
    np.testing.assert_allclose(batch["image"], np.stack([f["image"] for f in feats[:4]]) / 255.0, atol=1e-6)
    np.testing.assert_array_equal(batch["question"], np.stack([f["question_tokens"] for f in feats[:4]]))
    np.testing.assert_array_equal(pixels.answers, [f["answer"] for f in feats])
    labels, names = pixels.groups["category"]
    assert [names[i] for i in labels] == [f["category"] for f in feats]

    state = folder.examples("validation", "state", limit=4)
    val = list(folder.features("val", limit=4))
    assert len(state) == 4 and "image" not in state.scenes
    batch = state.batch(np.arange(4))
    assert batch["objects"].shape == (4, F.MAX_OBJECTS, F.STATE_DIM)
    assert batch["object_mask"].shape == (4, F.MAX_OBJECTS)
    np.testing.assert_array_equal(batch["objects"], np.stack([f["objects"] for f in val]))
    np.testing.assert_array_equal(batch["object_mask"], np.stack([f["object_mask"] for f in val]))
    np.testing.assert_array_equal(state.answers, [f["answer"] for f in val])

    same = load_examples(parent, "train", "state")
    assert len(same) == n and same.scenes["objects"].shape == (3, F.MAX_OBJECTS, F.STATE_DIM)


def test_test_split(clevr):
    parent, scenes, _, images = clevr
    folder = ClevrFolder(parent)
    assert folder.scenes("test") is None and folder.splits == ("train", "val", "test")
    feats = list(folder.features("test"))
    assert len(feats) == len(folder.questions("test")) > 0
    for q, f in zip(folder.questions("test"), feats):
        assert tuple(f) == FEATURE_KEYS
        assert f["answer"] == -1 and f["answer"].dtype == np.int32
        assert f["program"] == f["category"] == f["family"] == ""
        assert not f["object_mask"].any() and not f["objects"].any()
        assert f["objects"].shape == (F.MAX_OBJECTS, F.STATE_DIM)
        np.testing.assert_array_equal(f["image"], F.resize_image(images["test"][q["image_index"]]))
    with pytest.raises(ValueError, match="no answers"):
        folder.examples("test")
    with pytest.raises(ValueError, match="state representation needs scenes"):
        folder.examples("test", "state")
    with pytest.raises(ValueError, match="split must be one of"):
        folder.questions("dev")


def test_layout_errors(clevr, tmp_path):
    parent = clevr[0]
    with pytest.raises(FileNotFoundError) as e:
        ClevrFolder(tmp_path / "nowhere")
    message = str(e.value)
    assert str(tmp_path / "nowhere") in message and "CLEVR_v1.0" in message
    assert "images/, questions/, scenes/" in message and "https://cs.stanford.edu/people/jcjohns/clevr/" in message

    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="questions"):
        ClevrFolder(tmp_path / "empty")

    root = tmp_path / "partial" / "CLEVR_v1.0"
    shutil.copytree(parent / "CLEVR_v1.0" / "questions", root / "questions")
    shutil.copytree(parent / "CLEVR_v1.0" / "scenes", root / "scenes")
    (root / "questions" / "CLEVR_val_questions.json").unlink()
    folder = ClevrFolder(tmp_path / "partial")
    assert folder.splits == ("train", "test")
    with pytest.raises(FileNotFoundError) as e:
        folder.questions("validation")
    assert str(root / "questions" / "CLEVR_val_questions.json") in str(e.value)

    # no images/ (CLEVR_v1.0_no_images.zip): state works, pixels name the missing PNG
    assert len(folder.examples("train", "state")) == len(folder.questions("train"))
    pixels = folder.features("train")  # the files are checked on the call, images when reached
    with pytest.raises(FileNotFoundError) as e:
        next(pixels)
    assert "CLEVR_train_000000.png" in str(e.value) and "no_images" in str(e.value)

    (root / "questions" / "CLEVR_train_questions.json").write_text('{"info": {}, "questions": [{"question": ')
    with pytest.raises(ValueError) as e:
        ClevrFolder(root).questions("train")
    assert "CLEVR_train_questions.json" in str(e.value) and "not valid JSON" in str(e.value)

    (root / "questions" / "CLEVR_train_questions.json").write_text('{"info": {}, "items": []}')
    with pytest.raises(ValueError, match="list under 'questions'"):
        ClevrFolder(root).questions("train")

    questions = json.loads((parent / "CLEVR_v1.0" / "questions" / "CLEVR_train_questions.json").read_text())
    questions["questions"][0]["image_index"] = 99
    (root / "questions" / "CLEVR_train_questions.json").write_text(json.dumps(questions))
    with pytest.raises(ValueError) as e:
        next(ClevrFolder(root).features("train"))  # the scene lookup comes before the (missing) image
    assert "image 99" in str(e.value) and "CLEVR_train_scenes.json" in str(e.value)
    with pytest.raises(ValueError, match="image_index 99"):
        ClevrFolder(root).examples("train", "state")

    (root / "scenes" / "CLEVR_train_scenes.json").unlink()
    with pytest.raises(FileNotFoundError, match="CLEVR_train_scenes.json"):
        ClevrFolder(root).scenes("train")
    with pytest.raises(FileNotFoundError, match="CLEVR_train_scenes.json"):
        ClevrFolder(root).features("train")  # raised on the call, before any iteration


def test_tfds_builder_matches_the_reader(clevr, tmp_path):
    import tensorflow_datasets as tfds

    import relzoo.datasets.clevr_v1_tfds  # noqa: F401  registers the builder

    parent = clevr[0]
    builder = tfds.builder("clevr_v1", data_dir=str(tmp_path), config=None)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(parent)))
    folder = ClevrFolder(parent)
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
        "train": len(folder.questions("train")), "validation": len(folder.questions("val")),
        "test": len(folder.questions("test"))}
    spec = builder.info.features
    assert spec["image"].shape == (F.IMAGE_SIZE, F.IMAGE_SIZE, 3)
    assert spec["objects"].shape == (F.MAX_OBJECTS, F.STATE_DIM) and spec["objects"].np_dtype == np.float32
    assert spec["object_mask"].np_dtype == np.bool_ and spec["question_tokens"].np_dtype == np.int32
    assert spec["answer"].np_dtype == np.int32 and spec["answer"].shape == ()

    expected = {(f["question"], f["image"].tobytes()): f for f in folder.features("val")}
    examples = list(tfds.as_numpy(builder.as_dataset(split="validation")))
    assert len(examples) == len(expected)
    for example in examples:
        f = expected[example["question"].decode(), example["image"].tobytes()]
        for key in FEATURE_KEYS:
            value = example[key].decode() if isinstance(example[key], bytes) else example[key]
            if isinstance(value, str):
                assert value == f[key], key
            else:
                assert value.dtype == f[key].dtype and value.shape == f[key].shape, key
                np.testing.assert_array_equal(value, f[key], err_msg=key)


def test_reader_reads_a_generated_folder_as_the_generator_encodes_it(tmp_path):
    # the generator's folder in CLEVR's layout, read back by the real-CLEVR reader: same features
    from relzoo.datasets.clevr import dataset

    dataset.save_json(tmp_path, "validation", 4, seed=3, questions_per_scene=3, workers=1, progress=False)
    scenes, questions, _ = dataset.generate_split(4, seed=3, split="validation", questions_per_scene=3,
                                                  workers=1, progress=False)
    folder = ClevrFolder(tmp_path)
    for representation in ("pixels", "state"):
        ex = folder.examples("validation", representation)
        np.testing.assert_array_equal(ex.answers, questions["answer"])
        np.testing.assert_array_equal(ex.inputs["question"], questions["question_tokens"])
        np.testing.assert_array_equal(ex.groups["category"][0], questions["category"])
        for name, array in ex.scenes.items():
            np.testing.assert_array_equal(array, scenes[name][:len(array)])

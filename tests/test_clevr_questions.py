"""Question generation for the CLEVR-format world, and the shared feature encoding."""

import collections
import json

import numpy as np
import pytest

from relzoo.datasets.clevr import executor, features, questions
from relzoo.datasets.clevr.scenes import generate_scenes


@pytest.fixture(scope="module")
def scenes():
    return generate_scenes(120, seed=5, split="train")


@pytest.fixture(scope="module")
def generated(scenes):
    return questions.generate_questions(scenes, 10, np.random.default_rng(0))


def test_questions_follow_clevrs_question_form(scenes, generated):
    assert len(generated) >= 0.98 * 10 * len(scenes)
    by_index = {s["image_index"]: s for s in scenes}
    for k, q in enumerate(generated):
        assert q["question_index"] == k
        assert q["family"] in questions.FAMILIES and q["category"] == questions.FAMILIES[q["family"]][0]
        assert q["question"][0].isupper() and q["question"].endswith("?")
        scene = by_index[q["image_index"]]
        assert q["image_filename"] == scene["image_filename"]
        # the recorded answer is the executor's, and the program is valid CLEVR JSON
        json.dumps(q["program"])
        assert all(set(step) == {"function", "inputs", "value_inputs"} for step in q["program"])
        value = executor.execute(scene, q["program"])
        assert executor.index_to_answer(executor.answer_to_index(value)) == q["answer"]
        assert features.category_of(q["program"]) == q["category"]


def test_every_family_and_category_appears(generated):
    families = collections.Counter(q["family"] for q in generated)
    assert set(families) == set(questions.FAMILY_NAMES)
    # families are drawn uniformly and retried, so none is starved
    assert min(families.values()) >= 0.4 * len(generated) / len(questions.FAMILY_NAMES)
    assert {q["category"] for q in generated} == set(features.CATEGORIES)


def test_relation_hops_and_combinations_occur(generated):
    def relates(q):
        return sum(step["function"] == "relate" for step in q["program"])

    hops = collections.Counter(relates(q) for q in generated)
    assert hops[0] and hops[1] and hops[2]
    functions = collections.Counter(step["function"] for q in generated for step in q["program"])
    for name in ("union", "intersect", "same_color", "same_shape", "same_size", "same_material",
                 "equal_integer", "less_than", "greater_than", "equal_color", "equal_shape"):
        assert functions[name] > 0, name


def test_answers_are_balanced_within_families(generated):
    by_family = collections.defaultdict(collections.Counter)
    for q in generated:
        by_family[q["family"]][q["answer"]] += 1
    for family in ("exist_0", "exist_1", "exist_and", "compare_integer_0", "compare_attribute_0"):
        counts = by_family[family]
        assert set(counts) == {"yes", "no"}, (family, counts)
        share = counts["yes"] / sum(counts.values())
        assert 0.35 <= share <= 0.65, (family, counts)
    # without the balancer the yes/no families are visibly skewed (the balancer is doing work)
    rng = np.random.default_rng(1)
    scenes = generate_scenes(60, seed=6)
    free = [questions.generate_question(s, rng, None, "compare_integer_0") for s in scenes for _ in range(5)]
    free = collections.Counter(q["answer"] for q in free)
    assert free["no"] / sum(free.values()) > 0.6


def test_balancer_rejects_overrepresented_answers():
    balancer = questions.Balancer(slack=1.1)
    accepted = [balancer.accept("exist_0", "yes") for _ in range(20)]
    assert accepted[:3] == [True] * 3 and not all(accepted)
    assert balancer.accept("exist_0", "no")  # the other answer is welcome


def test_generation_is_deterministic(scenes):
    a = questions.generate_questions(scenes[:30], 5, np.random.default_rng(3))
    b = questions.generate_questions(scenes[:30], 5, np.random.default_rng(3))
    c = questions.generate_questions(scenes[:30], 5, np.random.default_rng(4))
    assert json.dumps(a) == json.dumps(b)
    assert json.dumps(a) != json.dumps(c)


def test_no_degenerate_questions(generated):
    for q in generated:
        prog = q["program"]
        last = prog[-1]["function"]
        if last.startswith("query_"):  # never asks for an attribute the question names
            attr = last[len("query_"):]
            target = prog[-1]["inputs"][0]
            chain = prog[target]["inputs"][0]
            while prog[chain]["function"].startswith("filter_"):
                assert prog[chain]["function"] != f"filter_{attr}", q["question"]
                chain = prog[chain]["inputs"][0]
        if last.startswith("equal_") and last != "equal_integer":  # never compares an object with itself
            a, b = (prog[prog[j]["inputs"][0]] for j in prog[-1]["inputs"])
            assert a != b or prog.index(a) != prog.index(b)


def test_shipped_vocabulary_covers_generated_questions(generated):
    vocab = features.Vocabulary.shipped("clevr")
    assert vocab.tokens[:4] == features.SPECIAL_TOKENS
    unknown = collections.Counter(w for q in generated for w in vocab.unknown(q["question"]))
    assert not unknown, unknown


@pytest.mark.slow
def test_shipped_vocabulary_is_the_built_one():
    # regenerate with: python -m relzoo.datasets.clevr.questions --write-vocabulary
    assert questions.build_vocabulary().tokens == features.Vocabulary.shipped("clevr").tokens


# ----------------------------------------------------------------------------- features


def test_tokenize_and_encode_round_trip():
    vocab = features.Vocabulary.shipped("clevr")
    text = "There is a tiny red object; what shape is it?"
    assert features.tokenize(text) == ["there", "is", "a", "tiny", "red", "object", ";", "what", "shape",
                                       "is", "it", "?"]
    ids = vocab.encode(text)
    assert ids.shape == (features.MAX_QUESTION_LENGTH,) and ids.dtype == np.int32
    assert ids[0] == vocab.index[features.START] and ids[13] == vocab.index[features.END] and not ids[14:].any()
    assert vocab.decode(ids) == "there is a tiny red object ; what shape is it ?"
    assert vocab.encode("Is the zorblax red?")[3] == vocab.index[features.UNK]
    assert vocab.unknown("Is the zorblax red?") == ["zorblax"]
    with pytest.raises(ValueError, match="at most 48 fit"):
        vocab.encode("red " * 49)


def test_vocabulary_file_round_trip_and_errors(tmp_path):
    vocab = features.Vocabulary.build(["Is it red?"], answers=executor.ANSWERS)
    vocab.save(tmp_path / "vocab.json")
    data = json.loads((tmp_path / "vocab.json").read_text())
    assert data["answer_token_to_idx"]["yes"] == 0 and len(data["answer_token_to_idx"]) == 28
    again = features.Vocabulary.load(tmp_path / "vocab.json")
    assert again.tokens == vocab.tokens and again.answers == executor.ANSWERS
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="question_token_to_idx"):
        features.Vocabulary.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="no vocabulary file"):
        features.Vocabulary.load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="first tokens"):
        features.Vocabulary(["red", "blue"])


def test_scene_state_rows(scenes):
    scene = scenes[0]
    state, mask = features.scene_state(scene)
    n = len(scene["objects"])
    assert state.shape == (features.MAX_OBJECTS, features.STATE_DIM) and state.dtype == np.float32
    assert mask.tolist() == [True] * n + [False] * (features.MAX_OBJECTS - n)
    assert not state[n:].any()
    names = features.STATE_FEATURES
    for i, obj in enumerate(scene["objects"]):
        np.testing.assert_allclose(state[i, :3], np.array(obj["3d_coords"]) / 3.0, rtol=1e-6)
        hot = {names[j] for j in np.flatnonzero(state[i, 3:]) + 3}
        assert hot == {f"color_{obj['color']}", f"shape_{obj['shape']}", f"material_{obj['material']}",
                       f"size_{obj['size']}"}
    with pytest.raises(ValueError, match="at most 2 fit"):
        features.scene_state(scene, max_objects=2)
    bad = {"objects": [dict(scene["objects"][0], color="pink")]}
    with pytest.raises(ValueError, match="color 'pink'"):
        features.scene_state(bad)


def test_category_of_real_clevr_endings():
    def prog(last):
        return [{"function": "scene", "inputs": [], "value_inputs": []},
                {"function": "count", "inputs": [0], "value_inputs": []},
                {"function": "count", "inputs": [0], "value_inputs": []}] + ([last] if last else [])

    assert features.category_of(prog(None)) == "count"
    assert features.category_of(prog({"function": "greater_than", "inputs": [1, 2], "value_inputs": []})) == \
        "compare_integer"
    with pytest.raises(ValueError, match="expected input"):
        features.category_of(prog({"function": "equal_color", "inputs": [1, 2], "value_inputs": []}))


def test_question_features_of_a_clevr_question(generated):
    vocab = features.Vocabulary.shipped("clevr")
    q = generated[0]
    f = features.question_features(q, vocab)
    assert f["answer"] == executor.answer_to_index(q["answer"]) and f["family"] == q["family"]
    assert json.loads(f["program"]) == q["program"]
    real = {"question": "How many red things are there?", "question_family_index": 7,
            "program": q["program"][:1] + [{"function": "count", "inputs": [0], "value_inputs": []}]}
    f = features.question_features(real, vocab)  # real CLEVR's test split has no answer
    assert f["answer"] == -1 and f["family"] == "clevr_7" and f["category"] == "count"


def test_to_examples_batches(scenes, generated):
    vocab = features.Vocabulary.shipped("clevr")
    states = [features.scene_state(s) for s in scenes]
    scene_arrays = {"objects": np.stack([s for s, _ in states]), "object_mask": np.stack([m for _, m in states]),
                    "image": np.zeros((len(scenes), 128, 128, 3), np.uint8)}
    qs = generated[:50]
    arrays = {"scene_index": np.array([q["image_index"] for q in qs]),
              "question_tokens": np.stack([vocab.encode(q["question"]) for q in qs]),
              "answer": np.array([executor.answer_to_index(q["answer"]) for q in qs]),
              "category": np.array([q["category"] for q in qs])}
    ex = features.to_examples(scene_arrays, arrays, "state")
    assert set(ex.groups) == {"category"} and ex.groups["category"][1] == features.CATEGORIES
    ex_pixels = features.to_examples(scene_arrays, arrays, "pixels")
    assert set(ex_pixels.scenes) == {"image"} and ex_pixels.scale == {"image": 1 / 255}
    with pytest.raises(ValueError, match="representation"):
        features.to_examples(scene_arrays, arrays, "voxels")
    with pytest.raises(ValueError, match="missing"):
        features.to_examples({"image": scene_arrays["image"]}, arrays, "state")


def test_showcase_writes_the_grid_and_questions(tmp_path, capsys):
    from relzoo.datasets.clevr import showcase

    showcase.main(["--out", str(tmp_path / "grid.png"), "--scenes", "2", "--width", "48", "--height", "32"])
    assert (tmp_path / "grid.png").stat().st_size > 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == 3


def test_zoo_clevr_entries_match_the_vocabulary_and_answers():
    from relzoo import presets, text

    for name in ("rn_clevr", "rn_clevr_state"):
        preset = presets.PRESETS[name]
        assert preset.kwargs["vocab_size"] == len(features.Vocabulary.shipped("clevr"))
        assert preset.answer_vocab == executor.ANSWERS == features.Vocabulary.shipped("clevr").answers
        assert preset.specs()["inputs"]["question"]["shape"] == [None]  # any length
        assert text.question_length(preset) == features.MAX_QUESTION_LENGTH

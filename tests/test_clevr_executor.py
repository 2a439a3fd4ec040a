"""CLEVR's functional-program executor, on hand-built scenes and questions in CLEVR's JSON formats."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from relzoo.datasets.clevr import executor as E
from relzoo.datasets.clevr.executor import ProgramError, SceneError, execute

# a real CLEVR v1.0 excerpt (three questions and their scenes) in CLEVR's file formats
EXAMPLE = Path(__file__).resolve().parent / "data" / "clevr_v1_example.json"

# CLEVR's direction vectors (as in CLEVR's scene files and the example file)
DIRECTIONS = {"right": [0.656, 0.754, -0.0], "left": [-0.656, -0.754, 0.0], "front": [0.754, -0.656, -0.0],
              "behind": [-0.754, 0.656, 0.0], "above": [0.0, 0.0, 1.0], "below": [-0.0, -0.0, -1.0]}


def obj(shape, color, material, size, coords):
    return {"shape": shape, "color": color, "material": material, "size": size, "rotation": 0.0,
            "3d_coords": coords, "pixel_coords": [0, 0, 0.0]}


# Objects are placed at a * right + b * front on the ground; (a, b) in the comments.
# relationships[R][i] = the objects j with (p_j - p_i) . direction_R > 0.2, as CLEVR computes them.
SCENE_A = {
    "image_index": 0, "image_filename": "HAND_A.png", "split": "val",
    "objects": [
        obj("cube", "red", "metal", "large", [-1.31, -1.51, 0.7]),        # (-2, 0)
        obj("sphere", "red", "rubber", "small", [0.75, -0.66, 0.35]),     # (0, 1)
        obj("cylinder", "blue", "rubber", "large", [-0.47, 1.74, 0.7]),   # (1, -1.5)
        obj("sphere", "green", "metal", "small", [1.69, 1.18, 0.35]),     # (2, 0.5)
        obj("cube", "blue", "rubber", "large", [-2.16, 0.56, 0.7]),       # (-1, -2)
    ],
    "relationships": {
        "right": [[1, 2, 3, 4], [2, 3], [3], [], [1, 2, 3]],
        "left": [[], [0, 4], [0, 1, 4], [0, 1, 2, 4], [0]],
        "front": [[1, 3], [], [0, 1, 3], [1], [0, 1, 2, 3]],
        "behind": [[2, 4], [0, 2, 3, 4], [4], [0, 2, 4], []],
    },
    "directions": DIRECTIONS,
}

SCENE_B = {
    "image_index": 1, "image_filename": "HAND_B.png", "split": "val",
    "objects": [
        obj("cylinder", "yellow", "rubber", "small", [-0.23, -1.79, 0.35]),  # (-1.5, 1)
        obj("sphere", "purple", "metal", "large", [-0.75, 0.66, 0.7]),       # (0, -1)
        obj("cylinder", "yellow", "rubber", "small", [1.36, 0.8, 0.35]),     # (1.5, 0.5)
    ],
    "relationships": {
        "right": [[1, 2], [2], []],
        "left": [[], [0], [0, 1]],
        "front": [[], [0, 2], [0]],
        "behind": [[1, 2], [], [1]],
    },
    "directions": DIRECTIONS,
}


def step(function, inputs=(), *values):
    """One step exactly as in CLEVR's question files."""
    return {"function": function, "inputs": list(inputs), "value_inputs": list(values)}


def question(program, answer=None, text=""):
    q = {"image_index": 0, "image_filename": "HAND_A.png", "split": "val", "question_index": 0,
         "question_family_index": 0, "question": text, "program": program}
    if answer is not None:
        q["answer"] = answer
    return q


def unique_of(*filters):
    """scene -> filter ... -> unique, as a program prefix (filters: (function, value) pairs)."""
    prog = [step("scene")]
    for fn, value in filters:
        prog.append(step(fn, [len(prog) - 1], value))
    prog.append(step("unique", [len(prog) - 1]))
    return prog


def append(prog, *steps):
    """Concatenate programs: later steps' inputs are offset by the length of what precedes them."""
    out = list(prog)
    for s in steps:
        if isinstance(s, list):
            off = len(out)
            out += [dict(t, inputs=[j + off for j in t["inputs"]]) for t in s]
        else:
            out.append(s)
    return out


# ----------------------------------------------------------------------------- scenes and vocabulary


def _relations_from_coords(scene, eps=0.2):
    coords = np.array([o["3d_coords"] for o in scene["objects"]])
    out = {}
    for rel in E.RELATIONS:
        d = np.array(scene["directions"][rel])
        out[rel] = [[j for j in range(len(coords)) if j != i and (coords[j] - coords[i]) @ d > eps]
                    for i in range(len(coords))]
    return out


@pytest.mark.parametrize("scene", [SCENE_A, SCENE_B], ids=["A", "B"])
def test_hand_scenes_relationships_follow_coords(scene):
    assert _relations_from_coords(scene) == scene["relationships"]
    json.dumps(scene)


def test_constants_and_answer_vocabulary():
    assert E.SHAPES == ("cube", "sphere", "cylinder")
    assert E.COLORS == ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")
    assert E.MATERIALS == ("rubber", "metal")
    assert E.SIZES == ("large", "small")
    assert E.RELATIONS == ("left", "right", "front", "behind")
    assert len(E.ANSWERS) == 28 and len(set(E.ANSWERS)) == 28
    assert E.ANSWERS[:13] == ("yes", "no") + tuple(str(k) for k in range(11))
    assert E.ANSWERS[13:] == E.COLORS + E.SHAPES + E.MATERIALS + E.SIZES


# ----------------------------------------------------------------------------- every function


def test_scene_and_filters():
    assert execute(SCENE_A, [step("scene")]) == (0, 1, 2, 3, 4)
    assert execute(SCENE_A, [step("scene"), step("filter_color", [0], "red")]) == (0, 1)
    assert execute(SCENE_A, [step("scene"), step("filter_shape", [0], "sphere")]) == (1, 3)
    assert execute(SCENE_A, [step("scene"), step("filter_material", [0], "rubber")]) == (1, 2, 4)
    assert execute(SCENE_A, [step("scene"), step("filter_size", [0], "large")]) == (0, 2, 4)
    assert execute(SCENE_A, [step("scene"), step("filter_color", [0], "cyan")]) == ()
    # chained: large rubber things
    prog = [step("scene"), step("filter_size", [0], "large"), step("filter_material", [1], "rubber")]
    assert execute(SCENE_A, prog) == (2, 4)


def test_unique_and_queries():
    green = unique_of(("filter_color", "green"))
    assert execute(SCENE_A, green) == 3
    assert execute(SCENE_A, append(green, step("query_shape", [2]))) == "sphere"
    assert execute(SCENE_A, append(green, step("query_color", [2]))) == "green"
    assert execute(SCENE_A, append(green, step("query_material", [2]))) == "metal"
    assert execute(SCENE_A, append(green, step("query_size", [2]))) == "small"
    big_cylinder = unique_of(("filter_size", "large"), ("filter_shape", "cylinder"))
    assert execute(SCENE_A, append(big_cylinder, step("query_color", [3]))) == "blue"


@pytest.mark.parametrize("relation, expected", [
    ("right", (2, 3)), ("left", (0, 4)), ("front", ()), ("behind", (0, 2, 3, 4)),
])
def test_relate_all_four_relations(relation, expected):
    # object 1 (the small red sphere) sits at (a, b) = (0, 1)
    prog = unique_of(("filter_color", "red"), ("filter_shape", "sphere"))
    assert execute(SCENE_A, append(prog, step("relate", [3], relation))) == expected


@pytest.mark.parametrize("relation, expected", [
    ("right", (3,)), ("left", (0, 1, 4)), ("front", (0, 1, 3)), ("behind", (4,)),
])
def test_relate_from_the_cylinder(relation, expected):
    prog = unique_of(("filter_shape", "cylinder"))  # object 2 at (1, -1.5)
    assert execute(SCENE_A, append(prog, step("relate", [2], relation))) == expected


def test_relate_follows_clevrs_convention():
    # relationships["right"][0] = the objects right of object 0: relate[right](object 0) gives them
    for rel in E.RELATIONS:
        for i in range(5):
            prog = [step("scene"), step("filter_color", [0], SCENE_A["objects"][i]["color"]),
                    step("filter_shape", [1], SCENE_A["objects"][i]["shape"]), step("unique", [2]),
                    step("relate", [3], rel)]
            assert execute(SCENE_A, prog) == tuple(SCENE_A["relationships"][rel][i])


def test_union_and_intersect():
    # "things that are red or spheres": 0, 1, 3
    union = [step("scene"), step("filter_color", [0], "red"), step("scene"), step("filter_shape", [2], "sphere"),
             step("union", [1, 3])]
    assert execute(SCENE_A, union) == (0, 1, 3)
    intersect = union[:4] + [step("intersect", [1, 3])]
    assert execute(SCENE_A, intersect) == (1,)
    # "things that are right of the red cube and behind the small green sphere": right(0) & behind(3)
    prog = append(unique_of(("filter_color", "red"), ("filter_shape", "cube")), step("relate", [3], "right"),
                  unique_of(("filter_color", "green")), step("relate", [7], "behind"), step("intersect", [4, 8]))
    assert execute(SCENE_A, prog) == (2, 4)
    disjoint = append(unique_of(("filter_color", "green")), step("relate", [2], "right"),
                      unique_of(("filter_shape", "cylinder")), step("relate", [6], "front"),
                      step("union", [3, 7]), step("count", [8]))
    assert execute(SCENE_A, disjoint) == 3  # () | (0, 1, 3)


def test_count_and_exist():
    assert execute(SCENE_A, [step("scene"), step("count", [0])]) == 5
    rubber = [step("scene"), step("filter_material", [0], "rubber")]
    assert execute(SCENE_A, rubber + [step("count", [1])]) == 3
    nothing = [step("scene"), step("filter_color", [0], "red")]
    assert execute(SCENE_B, nothing + [step("count", [1])]) == 0
    assert execute(SCENE_B, nothing + [step("exist", [1])]) is False
    assert execute(SCENE_B, [step("scene"), step("filter_color", [0], "yellow"), step("exist", [1])]) is True
    # "Is there anything in front of the purple sphere?" yes (0 and 2); "...behind it?" no
    purple = unique_of(("filter_color", "purple"))
    assert execute(SCENE_B, append(purple, step("relate", [2], "front"), step("exist", [3]))) is True
    assert execute(SCENE_B, append(purple, step("relate", [2], "behind"), step("exist", [3]))) is False
    assert execute(SCENE_B, append(purple, step("relate", [2], "behind"), step("count", [3]))) == 0


@pytest.mark.parametrize("attr, start, expected", [
    ("color", ("filter_shape", "cylinder"), (4,)),     # the other blue thing
    ("shape", ("filter_color", "green"), (1,)),        # the other sphere
    ("material", ("filter_color", "green"), (0,)),     # the other metal thing
    ("size", ("filter_shape", "cylinder"), (0, 4)),    # the other large things
])
def test_same_attribute_excludes_the_object(attr, start, expected):
    prog = append(unique_of(start), step(f"same_{attr}", [2]))
    out = execute(SCENE_A, prog)
    assert out == expected
    assert execute(SCENE_A, prog[:3]) not in out


def test_same_attribute_can_be_empty():
    assert execute(SCENE_A, append(unique_of(("filter_color", "green")), step("same_color", [2]))) == ()
    assert execute(SCENE_B, append(unique_of(("filter_color", "purple")), step("same_size", [2]))) == ()


def test_equal_attributes():
    cyl, green = ("filter_shape", "cylinder"), ("filter_color", "green")
    red_sphere = [("filter_color", "red"), ("filter_shape", "sphere")]

    def compare(attr, first, second):
        return append(unique_of(*first), step(f"query_{attr}", [len(first) + 1]),
                      unique_of(*second), step(f"query_{attr}", [len(first) + len(second) + 4]),
                      step(f"equal_{attr}", [len(first) + 2, len(first) + len(second) + 5]))

    # cylinder (2): large blue rubber; small red sphere (1); green sphere (3): small green metal;
    # red cube (0): large red metal; blue cube (4): large blue rubber
    blue_cube = [("filter_color", "blue"), ("filter_shape", "cube")]
    red_cube = [("filter_color", "red"), ("filter_shape", "cube")]
    assert execute(SCENE_A, compare("color", [cyl], blue_cube)) is True
    assert execute(SCENE_A, compare("color", [cyl], [green])) is False
    assert execute(SCENE_A, compare("shape", [green], red_sphere)) is True
    assert execute(SCENE_A, compare("shape", [green], [cyl])) is False
    assert execute(SCENE_A, compare("material", [green], red_cube)) is True
    assert execute(SCENE_A, compare("material", [green], [cyl])) is False
    assert execute(SCENE_A, compare("size", [cyl], red_cube)) is True
    assert execute(SCENE_A, compare("size", [cyl], red_sphere)) is False
    # the trace holds every step's value, in order
    answer, trace = execute(SCENE_A, compare("size", [cyl], red_sphere), return_trace=True)
    assert answer is False
    assert trace == [(0, 1, 2, 3, 4), (2,), 2, "large", (0, 1, 2, 3, 4), (0, 1), (1,), 1, "small", False]


def _count_compare(function, first, second):
    """<function>(count(filter first), count(filter second)), the first count the first input."""
    return [step("scene"), step(first[0], [0], first[1]), step("count", [1]),
            step("scene"), step(second[0], [3], second[1]), step("count", [4]), step(function, [2, 5])]


@pytest.mark.parametrize("function, first, second, expected", [
    # rubber things: 3, metal things: 2, spheres: 2, large things: 3
    ("equal_integer", ("filter_material", "rubber"), ("filter_size", "large"), True),
    ("equal_integer", ("filter_material", "rubber"), ("filter_material", "metal"), False),
    ("less_than", ("filter_material", "metal"), ("filter_material", "rubber"), True),   # 2 < 3
    ("less_than", ("filter_material", "rubber"), ("filter_material", "metal"), False),  # 3 < 2
    ("less_than", ("filter_material", "metal"), ("filter_shape", "sphere"), False),     # 2 < 2
    ("greater_than", ("filter_material", "rubber"), ("filter_material", "metal"), True),  # 3 > 2
    ("greater_than", ("filter_material", "metal"), ("filter_material", "rubber"), False),  # 2 > 3
    ("greater_than", ("filter_material", "metal"), ("filter_shape", "sphere"), False),     # 2 > 2
])
def test_integer_comparisons(function, first, second, expected):
    assert execute(SCENE_A, _count_compare(function, first, second)) is expected


def test_equal_object():
    prog = append(unique_of(("filter_color", "green")), unique_of(("filter_shape", "sphere"), ("filter_size", "small"),
                                                                  ("filter_material", "metal")),
                  step("equal_object", [2, 7]))
    assert execute(SCENE_A, prog) is True
    prog = append(unique_of(("filter_color", "green")), unique_of(("filter_shape", "cylinder")),
                  step("equal_object", [2, 5]))
    assert execute(SCENE_A, prog) is False


def test_a_long_question():
    # "There is a thing that is in front of the large blue cube and left of the green sphere; what is its
    # material?"  front(4) = {0, 1, 2, 3}, left(3) = {0, 1, 2, 4}; filter_shape cube -> {0}: metal
    prog = append(unique_of(("filter_size", "large"), ("filter_color", "blue"), ("filter_shape", "cube")),
                  step("relate", [4], "front"),
                  unique_of(("filter_color", "green"), ("filter_shape", "sphere")), step("relate", [9], "left"),
                  step("intersect", [5, 10]), step("filter_shape", [11], "cube"), step("unique", [12]),
                  step("query_material", [13]))
    assert execute(SCENE_A, question(prog)) == "metal"
    assert E.program_to_str(prog) == (
        "query_material(unique(filter_shape[cube](intersect("
        "relate[front](unique(filter_shape[cube](filter_color[blue](filter_size[large](scene()))))), "
        "relate[left](unique(filter_shape[sphere](filter_color[green](scene()))))))))")


# ----------------------------------------------------------------------------- CLEVR's example file


def test_example_file_questions():
    data = json.loads(EXAMPLE.read_text())
    scenes = {s["image_index"]: s for s in data["scenes"]}
    assert len(data["questions"]) == 3
    for q in data["questions"]:
        value = execute(scenes[q["image_index"]], q["program"])
        assert E.index_to_answer(E.answer_to_index(value)) == q["answer"], q["question"]
        assert E.answer_to_index(value) == E.answer_to_index(q["answer"])
    q0, q1, q2 = data["questions"]
    assert E.program_to_str(q1["program"]) == "count(relate[behind](unique(filter_color[red](scene()))))"
    assert execute(scenes[12], q0) == "red"  # a whole question dict works too
    assert execute(scenes[12], q2["program"], return_trace=True)[1][4] == "metal"


# ----------------------------------------------------------------------------- other step forms


def test_generator_template_form():
    # the CLEVR generator's node form: "type" and "side_inputs", "inputs" omitted for scene
    nodes = [{"type": "scene"}, {"type": "filter_color", "inputs": [0], "side_inputs": ["red"]},
             {"type": "unique", "inputs": [1]}, {"type": "relate", "inputs": [2], "side_inputs": ["behind"]},
             {"type": "count", "inputs": [3]}]
    assert execute(SCENE_B, [step("scene")]) == (0, 1, 2)
    purple_nodes = copy.deepcopy(nodes)
    purple_nodes[1]["side_inputs"] = ["purple"]
    assert execute(SCENE_B, purple_nodes) == 0  # behind(1) = ()
    assert execute(SCENE_B, {"nodes": purple_nodes}) == 0
    purple_nodes[3]["side_inputs"] = ["front"]
    assert execute(SCENE_B, purple_nodes) == 2


def test_bracketed_names():
    prog = [{"function": "scene", "inputs": []}, {"function": "filter_shape[cylinder]", "inputs": [0]},
            {"function": "count", "inputs": [1]}]
    assert execute(SCENE_B, prog) == 2
    assert E.program_to_str(prog) == "count(filter_shape[cylinder](scene()))"


def test_validate_program_types():
    prog = append(unique_of(("filter_color", "green")), step("query_size", [2]))
    assert E.validate_program(prog) == ("ObjectSet", "ObjectSet", "Object", "Size")
    assert set(E.FUNCTIONS) >= {"scene", "unique", "relate", "union", "intersect", "count", "exist",
                                "equal_integer", "less_than", "greater_than"}
    for attr in E.ATTRIBUTES:
        assert {f"filter_{attr}", f"query_{attr}", f"same_{attr}", f"equal_{attr}"} <= set(E.FUNCTIONS)


def test_execute_does_not_modify_its_arguments():
    scene, prog = copy.deepcopy(SCENE_A), _count_compare("less_than", ("filter_size", "small"),
                                                         ("filter_size", "large"))
    before = copy.deepcopy(prog)
    assert execute(scene, prog) is True
    assert scene == SCENE_A and prog == before


# ----------------------------------------------------------------------------- program errors


def _raises(program, *fragments, scene=SCENE_A, step_index=None):
    with pytest.raises(ProgramError) as info:
        execute(scene, program)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    if step_index is not None:
        assert info.value.step == step_index
        assert f"step {step_index}" in message, message
    return info.value


def test_error_unknown_function():
    err = _raises([step("scene"), step("filter_colour", [0], "red")], "unknown function 'filter_colour'",
                  step_index=1)
    assert err.function == "filter_colour" and isinstance(err, ValueError)
    _raises([step("scene"), step("filter_count", [0], "red")], "template-only", step_index=1)


def test_error_wrong_number_of_inputs():
    _raises([step("scene"), step("scene"), step("count", [0, 1])], "count at step 2 expected 1 input", step_index=2)
    _raises([step("scene"), step("union", [0])], "union at step 1 expected 2 input", step_index=1)
    _raises([step("scene", [])] + [step("scene", [0])], "scene at step 1 expected 0 input", step_index=1)


@pytest.mark.parametrize("bad", [3, 4, 9, -1, "0", 1.0, True])
def test_error_input_not_an_earlier_step(bad):
    prog = [step("scene"), step("filter_color", [0], "red"), step("scene"), {"function": "count",
                                                                              "inputs": [bad], "value_inputs": []}]
    _raises(prog, "count at step 3 expected input 0 to be the index of an earlier step", step_index=3)


def test_error_input_of_the_first_step():
    _raises([step("count", [0])], "count at step 0", "earlier step", step_index=0)


def test_error_unique_over_several_or_no_objects():
    prog = [step("scene"), step("filter_size", [0], "large"), step("filter_material", [1], "rubber"),
            step("unique", [2]), step("query_color", [3])]
    _raises(prog, "unique at step 3 expected exactly one object, got 2: [2, 4]", step_index=3)
    _raises(unique_of(("filter_color", "yellow")), "unique at step 2 expected exactly one object, got 2: [0, 2]",
            scene=SCENE_B, step_index=2)
    _raises(unique_of(("filter_color", "red")), "unique at step 2 expected exactly one object, got 0: []",
            scene=SCENE_B, step_index=2)


def test_error_type_mismatch():
    # count of an object
    _raises(append(unique_of(("filter_color", "green")), step("count", [2])),
            "count at step 3 expected input 0 to be ObjectSet, got Object", step_index=3)
    # filter of an integer
    _raises([step("scene"), step("count", [0]), step("filter_color", [1], "red")],
            "filter_color at step 2 expected input 0 to be ObjectSet, got Integer", step_index=2)
    # query of a set, relate of a set
    _raises([step("scene"), step("query_color", [0])], "query_color at step 1", "Object, got ObjectSet", step_index=1)
    _raises([step("scene"), step("relate", [0], "left")], "relate at step 1", step_index=1)
    # equal_color of a shape and a colour; less_than of booleans
    green = unique_of(("filter_color", "green"))
    _raises(append(green, step("query_shape", [2]), step("query_color", [2]), step("equal_color", [3, 4])),
            "equal_color at step 5 expected input 0 to be Color, got Shape", step_index=5)
    _raises([step("scene"), step("exist", [0]), step("less_than", [1, 1])],
            "less_than at step 2 expected input 0 to be Integer, got Bool", step_index=2)
    # the error is found before running: the bad unique at step 2 is not reached
    _raises(append(unique_of(("filter_color", "yellow")), step("count", [2])), "count at step 3",
            scene=SCENE_B, step_index=3)


def test_error_unknown_values():
    _raises([step("scene"), step("filter_color", [0], "pink")], "filter_color at step 1", "'pink'", "color value",
            step_index=1)
    _raises([step("scene"), step("filter_shape", [0], "red")], "filter_shape at step 1", step_index=1)
    _raises(append(unique_of(("filter_color", "green")), step("relate", [2], "above")),
            "relate at step 3", "'above'", "relation value", step_index=3)
    _raises([step("scene"), step("filter_size", [0])], "filter_size at step 1 expected 1 value input",
            step_index=1)
    _raises([step("scene"), step("count", [0], "red")], "count at step 1 expected no value inputs",
            step_index=1)


def test_error_malformed_programs():
    _raises([], "empty program")
    _raises({"program": []}, "empty program")
    _raises("scene()", "list of steps")
    _raises([step("scene"), "count"], "step 1", step_index=1)
    _raises([step("scene"), {"inputs": [0]}], "step 1", "function name", step_index=1)
    _raises([step("scene"), {"function": "count", "type": "exist", "inputs": [0]}], "step 1", step_index=1)
    _raises([step("scene"), {"function": "filter_color", "inputs": [0], "value_inputs": "red"}],
            "filter_color at step 1 expected 'value_inputs' to be a list", step_index=1)


# ----------------------------------------------------------------------------- scene errors


def test_scene_errors():
    prog = [step("scene"), step("count", [0])]
    with pytest.raises(SceneError, match="no 'objects'"):
        execute({"relationships": {}}, prog)
    bad = copy.deepcopy(SCENE_A)
    del bad["objects"][2]["material"]
    with pytest.raises(ValueError, match=r"objects'\]\[2\] has no 'material'"):
        execute(bad, prog)
    bad = copy.deepcopy(SCENE_A)
    bad["objects"][1]["color"] = "pink"
    with pytest.raises(SceneError, match="pink"):
        execute(bad, prog)
    relate = append(unique_of(("filter_color", "green")), step("relate", [2], "behind"))
    no_rel = copy.deepcopy(SCENE_A)
    del no_rel["relationships"]
    assert execute(no_rel, prog) == 5  # relationships are needed only by relate
    with pytest.raises(SceneError, match="relationships"):
        execute(no_rel, relate)
    short = copy.deepcopy(SCENE_A)
    short["relationships"]["behind"] = short["relationships"]["behind"][:4]
    with pytest.raises(SceneError, match="behind"):
        execute(short, relate)
    out_of_range = copy.deepcopy(SCENE_A)
    out_of_range["relationships"]["behind"][3] = [0, 7]
    with pytest.raises(SceneError, match=r"\[7\]|7"):
        execute(out_of_range, relate)


# ----------------------------------------------------------------------------- answers


def test_answers_map_into_the_vocabulary_and_back():
    assert E.answer_to_index(True) == 0 and E.answer_to_index(False) == 1
    assert E.answer_to_index(np.bool_(True)) == 0
    for k in range(11):
        assert E.index_to_answer(E.answer_to_index(k)) == str(k)
        assert E.answer_to_index(np.int64(k)) == E.answer_to_index(str(k)) == 2 + k
    for i, answer in enumerate(E.ANSWERS):
        assert E.answer_to_index(answer) == i and E.index_to_answer(i) == answer
    # every kind of executor output lands in the vocabulary
    outputs = [execute(SCENE_A, p) for p in (
        [step("scene"), step("count", [0])],
        [step("scene"), step("exist", [0])],
        append(unique_of(("filter_color", "green")), step("query_color", [2])),
        append(unique_of(("filter_color", "green")), step("query_shape", [2])),
        append(unique_of(("filter_color", "green")), step("query_material", [2])),
        append(unique_of(("filter_color", "green")), step("query_size", [2])),
    )]
    assert [E.index_to_answer(E.answer_to_index(v)) for v in outputs] == ["5", "yes", "green", "sphere", "metal",
                                                                          "small"]


def test_answer_errors():
    with pytest.raises(ValueError, match="count 11 is outside"):
        E.answer_to_index(11)
    with pytest.raises(ValueError, match="outside"):
        E.answer_to_index(-1)
    with pytest.raises(ValueError, match="'pink'"):
        E.answer_to_index("pink")
    with pytest.raises(TypeError):
        E.answer_to_index((0, 1))  # an object set is not an answer
    with pytest.raises(TypeError):
        E.answer_to_index(2.0)
    with pytest.raises(ValueError, match="28"):
        E.index_to_answer(28)
    with pytest.raises(ValueError):
        E.index_to_answer(-1)
    with pytest.raises(TypeError):
        E.index_to_answer("3")

"""An executor for CLEVR's functional programs, over scenes in CLEVR's scene JSON schema.

A CLEVR question carries a program: a list of steps, each
`{"function": name, "inputs": [earlier step indices], "value_inputs": [attribute or relation]}`;
the answer is the last step's value. `execute(scene, program)` runs one, with CLEVR's
semantics (those of the CLEVR dataset generator's question engine):

==================================  ==============================  ===================================
function                            inputs -> output                value
==================================  ==============================  ===================================
scene                               () -> ObjectSet                 all objects
filter_{color,shape,material,size}  (ObjectSet) -> ObjectSet        those with `value_inputs[0]`
unique                              (ObjectSet) -> Object           the only member; 0 or >1: error
relate                              (Object) -> ObjectSet           `scene["relationships"][rel][obj]`
union, intersect                    (ObjectSet, ObjectSet)          set union / intersection
count                               (ObjectSet) -> Integer          its size
exist                               (ObjectSet) -> Bool             non-empty
query_{color,shape,material,size}   (Object) -> attribute value     the object's attribute
same_{color,shape,material,size}    (Object) -> ObjectSet           the OTHER objects sharing it
equal_{color,shape,material,size}   (attr, attr) -> Bool            equality
equal_integer, less_than,           (Integer, Integer) -> Bool      a == b, a < b, a > b
greater_than                                                        (a = first input)
equal_object                        (Object, Object) -> Bool        same object (in CLEVR's metadata,
                                                                    never used by its templates)
==================================  ==============================  ===================================

Values: an ObjectSet is a sorted tuple of object indices (positions in `scene["objects"]`),
an Object an `int` index, an Integer an `int`, a Bool a `bool`, an attribute value its
string. `relationships[R][i]` lists the objects standing in relation R to object i
(`relationships["right"][0]` = the objects right of object 0), so `relate[right]` applied
to object i gives the objects to its right.

Programs are type-checked before anything runs (`validate_program`): the function names,
the number of inputs and value inputs, that each input refers to an earlier step, that
input types match (`count` of an Object, a filter of an Integer, `equal_color` of a shape
are errors; Colour, Shape, Material and Size are distinct types), and that attribute
values and relation names belong to CLEVR's vocabulary. The only error found while
running is a `unique` over zero or several objects. Every program error is a
`ProgramError` (a `ValueError`) naming the step index and function; a malformed scene
raises `SceneError` (a `ValueError`).

Accepted step forms (all may be mixed within one program):

- CLEVR v1.0 question files: `{"function", "inputs", "value_inputs"}`;
- the CLEVR generator's templates and question engine: `{"type", "inputs", "side_inputs"}`
  (`inputs` may be omitted for `scene`, `side_inputs` when there are none);
- the bracketed names of the CLEVR-IEP code, e.g. `{"function": "filter_color[red]",
  "inputs": [0]}`, with no separate value inputs.

`program` may also be a whole question dict (its `"program"`, or a template's `"nodes"`).
The generator's template-only macros (`filter_unique`, `relate_filter_count`, ...) are not
executed: expand them first. `program_to_str` writes a program as one nested line,
`count(relate[behind](unique(filter_color[red](scene()))))`.

Answers: `ANSWERS` is CLEVR's 28-answer vocabulary in a fixed order (yes, no, the counts
0..10, the 8 colours, 3 shapes, 2 materials, 2 sizes, each group in the order of the
constants below); `answer_to_index` / `index_to_answer` convert between executor outputs
and indices.
"""

import numbers
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from relzoo.datasets.clevr.scenes import COLORS, MATERIALS, RELATIONS, SHAPES, SIZES

ATTRIBUTES = ("color", "shape", "material", "size")
ATTRIBUTE_VALUES = MappingProxyType({"color": COLORS, "shape": SHAPES, "material": MATERIALS, "size": SIZES})
MAX_COUNT = 10  # the largest count in CLEVR's answer vocabulary

ANSWERS = (("yes", "no") + tuple(str(k) for k in range(MAX_COUNT + 1))
           + COLORS + SHAPES + MATERIALS + SIZES)
_ANSWER_INDEX = {a: i for i, a in enumerate(ANSWERS)}

# CLEVR's type names (the generator's metadata.json); each attribute is its own type
OBJECT_SET, OBJECT, INTEGER, BOOL = "ObjectSet", "Object", "Integer", "Bool"
RELATION = "Relation"
ATTRIBUTE_TYPES = MappingProxyType({"color": "Color", "shape": "Shape", "material": "Material", "size": "Size"})
_VOCAB = {ATTRIBUTE_TYPES[a]: ATTRIBUTE_VALUES[a] for a in ATTRIBUTES}
_VOCAB[RELATION] = RELATIONS

TEMPLATE_ONLY = ("filter", "filter_unique", "filter_count", "filter_exist",
                 "relate_filter", "relate_filter_unique", "relate_filter_count", "relate_filter_exist")


class Signature(NamedTuple):
    """A function's types: `inputs` (types of its input steps), `value_inputs`, `output`."""

    inputs: tuple
    value_inputs: tuple
    output: str


def _signatures():
    sig = {
        "scene": Signature((), (), OBJECT_SET),
        "unique": Signature((OBJECT_SET,), (), OBJECT),
        "relate": Signature((OBJECT,), (RELATION,), OBJECT_SET),
        "union": Signature((OBJECT_SET, OBJECT_SET), (), OBJECT_SET),
        "intersect": Signature((OBJECT_SET, OBJECT_SET), (), OBJECT_SET),
        "count": Signature((OBJECT_SET,), (), INTEGER),
        "exist": Signature((OBJECT_SET,), (), BOOL),
        "equal_integer": Signature((INTEGER, INTEGER), (), BOOL),
        "less_than": Signature((INTEGER, INTEGER), (), BOOL),
        "greater_than": Signature((INTEGER, INTEGER), (), BOOL),
        "equal_object": Signature((OBJECT, OBJECT), (), BOOL),
    }
    for attr in ATTRIBUTES:
        t = ATTRIBUTE_TYPES[attr]
        sig[f"filter_{attr}"] = Signature((OBJECT_SET,), (t,), OBJECT_SET)
        sig[f"query_{attr}"] = Signature((OBJECT,), (), t)
        sig[f"same_{attr}"] = Signature((OBJECT,), (), OBJECT_SET)
        sig[f"equal_{attr}"] = Signature((t, t), (), BOOL)
    return MappingProxyType(sig)


FUNCTIONS = _signatures()  # name -> Signature: the program vocabulary this executor runs


class ProgramError(ValueError):
    """An invalid program, or a `unique` over zero or several objects.

    `step` is the index of the offending step (None for a program-level problem such as an
    empty program) and `function` its function name when known.
    """

    def __init__(self, message, step=None, function=None):
        super().__init__(message)
        self.step = step
        self.function = function


class SceneError(ValueError):
    """A scene that does not follow CLEVR's scene schema (as far as the program needs it)."""


# ----------------------------------------------------------------------------- programs


class _Step(NamedTuple):
    function: str
    inputs: tuple
    value_inputs: tuple


def _program_steps(program):
    """The list of steps of a program, or of a question dict holding one."""
    if isinstance(program, dict):
        for key in ("program", "nodes"):
            if key in program:
                program = program[key]
                break
        else:
            raise ProgramError("a program must be a list of steps, or a question dict with a 'program' "
                               f"(or template 'nodes'); got a dict with keys {sorted(program)}")
    if isinstance(program, (str, bytes)) or not hasattr(program, "__len__") or not hasattr(program, "__getitem__"):
        raise ProgramError(f"a program must be a list of steps, got {type(program).__name__}")
    if len(program) == 0:
        raise ProgramError("empty program: expected at least one step")
    return program


def _parse_step(i, raw):
    """One raw step -> `_Step`, checking its form and that its inputs are earlier steps."""
    if not isinstance(raw, dict):
        raise ProgramError(f"step {i} expected a dict with 'function', 'inputs', 'value_inputs', "
                           f"got {type(raw).__name__}: {raw!r}", step=i)
    if "function" in raw and "type" in raw and raw["function"] != raw["type"]:
        raise ProgramError(f"step {i} has both 'function' ({raw['function']!r}) and 'type' ({raw['type']!r})", step=i)
    name = raw.get("function", raw.get("type"))
    if not isinstance(name, str):
        raise ProgramError(f"step {i} expected a function name under 'function' (or 'type'), got {name!r}", step=i)
    values, side = raw.get("value_inputs"), raw.get("side_inputs")
    for key, v in (("value_inputs", values), ("side_inputs", side)):
        if v is not None and not isinstance(v, (list, tuple)):
            raise ProgramError(f"{name} at step {i} expected {key!r} to be a list, got {v!r}", step=i, function=name)
    if values is not None and side is not None and list(values) != list(side):
        raise ProgramError(f"{name} at step {i} has both 'value_inputs' {list(values)} and "
                           f"'side_inputs' {list(side)}", step=i, function=name)
    values = values if values is not None else side if side is not None else []
    if "[" in name and name.endswith("]"):  # CLEVR-IEP's "filter_color[red]"
        base, _, bracket = name[:-1].partition("[")
        if values:
            raise ProgramError(f"{name} at step {i} has a bracketed value and 'value_inputs' {list(values)}",
                               step=i, function=name)
        name, values = base, bracket.split(",")
    inputs = raw.get("inputs", [])
    if isinstance(inputs, str) or not isinstance(inputs, (list, tuple)):
        raise ProgramError(f"{name} at step {i} expected 'inputs' to be a list of step indices, got {inputs!r}",
                           step=i, function=name)
    for k, j in enumerate(inputs):
        if isinstance(j, (bool, np.bool_)) or not isinstance(j, numbers.Integral) or not 0 <= j < i:
            earlier = f"0..{i - 1}" if i else "there is none before the first step"
            raise ProgramError(f"{name} at step {i} expected input {k} to be the index of an earlier step "
                               f"({earlier}), got {j!r}", step=i, function=name)
    return _Step(name, tuple(int(j) for j in inputs), tuple(values))


def _typed_steps(program):
    """Parse and type-check a program; returns (steps, output types)."""
    steps, types = [], []
    for i, raw in enumerate(_program_steps(program)):
        step = _parse_step(i, raw)
        name = step.function
        if name not in FUNCTIONS:
            hint = (" (a template-only function of the CLEVR generator: expand it into CLEVR functions first)"
                    if name in TEMPLATE_ONLY else "")
            raise ProgramError(f"unknown function {name!r} at step {i}{hint}; expected one of "
                               f"{', '.join(sorted(FUNCTIONS))}", step=i, function=name)
        sig = FUNCTIONS[name]
        if len(step.inputs) != len(sig.inputs):
            raise ProgramError(f"{name} at step {i} expected {len(sig.inputs)} input(s) "
                               f"({', '.join(sig.inputs) or 'none'}), got {len(step.inputs)}: {list(step.inputs)}",
                               step=i, function=name)
        for k, (j, want) in enumerate(zip(step.inputs, sig.inputs)):
            if types[j] != want:
                raise ProgramError(f"{name} at step {i} expected input {k} to be {want}, got {types[j]} "
                                   f"(the output of {steps[j].function} at step {j})", step=i, function=name)
        if len(step.value_inputs) != len(sig.value_inputs):
            want = (f"{len(sig.value_inputs)} value input(s) ({', '.join(sig.value_inputs)})"
                    if sig.value_inputs else "no value inputs")
            raise ProgramError(f"{name} at step {i} expected {want}, got {list(step.value_inputs)}",
                               step=i, function=name)
        for v, want in zip(step.value_inputs, sig.value_inputs):
            if v not in _VOCAB[want]:
                raise ProgramError(f"{name} at step {i} expected a {want.lower()} value, one of "
                                   f"{', '.join(_VOCAB[want])}; got {v!r}", step=i, function=name)
        steps.append(step)
        types.append(sig.output)
    return steps, types


def validate_program(program):
    """Check a program without running it; returns the output type of each step (a tuple of
    CLEVR type names: "ObjectSet", "Object", "Integer", "Bool", "Color", ...).

    Raises `ProgramError` naming the step and function: unknown function, wrong number of
    inputs or value inputs, an input that is not an earlier step, a type mismatch, an
    attribute value or relation outside CLEVR's vocabulary, or an empty program.
    """
    return tuple(_typed_steps(program)[1])


def program_to_str(program):
    """The program as one nested line, e.g. `count(relate[behind](unique(filter_color[red](scene()))))`.

    Written from the last step; a step used twice appears twice, steps the last step does not
    depend on do not appear. Only the form of the steps is checked (not names or types), so
    this also prints programs that `execute` rejects.
    """
    text = []
    for i, raw in enumerate(_program_steps(program)):
        step = _parse_step(i, raw)
        values = f"[{','.join(str(v) for v in step.value_inputs)}]" if step.value_inputs else ""
        text.append(f"{step.function}{values}({', '.join(text[j] for j in step.inputs)})")
    return text[-1]


# ----------------------------------------------------------------------------- scenes


def validate_scene(scene, relations=()):
    """Check a scene dict as far as execution needs: `objects`, a list of dicts each with a
    color, shape, material and size from CLEVR's vocabulary, and, for each name in
    `relations`, `relationships[name]`: one list of object indices per object.
    Raises `SceneError` (a `ValueError`)."""
    if not isinstance(scene, dict):
        raise SceneError(f"a scene must be a dict in CLEVR's scene schema, got {type(scene).__name__}")
    objects = scene.get("objects")
    if not isinstance(objects, (list, tuple)):
        raise SceneError(f"scene['objects'] must be a list of objects, got {objects!r}"
                         if "objects" in scene else f"the scene has no 'objects' (keys: {sorted(scene)})")
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            raise SceneError(f"scene['objects'][{i}] must be a dict, got {type(obj).__name__}")
        for attr in ATTRIBUTES:
            if attr not in obj:
                raise SceneError(f"scene['objects'][{i}] has no {attr!r} (it needs {', '.join(ATTRIBUTES)})")
            if obj[attr] not in ATTRIBUTE_VALUES[attr]:
                raise SceneError(f"scene['objects'][{i}][{attr!r}] is {obj[attr]!r}; expected one of "
                                 f"{', '.join(ATTRIBUTE_VALUES[attr])}")
    n = len(objects)
    if not relations:
        return
    rels = scene.get("relationships")
    if not isinstance(rels, dict):
        raise SceneError("the program uses relate but the scene has no 'relationships' dict "
                         f"(got {rels!r})")
    for name in relations:
        if name not in rels:
            raise SceneError(f"the program uses relate[{name}] but scene['relationships'] has no {name!r} "
                             f"(it has {sorted(rels)})")
        table = rels[name]
        if not isinstance(table, (list, tuple)) or len(table) != n:
            got = f"{len(table)} entries" if isinstance(table, (list, tuple)) else repr(table)
            raise SceneError(f"scene['relationships'][{name!r}] must hold one list per object ({n}), got {got}")
        for i, related in enumerate(table):
            if not isinstance(related, (list, tuple)) or not all(
                    isinstance(j, numbers.Integral) and not isinstance(j, (bool, np.bool_)) and 0 <= j < n
                    for j in related):
                raise SceneError(f"scene['relationships'][{name!r}][{i}] must be a list of object indices "
                                 f"in 0..{n - 1}, got {related!r}")


# ----------------------------------------------------------------------------- execution


def _as_set(indices):
    return tuple(sorted(set(int(j) for j in indices)))


def _run_step(i, step, args, objects, relationships):
    name, (value,) = step.function, step.value_inputs or (None,)
    if name == "scene":
        return tuple(range(len(objects)))
    if name.startswith("filter_"):
        attr = name[len("filter_"):]
        return tuple(j for j in args[0] if objects[j][attr] == value)
    if name == "unique":
        if len(args[0]) != 1:
            raise ProgramError(f"unique at step {i} expected exactly one object, got {len(args[0])}: "
                               f"{list(args[0])}", step=i, function=name)
        return args[0][0]
    if name == "relate":
        return _as_set(relationships[value][args[0]])
    if name == "union":
        return _as_set(set(args[0]) | set(args[1]))
    if name == "intersect":
        return _as_set(set(args[0]) & set(args[1]))
    if name == "count":
        return len(args[0])
    if name == "exist":
        return len(args[0]) > 0
    if name.startswith("query_"):
        return objects[args[0]][name[len("query_"):]]
    if name.startswith("same_"):
        attr, obj = name[len("same_"):], args[0]
        return tuple(j for j in range(len(objects)) if j != obj and objects[j][attr] == objects[obj][attr])
    if name.startswith("equal_"):  # equal_<attribute>, equal_integer, equal_object
        return args[0] == args[1]
    if name == "less_than":
        return args[0] < args[1]
    if name == "greater_than":
        return args[0] > args[1]
    raise AssertionError(f"no handler for {name}")  # FUNCTIONS and this function disagree


def execute(scene, program, return_trace=False):
    """Run a CLEVR program on a scene; returns the last step's value.

    Args:
        scene: a scene dict in CLEVR's scene schema (`objects`, and `relationships` when the
            program uses `relate`).
        program: a list of steps (see the module docstring for the accepted forms), or a
            question dict holding one under "program".
        return_trace: also return the list of every step's value.

    Returns:
        The answer: a `bool` (exist, equal_*, less_than, greater_than), an `int` (count), an
        attribute string (query_*); or, for programs that end earlier, a sorted tuple of object
        indices (an object set) or an `int` object index. With `return_trace`,
        `(answer, [value of step 0, value of step 1, ...])`.

    Raises:
        ProgramError: an invalid program (checked before running) or a `unique` over zero or
            several objects; the message names the step index and function.
        SceneError: a scene missing what the program needs.
    """
    steps, _ = _typed_steps(program)
    relations = tuple(dict.fromkeys(s.value_inputs[0] for s in steps if s.function == "relate"))
    validate_scene(scene, relations)
    objects, relationships = scene["objects"], scene.get("relationships")
    trace = []
    for i, step in enumerate(steps):
        trace.append(_run_step(i, step, [trace[j] for j in step.inputs], objects, relationships))
    return (trace[-1], trace) if return_trace else trace[-1]


# ----------------------------------------------------------------------------- answers


def answer_to_index(value):
    """Index in `ANSWERS` of an executor output: a bool -> "yes"/"no", an int -> its decimal
    string ("0".."10"), a string as it is (an answer string from a question file also works).

    Raises `ValueError` for a value outside the vocabulary (a count of 11, "pink") and
    `TypeError` for other kinds of value (an object set, a float)."""
    if isinstance(value, (bool, np.bool_)):
        return _ANSWER_INDEX["yes" if value else "no"]
    if isinstance(value, numbers.Integral):
        if not 0 <= value <= MAX_COUNT:
            raise ValueError(f"count {int(value)} is outside CLEVR's answer vocabulary (counts 0..{MAX_COUNT})")
        return _ANSWER_INDEX[str(int(value))]
    if isinstance(value, str):
        if value not in _ANSWER_INDEX:
            raise ValueError(f"{value!r} is not in CLEVR's answer vocabulary: {', '.join(ANSWERS)}")
        return _ANSWER_INDEX[value]
    raise TypeError(f"an answer must be a bool, an int count or an answer string, got "
                    f"{type(value).__name__}: {value!r}")


def index_to_answer(index):
    """The answer string at `index` of `ANSWERS` (0..27); `ValueError` outside that range."""
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
        raise TypeError(f"an answer index must be an int, got {type(index).__name__}: {index!r}")
    if not 0 <= index < len(ANSWERS):
        raise ValueError(f"answer index {int(index)} is outside 0..{len(ANSWERS) - 1}")
    return ANSWERS[int(index)]


__all__ = [
    "ANSWERS",
    "ATTRIBUTES",
    "ATTRIBUTE_VALUES",
    "COLORS",
    "FUNCTIONS",
    "MATERIALS",
    "MAX_COUNT",
    "RELATIONS",
    "SHAPES",
    "SIZES",
    "ProgramError",
    "SceneError",
    "Signature",
    "answer_to_index",
    "execute",
    "index_to_answer",
    "program_to_str",
    "validate_program",
    "validate_scene",
]

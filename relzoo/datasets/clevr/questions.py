"""Question generation for the CLEVR-format world: families, programs, English, balance.

Each question family is a program skeleton over CLEVR's functions with slots for object
descriptions (any subset of size, colour, material, shape), relations and queried
attributes, plus English templates with synonyms. Generating a question:

1. pick a family (uniformly), fill its slots at random from the scene's own objects;
2. build the program in CLEVR's JSON form and run it with the executor, which also
   checks that every `unique` names exactly one object;
3. reject degenerate questions, as CLEVR does: a description that does not pick exactly
   one object where one is needed; a query or comparison of an attribute the question
   already states; comparisons of an object with itself; a relation from an object to
   nothing where an object is needed;
4. balance answers within each family: a question whose answer is already over-represented
   in its family (more than `BALANCE_SLACK` times the family's mean count per answer, plus
   a few) is rejected and the family tries again.

Families cover CLEVR's five categories: exist, count, compare_integer, query_attribute,
compare_attribute; with zero, one and two relation hops, `same_<attr>` questions, and
and/or combinations (`intersect`, `union`). Each question records its family and category.
"""

import re

import numpy as np

from relzoo.datasets.clevr import executor
from relzoo.datasets.clevr.scenes import COLORS, RELATIONS

ATTRIBUTES = ("size", "color", "material", "shape")
VALUES = executor.ATTRIBUTE_VALUES
CATEGORIES = ("exist", "count", "compare_integer", "query_attribute", "compare_attribute")
BALANCE_SLACK = 1.1
FAMILY_ATTEMPTS = 40
MAX_ATTEMPTS = 200

# words, with synonyms drawn at random
_SHAPE_WORDS = {"cube": ("cube", "block"), "sphere": ("sphere", "ball"), "cylinder": ("cylinder",)}
_SHAPE_PLURALS = {"cube": ("cubes", "blocks"), "sphere": ("spheres", "balls"), "cylinder": ("cylinders",)}
_THING = ("thing", "object")
_THINGS = ("things", "objects")
_MATERIAL_WORDS = {"rubber": ("rubber", "matte"), "metal": ("metal", "metallic", "shiny")}
_SIZE_WORDS = {"large": ("large", "big"), "small": ("small", "tiny")}
_RELATION_WORDS = {
    "left": ("left of", "to the left of", "on the left side of"),
    "right": ("right of", "to the right of", "on the right side of"),
    "front": ("in front of",),
    "behind": ("behind",),
}


class _Builder:
    """Accumulates program steps (CLEVR's list-of-dicts form)."""

    def __init__(self):
        self.steps = []

    def add(self, function, inputs=(), value=None):
        self.steps.append({"function": function, "inputs": list(inputs),
                           "value_inputs": [] if value is None else [value]})
        return len(self.steps) - 1

    def filters(self, source, desc):
        for attr in ATTRIBUTES:
            if attr in desc:
                source = self.add(f"filter_{attr}", [source], desc[attr])
        return source

    def scene_set(self, desc):
        return self.filters(self.add("scene"), desc)


class _Words:
    def __init__(self, rng):
        self.rng = rng

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def noun_phrase(self, desc, plural=False):
        """'large red metal cube', 'small things', 'rubber objects' ..."""
        words = []
        if "size" in desc:
            words.append(self.pick(_SIZE_WORDS[desc["size"]]))
        if "color" in desc:
            words.append(desc["color"])
        if "material" in desc:
            words.append(self.pick(_MATERIAL_WORDS[desc["material"]]))
        if "shape" in desc:
            words.append(self.pick((_SHAPE_PLURALS if plural else _SHAPE_WORDS)[desc["shape"]]))
        else:
            words.append(self.pick(_THINGS if plural else _THING))
        return " ".join(words)

    def relation(self, rel):
        return self.pick(_RELATION_WORDS[rel])


def _object_desc(obj, rng, min_attrs=1):
    """A random description (subset of attributes) of an object."""
    k = int(rng.integers(min_attrs, len(ATTRIBUTES) + 1))
    attrs = rng.choice(ATTRIBUTES, size=k, replace=False)
    return {a: obj[a] for a in attrs}


def _set_desc(rng, min_attrs=0, max_attrs=2):
    """A random description of a set of objects (values drawn from the vocabulary)."""
    k = int(rng.integers(min_attrs, max_attrs + 1))
    attrs = rng.choice(ATTRIBUTES, size=k, replace=False)
    return {a: VALUES[a][int(rng.integers(len(VALUES[a])))] for a in attrs}


def _matching(scene, desc, among=None):
    idx = range(len(scene["objects"])) if among is None else among
    return [i for i in idx if all(scene["objects"][i][a] == v for a, v in desc.items())]


def _unique_ref(scene, rng, b, w, exclude_attrs=(), target=None):
    """Steps naming exactly one object by a description; returns (step, object index, text, desc) or None."""
    objects = scene["objects"]
    target = int(rng.integers(len(objects))) if target is None else target
    for _ in range(8):
        desc = _object_desc(objects[target], rng)
        for a in exclude_attrs:
            desc.pop(a, None)
        if _matching(scene, desc) == [target]:
            step = b.add("unique", [b.scene_set(desc)])
            return step, target, "the " + w.noun_phrase(desc), desc
    return None


def _related_ref(scene, rng, b, w, hops, exclude_attrs=()):
    """'the <desc> [that is] <rel> the <...>' with `hops` relation hops; (step, index, text, desc) or None."""
    base = _unique_ref(scene, rng, b, w)
    if base is None:
        return None
    step, obj, text, desc = base
    for _ in range(hops):
        rel = RELATIONS[int(rng.integers(len(RELATIONS)))]
        candidates = scene["relationships"][rel][obj]
        if not candidates:
            return None
        nxt = int(candidates[int(rng.integers(len(candidates)))])
        d = _object_desc(scene["objects"][nxt], rng)
        for a in exclude_attrs:
            d.pop(a, None)
        if _matching(scene, d, candidates) != [nxt]:
            return None
        step = b.add("unique", [b.filters(b.add("relate", [step], rel), d)])
        text = f"the {w.noun_phrase(d)} [that is] {w.relation(rel)} {text}"
        obj, desc = nxt, d
    return step, obj, text, desc


def _clean(text):
    text = text.replace(" [that is] ", " that is ")
    text = re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", text)  # "a object" -> "an object"
    return text[0].upper() + text[1:]


# ------------------------------------------------------------------------- families
def _exist(scene, rng, hops):
    b, w = _Builder(), _Words(rng)
    d = _set_desc(rng, 1, 2)
    if hops == 0:
        b.add("exist", [b.scene_set(d)])
        phrase = w.pick(("Are there any {}?", "Is there a {}?", "Are any {} visible?"))
        return b.steps, _clean(phrase.format(w.noun_phrase(d, plural=not phrase.startswith("Is there"))))
    ref = _related_ref(scene, rng, b, w, hops - 1)
    if ref is None:
        return None
    step, _, text, _ = ref
    rel = RELATIONS[int(rng.integers(len(RELATIONS)))]
    b.add("exist", [b.filters(b.add("relate", [step], rel), d)])
    return b.steps, _clean(f"Is there a {w.noun_phrase(d)} {w.relation(rel)} {text}?")


def _count(scene, rng, hops):
    b, w = _Builder(), _Words(rng)
    d = _set_desc(rng, 0 if hops else 1, 2)
    if hops == 0:
        b.add("count", [b.scene_set(d)])
        phrase = w.pick(("How many {} are there?", "What number of {} are there?", "How many {} are visible?"))
        return b.steps, _clean(phrase.format(w.noun_phrase(d, plural=True)))
    ref = _related_ref(scene, rng, b, w, hops - 1)
    if ref is None:
        return None
    step, _, text, _ = ref
    rel = RELATIONS[int(rng.integers(len(RELATIONS)))]
    b.add("count", [b.filters(b.add("relate", [step], rel), d)])
    lead = w.pick(("How many", "What number of"))
    return b.steps, _clean(f"{lead} {w.noun_phrase(d, plural=True)} are {w.relation(rel)} {text}?")


def _count_or(scene, rng):
    b, w = _Builder(), _Words(rng)
    d1, d2 = _set_desc(rng, 1, 2), _set_desc(rng, 1, 2)
    if d1 == d2:
        return None
    b.add("count", [b.add("union", [b.scene_set(d1), b.scene_set(d2)])])
    return b.steps, _clean(f"How many things are {w.noun_phrase(d1, plural=True)} or {w.noun_phrase(d2, plural=True)}?")


def _and_relations(scene, rng, category):
    """Objects in relation to two different objects: count / exist of an intersect."""
    b, w = _Builder(), _Words(rng)
    r1 = _unique_ref(scene, rng, b, w)
    r2 = _unique_ref(scene, rng, b, w)
    if r1 is None or r2 is None or r1[1] == r2[1]:
        return None
    rel1, rel2 = (RELATIONS[int(i)] for i in rng.integers(len(RELATIONS), size=2))
    d = _set_desc(rng, 0, 1)
    both = b.add("intersect", [b.add("relate", [r1[0]], rel1), b.add("relate", [r2[0]], rel2)])
    last = b.filters(both, d)
    phrase = w.noun_phrase(d, plural=category == "count")
    if category == "count":
        b.add("count", [last])
        return b.steps, _clean(f"How many {phrase} are {w.relation(rel1)} {r1[2]} and {w.relation(rel2)} {r2[2]}?")
    b.add("exist", [last])
    return b.steps, _clean(f"Is there a {phrase} that is {w.relation(rel1)} {r1[2]} and {w.relation(rel2)} {r2[2]}?")


def _compare_integer(scene, rng, hops=0):
    """Compare two counts; with `hops`=1 the first count is of objects in a relation to one object."""
    b, w = _Builder(), _Words(rng)
    d1, d2 = _set_desc(rng, 1, 2), _set_desc(rng, 1, 2)
    if hops == 0 and d1 == d2:
        return None
    if hops == 0:
        c1 = b.add("count", [b.scene_set(d1)])
        p1 = w.noun_phrase(d1, plural=True)
    else:
        ref = _unique_ref(scene, rng, b, w)
        if ref is None:
            return None
        rel = RELATIONS[int(rng.integers(len(RELATIONS)))]
        c1 = b.add("count", [b.filters(b.add("relate", [ref[0]], rel), d1)])
        p1 = f"{w.noun_phrase(d1, plural=True)} {w.relation(rel)} {ref[2]}"
    c2 = b.add("count", [b.scene_set(d2)])
    kind = ("greater_than", "less_than", "equal_integer")[int(rng.integers(3))]
    b.add(kind, [c1, c2])
    p2 = w.noun_phrase(d2, plural=True)
    if rng.random() < 0.5:
        text = {"greater_than": f"Are there more {p1} than {p2}?",
                "less_than": f"Are there fewer {p1} than {p2}?",
                "equal_integer": f"Are there the same number of {p1} and {p2}?"}[kind]
    else:
        text = {"greater_than": f"Is the number of {p1} greater than the number of {p2}?",
                "less_than": f"Is the number of {p1} less than the number of {p2}?",
                "equal_integer": f"Is the number of {p1} the same as the number of {p2}?"}[kind]
    return b.steps, _clean(text)


def _query(scene, rng, hops):
    b, w = _Builder(), _Words(rng)
    attr = ATTRIBUTES[int(rng.integers(len(ATTRIBUTES)))]
    ref = _unique_ref(scene, rng, b, w, exclude_attrs=(attr,)) if hops == 0 else \
        _related_ref(scene, rng, b, w, hops, exclude_attrs=(attr,))
    if ref is None:
        return None
    step, _, text, desc = ref
    if attr in desc:
        return None
    b.add(f"query_{attr}", [step])
    if rng.random() < 0.3:  # CLEVR's two-clause form: "There is a ...; what is its size?"
        its = {"shape": "what shape is it", "material": "what is it made of", "size": "what size is it",
               "color": "what color is it"}[attr]
        q = f"There is {'a' + text[3:] if text.startswith('the ') else text}; {its}?"
    elif attr == "shape":
        q = f"What shape is {text}?"
    elif attr == "material":
        q = f"What is {text} made of?" if rng.random() < 0.5 else f"What material is {text}?"
    else:
        q = f"What {attr} is {text}?"
    return b.steps, _clean(q)


def _compare_attribute(scene, rng, hops):
    b, w = _Builder(), _Words(rng)
    attr = ATTRIBUTES[int(rng.integers(len(ATTRIBUTES)))]
    r1 = _unique_ref(scene, rng, b, w, exclude_attrs=(attr,)) if hops == 0 else \
        _related_ref(scene, rng, b, w, 1, exclude_attrs=(attr,))
    r2 = _unique_ref(scene, rng, b, w, exclude_attrs=(attr,))
    if r1 is None or r2 is None or r1[1] == r2[1] or attr in r1[3] or attr in r2[3]:
        return None
    q1 = b.add(f"query_{attr}", [r1[0]])
    q2 = b.add(f"query_{attr}", [r2[0]])
    b.add(f"equal_{attr}", [q1, q2])
    verb = {"size": "the same size as", "color": "the same color as", "material": "made of the same material as",
            "shape": "the same shape as"}[attr]
    lead = "Is" if attr in ("size", "shape", "material") else "Does"
    tail = f"{verb} {r2[2]}" if lead == "Is" else f"have the same color as {r2[2]}"
    return b.steps, _clean(f"{lead} {r1[2]} {tail}?")


def _same(scene, rng, category):
    """same_<attr>: count / exist / query over the other objects sharing an attribute with one."""
    b, w = _Builder(), _Words(rng)
    attr = ATTRIBUTES[int(rng.integers(len(ATTRIBUTES)))]
    ref = _unique_ref(scene, rng, b, w, exclude_attrs=(attr,))
    if ref is None:
        return None
    step, obj, text, desc = ref
    same = b.add(f"same_{attr}", [step])
    noun = attr
    if category == "count":
        d = _set_desc(rng, 0, 1)
        d.pop(attr, None)
        b.add("count", [b.filters(same, d)])
        return b.steps, _clean(f"How many other {w.noun_phrase(d, plural=True)} have the same {noun} as {text}?")
    if category == "exist":
        d = _set_desc(rng, 0, 1)
        d.pop(attr, None)
        b.add("exist", [b.filters(same, d)])
        return b.steps, _clean(f"Is there another {w.noun_phrase(d)} that has the same {noun} as {text}?")
    # query: the unique other object sharing the attribute
    others = [i for i in _matching(scene, {attr: scene["objects"][obj][attr]}) if i != obj]
    if not others:
        return None
    target = int(others[int(rng.integers(len(others)))])
    qattr = [a for a in ATTRIBUTES if a != attr][int(rng.integers(len(ATTRIBUTES) - 1))]
    d = {a: v for a, v in _object_desc(scene["objects"][target], rng, 0).items() if a not in (attr, qattr)}
    if _matching(scene, d, others) != [target]:
        return None
    b.add(f"query_{qattr}", [b.add("unique", [b.filters(same, d)])])
    return b.steps, _clean(f"What {qattr} is the other {w.noun_phrase(d)} that has the same {noun} "
                           f"as {text}?")


# name -> (category, relation hops, maker)
FAMILIES = {
    "exist_0": ("exist", 0, lambda s, r: _exist(s, r, 0)),
    "exist_1": ("exist", 1, lambda s, r: _exist(s, r, 1)),
    "exist_2": ("exist", 2, lambda s, r: _exist(s, r, 2)),
    "exist_and": ("exist", 1, lambda s, r: _and_relations(s, r, "exist")),
    "exist_same": ("exist", 0, lambda s, r: _same(s, r, "exist")),
    "count_0": ("count", 0, lambda s, r: _count(s, r, 0)),
    "count_1": ("count", 1, lambda s, r: _count(s, r, 1)),
    "count_2": ("count", 2, lambda s, r: _count(s, r, 2)),
    "count_or": ("count", 0, _count_or),
    "count_and": ("count", 1, lambda s, r: _and_relations(s, r, "count")),
    "count_same": ("count", 0, lambda s, r: _same(s, r, "count")),
    "compare_integer_0": ("compare_integer", 0, lambda s, r: _compare_integer(s, r, 0)),
    "compare_integer_1": ("compare_integer", 1, lambda s, r: _compare_integer(s, r, 1)),
    "query_0": ("query_attribute", 0, lambda s, r: _query(s, r, 0)),
    "query_1": ("query_attribute", 1, lambda s, r: _query(s, r, 1)),
    "query_2": ("query_attribute", 2, lambda s, r: _query(s, r, 2)),
    "query_same": ("query_attribute", 0, lambda s, r: _same(s, r, "query")),
    "compare_attribute_0": ("compare_attribute", 0, lambda s, r: _compare_attribute(s, r, 0)),
    "compare_attribute_1": ("compare_attribute", 1, lambda s, r: _compare_attribute(s, r, 1)),
}
FAMILY_NAMES = tuple(FAMILIES)


_YES_NO = ("yes", "no")
_BOOLEAN_CATEGORIES = ("exist", "compare_integer", "compare_attribute")


class Balancer:
    """Per-family answer counts; `accept(family, answer)` rejects over-represented answers.

    An answer is rejected when the family has already given it more than `slack` times the
    mean count per answer, plus 2. The mean is over yes and no for yes/no families, and over
    the answers seen so far for the others (counts and attribute values).
    """

    def __init__(self, slack=BALANCE_SLACK):
        self.slack = slack
        self.counts = {f: {} for f in FAMILY_NAMES}

    def accept(self, family, answer):
        counts = self.counts[family]
        space = _YES_NO if FAMILIES[family][0] in _BOOLEAN_CATEGORIES else counts
        if counts:
            mean = sum(counts.values()) / len(space)
            if counts.get(answer, 0) > self.slack * mean + 2:
                return False
        counts[answer] = counts.get(answer, 0) + 1
        return True


def generate_question(scene, rng, balancer=None, family=None):
    """One question dict about `scene` (CLEVR's question fields plus `family` and `category`), or None
    when nothing acceptable was found in `MAX_ATTEMPTS` draws.

    The family is drawn uniformly (unless given) and tried up to `FAMILY_ATTEMPTS` times before
    another family is drawn, so that families that are hard to instantiate are not under-represented.
    """
    fam = None
    for attempt in range(MAX_ATTEMPTS):
        if family is not None:
            fam = family
        elif attempt % FAMILY_ATTEMPTS == 0:
            fam = FAMILY_NAMES[int(rng.integers(len(FAMILY_NAMES)))]
        category, _, make = FAMILIES[fam]
        made = make(scene, rng)
        if made is None:
            continue
        program, text = made
        try:
            value = executor.execute(scene, program)
            answer = executor.index_to_answer(executor.answer_to_index(value))
        except ValueError:
            continue  # a unique over zero or several objects (ProgramError), a count beyond 10
        if balancer is not None and not balancer.accept(fam, answer):
            continue
        return {
            "image_index": scene["image_index"],
            "image_filename": scene["image_filename"],
            "split": scene["split"],
            "question": text,
            "program": program,
            "answer": answer,
            "family": fam,
            "category": category,
        }
    return None


def generate_questions(scenes, per_scene, rng, balancer=None):
    """`per_scene` questions about each scene (fewer when a scene yields no acceptable one)."""
    balancer = Balancer() if balancer is None else balancer
    out = []
    for scene in scenes:
        for _ in range(per_scene):
            q = generate_question(scene, rng, balancer)
            if q is not None:
                q["question_index"] = len(out)
                out.append(q)
    return out


# Words of real CLEVR questions that our templates do not all use, so that real CLEVR text
# maps to known ids (a fact about CLEVR's templates: their function words and synonyms).
CLEVR_EXTRA_WORDS = (
    "what", "which", "how", "many", "number", "of", "is", "are", "there", "the", "a", "an", "it", "its",
    "that", "does", "do", "have", "has", "same", "as", "other", "another", "any", "anything", "else",
    "both", "either", "or", "and", "than", "more", "fewer", "less", "greater", "equal", "made", "visible",
    "size", "color", "shape", "material", "big", "small", "tiny", "large", "thing", "things", "object",
    "objects", "left", "right", "front", "behind", "in", "on", "side", "to", "cube", "cubes", "block",
    "blocks", "sphere", "spheres", "ball", "balls", "cylinder", "cylinders", "rubber", "metal", "metallic",
    "shiny", "matte", "they", "them", "same", "what", ";", "?", ",",
) + COLORS


def build_vocabulary(num_scenes=500, seed=12345):
    """The question vocabulary shipped as `features.VOCAB_FILE`: every token of the questions
    generated for `num_scenes` scenes (10 each), every synonym, and `CLEVR_EXTRA_WORDS`.
    Deterministic; `python -m relzoo.datasets.clevr.questions --write-vocabulary` rewrites the file."""
    from relzoo.datasets.clevr.features import Vocabulary
    from relzoo.datasets.clevr.scenes import generate_scenes

    words = set(CLEVR_EXTRA_WORDS)
    for table in (_SHAPE_WORDS, _SHAPE_PLURALS, _MATERIAL_WORDS, _SIZE_WORDS, _RELATION_WORDS):
        for options in table.values():
            for phrase in options:
                words.update(phrase.split())
    words.update(_THING + _THINGS)
    scenes = generate_scenes(num_scenes, seed=seed, split="train")
    texts = [q["question"] for q in generate_questions(scenes, 10, np.random.default_rng(seed))]
    return Vocabulary.build(texts, extra_words=words, answers=executor.ANSWERS)


if __name__ == "__main__":
    import argparse

    from relzoo.datasets.clevr.features import VOCAB_FILE

    parser = argparse.ArgumentParser(description="CLEVR-format question generation utilities")
    parser.add_argument("--write-vocabulary", action="store_true", help=f"rewrite {VOCAB_FILE.name}")
    args = parser.parse_args()
    if args.write_vocabulary:
        vocab = build_vocabulary()
        vocab.save(VOCAB_FILE)
        print(f"wrote {len(vocab)} tokens to {VOCAB_FILE}")

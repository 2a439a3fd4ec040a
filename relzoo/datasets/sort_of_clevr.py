"""Sort-of-CLEVR (Santoro et al. 2017), in the encoding of the widely used public generator.

A scene: a 75x75 RGB image on white with 6 objects, one of each colour (red, green,
blue, orange, gray, yellow). Each object is a filled square (centre +-5 px, 11x11) or a
filled circle of radius 5, with probability 1/2; integer centres are drawn in [5, 70),
every pair at least 10 px apart (squared distance >= 100), by rejection. Circles are
rasterised as the pixels within 5.5 px of the centre (11 px wide, without spikes); option
`circles="opencv"` draws them as the public generator's OpenCV does (`SPIKY_DISC`, 81 pixels
with one-pixel spikes), `"mixed"` each circle either way (same layouts and questions).

Coordinates: `x` is the column, `y` the row (as OpenCV's drawing calls take them).

Questions, 18 floats: [0:6] colour of object A (one-hot), [6:12] colour of object B
(ternary questions only), [12:15] type (non-relational, binary, ternary), [15:18]
subtype. Answers, 10 classes: 0 yes, 1 no, 2 rectangle, 3 circle, 4..9 counts (4 + k).

- non-relational: 0 shape of A; 1 is A on the left (x < 37.5); 2 is A at the top (y < 37.5).
- binary: 0 shape of the object closest to A; 1 shape of the object farthest from A
  (A excluded); 2 how many objects have A's shape, A included (answer 3 + count).
- ternary (A != B): 0 how many other objects lie in the axis-aligned box spanned by A and
  B, borders included (4 + count); 1 is any other object's centre within 12 px
  (vertically, inclusive) of the line through A and B (yes / no; when A and B share a
  column the line is vertical and only centres on that column lie on it); 2 how many
  other objects C make the triangle A, B, C obtuse: largest angle >= 90 and < 180 degrees
  (4 + count; collinear triples are not triangles).

Each image has 10 questions of each type; subtypes and colours are drawn uniformly.
One seeded generator: `generate_scenes(num_images, seed, split)`; splits use disjoint
seed streams `numpy.random.default_rng([seed, SPLIT_IDS[split], 7])`.
"""

import numpy as np

VERSION = "1.0.0"
IMAGE_SIZE = 75
OBJECT_SIZE = 5
NUM_OBJECTS = 6
QUESTIONS_PER_TYPE = 10
QUESTION_DIM = 18
COLOURS = ("red", "green", "blue", "orange", "gray", "yellow")
RGB = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 156, 0), (128, 128, 128), (255, 255, 0)], np.uint8)
SHAPES = ("rectangle", "circle")  # shape ids 0 and 1; answers 2 + shape id
# The 10 answer classes. Count classes are named by index: as in the public generator, the
# binary count answers 3 + count (1..6, A included: classes 4..9) and the ternary counts
# 4 + count (0..4: classes 4..8), so class 4 means "1" or "0" depending on the question.
# `describe_answer` gives the number.
ANSWERS = ("yes", "no", "rectangle", "circle", "count4", "count5", "count6", "count7", "count8", "count9")
YES, NO = 0, 1
TYPE_NAMES = ("non-relational", "binary", "ternary")
SUBTYPE_NAMES = (
    ("shape", "left", "top"),
    ("closest shape", "farthest shape", "count same shape"),
    ("count in box", "object on line", "count obtuse triangles"),
)
SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}
SPLIT_SIZES = {"train": 9800, "validation": 200, "test": 200}
LINE_TOLERANCE = 12
STATE_DIM = len(COLOURS) + len(SHAPES) + 2


def _rng(seed, split):
    if split not in SPLIT_IDS:
        raise ValueError(f"sort_of_clevr: split must be one of {sorted(SPLIT_IDS)}, got {split!r}.")
    return np.random.default_rng([int(seed), SPLIT_IDS[split], 7])


def sample_layouts(num_images, rng):
    """Centres `(N, 6, 2)` int (x, y) and shapes `(N, 6)` (0 rectangle, 1 circle)."""
    centres = np.zeros((num_images, NUM_OBJECTS, 2), np.int64)
    for k in range(NUM_OBJECTS):
        pending = np.arange(num_images)
        while len(pending):
            cand = rng.integers(OBJECT_SIZE, IMAGE_SIZE - OBJECT_SIZE, size=(len(pending), 2))
            if k:
                d2 = ((centres[pending, :k] - cand[:, None, :]) ** 2).sum(-1)  # (m, k)
                ok = (d2 >= (2 * OBJECT_SIZE) ** 2).all(axis=1)
            else:
                ok = np.ones(len(pending), bool)
            centres[pending[ok], k] = cand[ok]
            pending = pending[~ok]
    shapes = (rng.random((num_images, NUM_OBJECTS)) < 0.5).astype(np.int64)
    return centres, shapes


_YY, _XX = np.mgrid[-OBJECT_SIZE : OBJECT_SIZE + 1, -OBJECT_SIZE : OBJECT_SIZE + 1]
# radius 5.5 around the integer centre: an 11-px-wide round disc (radius 5 exactly would
# leave one-pixel spikes at the four extremes), as drawing libraries rasterise radius 5.
_DISC = _XX**2 + _YY**2 <= (OBJECT_SIZE + 0.5) ** 2  # (11, 11), 97 pixels
# OpenCV's filled circle of radius 5, which the public generator draws: the half-width of each
# of its 11 rows (|dx| <= half), one-pixel spikes at the four extremes.
_SPIKY_HALF = np.array([0, 3, 4, 4, 4, 5, 4, 4, 4, 3, 0])
SPIKY_DISC = np.abs(np.arange(-OBJECT_SIZE, OBJECT_SIZE + 1))[None, :] <= _SPIKY_HALF[:, None]  # (11, 11), 81 px
CIRCLES = ("round", "opencv", "mixed")  # how circles are drawn: _DISC, SPIKY_DISC, or either (p = 1/2 each)


def _spiky(num_images, seed, split, circles):
    """`(N, 6)` bool: which circles are drawn as OpenCV draws them. "mixed" draws from a stream of
    its own, so the layouts and questions are those of the other two."""
    if circles not in CIRCLES:
        raise ValueError(f"sort_of_clevr: circles must be one of {CIRCLES}, got {circles!r}.")
    if circles == "mixed":
        return np.random.default_rng([int(seed), SPLIT_IDS[split], 11]).random((num_images, NUM_OBJECTS)) < 0.5
    return np.full((num_images, NUM_OBJECTS), circles == "opencv")


def render(centres, shapes, spiky=None):
    """uint8 images `(N, 75, 75, 3)`: white background, objects drawn in colour order.
    `spiky` `(N, 6)` bool: the circles drawn as OpenCV draws them (`SPIKY_DISC`); default none."""
    n = len(centres)
    images = np.full((n, IMAGE_SIZE, IMAGE_SIZE, 3), 255, np.uint8)
    spiky = np.zeros((n, NUM_OBJECTS), bool) if spiky is None else np.asarray(spiky, bool)
    s = OBJECT_SIZE
    for i in range(n):
        for k in range(NUM_OBJECTS):
            x, y = centres[i, k]
            patch = images[i, y - s : y + s + 1, x - s : x + s + 1]  # rows y, columns x
            if shapes[i, k] == 0:
                patch[...] = RGB[k]
            else:
                patch[SPIKY_DISC if spiky[i, k] else _DISC] = RGB[k]
    return images


def state_descriptions(centres, shapes):
    """`(N, 6, 10)` float32 per object: colour one-hot (6), shape one-hot (2), x / 75, y / 75."""
    n = len(centres)
    colour = np.broadcast_to(np.eye(NUM_OBJECTS, dtype=np.float32), (n, NUM_OBJECTS, NUM_OBJECTS))
    shape = np.eye(len(SHAPES), dtype=np.float32)[shapes]
    xy = centres.astype(np.float32) / IMAGE_SIZE
    return np.concatenate([colour, shape, xy], axis=-1)


def _answers(centres, shapes, qtype, subtype, a, b):
    """Vectorised answers for one question slot across images; all arguments `(N,)` but the scene."""
    n = len(centres)
    idx = np.arange(n)
    pos = centres.astype(np.int64)  # (N, 6, 2)
    pa, pb = pos[idx, a], pos[idx, b]  # (N, 2)
    shape_a = shapes[idx, a]
    ans = np.zeros(n, np.int64)

    # non-relational
    m = qtype == 0
    ans = np.where(m & (subtype == 0), 2 + shape_a, ans)
    ans = np.where(m & (subtype == 1), np.where(pa[:, 0] < IMAGE_SIZE / 2, YES, NO), ans)
    ans = np.where(m & (subtype == 2), np.where(pa[:, 1] < IMAGE_SIZE / 2, YES, NO), ans)

    # binary
    d2 = ((pos - pa[:, None, :]) ** 2).sum(-1)  # (N, 6)
    d2_near = d2.copy()
    d2_near[idx, a] = np.iinfo(np.int64).max
    d2_far = d2.copy()
    d2_far[idx, a] = -1
    closest = np.argmin(d2_near, axis=1)
    farthest = np.argmax(d2_far, axis=1)
    same = (shapes == shape_a[:, None]).sum(1)  # A included
    m = qtype == 1
    ans = np.where(m & (subtype == 0), 2 + shapes[idx, closest], ans)
    ans = np.where(m & (subtype == 1), 2 + shapes[idx, farthest], ans)
    ans = np.where(m & (subtype == 2), 3 + same, ans)

    # ternary: the other objects C (not A, not B)
    others = np.ones((n, NUM_OBJECTS), bool)
    others[idx, a] = False
    others[idx, b] = False
    lo, hi = np.minimum(pa, pb), np.maximum(pa, pb)  # (N, 2)
    in_box = ((pos >= lo[:, None, :]) & (pos <= hi[:, None, :])).all(-1) & others
    dx = pb[:, 0] - pa[:, 0]
    dy = pb[:, 1] - pa[:, 1]
    # vertical distance |y_C - y_line(x_C)| <= 12  <=>  |(y_C - y_A) dx - dy (x_C - x_A)| <= 12 |dx|
    cross = (pos[..., 1] - pa[:, None, 1]) * dx[:, None] - dy[:, None] * (pos[..., 0] - pa[:, None, 0])  # (N, 6)
    vertical = dx == 0
    on_line = np.where(
        vertical[:, None],
        pos[..., 0] == pa[:, None, 0],
        np.abs(cross) <= LINE_TOLERANCE * np.abs(dx)[:, None],
    ) & others
    # obtuse: some vertex has a dot product <= 0, and the three points are not collinear
    ca = pa[:, None, :] - pos  # C -> A   (N, 6, 2)
    cb = pb[:, None, :] - pos  # C -> B
    ab = (pb - pa)[:, None, :]  # A -> B
    dot_a = (ab * (pos - pa[:, None, :])).sum(-1)  # angle at A
    dot_b = ((-ab) * (pos - pb[:, None, :])).sum(-1)  # angle at B
    dot_c = (ca * cb).sum(-1)  # angle at C
    collinear = cross == 0
    obtuse = ((dot_a <= 0) | (dot_b <= 0) | (dot_c <= 0)) & ~collinear & others
    m = qtype == 2
    ans = np.where(m & (subtype == 0), 4 + in_box.sum(1), ans)
    ans = np.where(m & (subtype == 1), np.where(on_line.any(1), YES, NO), ans)
    ans = np.where(m & (subtype == 2), 4 + obtuse.sum(1), ans)
    return ans


def sample_questions(centres, shapes, rng):
    """Questions `(N, 30, 18)` float32, answers `(N, 30)` int32, question kinds `(N, 30)` (type * 3 + subtype).

    Slots 0-9 are non-relational, 10-19 binary, 20-29 ternary.
    """
    n = len(centres)
    q = QUESTIONS_PER_TYPE * len(TYPE_NAMES)
    qtype = np.repeat(np.arange(len(TYPE_NAMES)), QUESTIONS_PER_TYPE)[None, :].repeat(n, 0)  # (N, 30)
    subtype = rng.integers(0, 3, size=(n, q))
    a = rng.integers(0, NUM_OBJECTS, size=(n, q))
    b = (a + rng.integers(1, NUM_OBJECTS, size=(n, q))) % NUM_OBJECTS  # uniform over the other colours
    questions = np.zeros((n, q, QUESTION_DIM), np.float32)
    rows, cols = np.indices((n, q))
    questions[rows, cols, a] = 1.0
    ternary = qtype == 2
    questions[rows[ternary], cols[ternary], 6 + b[ternary]] = 1.0
    questions[rows, cols, 12 + qtype] = 1.0
    questions[rows, cols, 15 + subtype] = 1.0
    answers = np.stack([_answers(centres, shapes, qtype[:, j], subtype[:, j], a[:, j], b[:, j]) for j in range(q)],
                       axis=1).astype(np.int32)
    return questions, answers, (qtype * 3 + subtype).astype(np.int32)


def generate_scenes(num_images=None, seed=0, split="train", circles="round"):
    """One split's scenes: a dict of numpy arrays.

    `image` (N, 75, 75, 3) uint8; `objects` (N, 6, 10) float32 state descriptions;
    `question` (N, 30, 18) float32; `answer` (N, 30) int32; `kind` (N, 30) int32
    (type * 3 + subtype); `centre` (N, 6, 2) int64 (x, y); `shape` (N, 6) int64.
    `circles`: "round", "opencv" or "mixed" (see the module docstring).
    """
    rng = _rng(seed, split)
    n = SPLIT_SIZES[split] if num_images is None else int(num_images)
    centres, shapes = sample_layouts(n, rng)
    questions, answers, kinds = sample_questions(centres, shapes, rng)
    return {
        "image": render(centres, shapes, _spiky(n, seed, split, circles)),
        "objects": state_descriptions(centres, shapes),
        "question": questions,
        "answer": answers,
        "kind": kinds,
        "centre": centres,
        "shape": shapes,
    }


# What `train.cell_loss` teaches each cell of a pixel model's object grid (training/cell_loss.py):
# one slot per colour (each colour appears once a scene, so two objects in one cell keep apart),
# each `[present, dx, dy, rectangle, circle]`: is that colour's centre in the cell, where in the
# cell (-0.5..0.5 of a cell from its middle), and its shape.
CELL_READOUT = {"slots": NUM_OBJECTS, "values": 2, "groups": (len(SHAPES),)}


def split_layouts(spec, split):
    """`(centres (S, 6, 2), shapes (S, 6))` of a data set spec's split, the layouts of its
    `Examples`' scenes in order, drawn again without rendering (milliseconds)."""
    size = int(spec[f"{split}_size"])
    return sample_layouts(size, _rng(int(spec.get("seed", 0)), split))


def cell_targets(centres, shapes, grid):
    """Per-cell, per-colour targets `(S, grid, grid, 6, 5)` float32 (see `CELL_READOUT`).

    A centre at pixel x lies in column `floor(x * grid / 75)` (rows likewise from y).
    """
    centres, shapes = np.asarray(centres), np.asarray(shapes)
    if not isinstance(grid, (int, np.integer)) or grid < 1:
        raise ValueError(f"sort_of_clevr.cell_targets: grid must be a positive int, got {grid!r}.")
    if centres.ndim != 3 or centres.shape[1:] != (NUM_OBJECTS, 2) or shapes.shape != centres.shape[:2]:
        raise ValueError(f"sort_of_clevr.cell_targets: expected centres (S, {NUM_OBJECTS}, 2) and shapes "
                         f"(S, {NUM_OBJECTS}), got {centres.shape} and {shapes.shape}.")
    scaled = (centres.astype(np.float64) + 0.5) * grid / IMAGE_SIZE  # pixel centres, in cells
    cell = np.clip(np.floor(scaled).astype(np.int64), 0, grid - 1)  # (S, 6, 2) as (col, row)
    offset = scaled - cell - 0.5
    n = len(centres)
    out = np.zeros((n, grid, grid, NUM_OBJECTS, 5), np.float32)
    s, k = np.indices((n, NUM_OBJECTS))
    rows, cols = cell[..., 1], cell[..., 0]
    out[s, rows, cols, k, 0] = 1.0
    out[s, rows, cols, k, 1:3] = offset
    out[s, rows, cols, k, 3 + shapes] = 1.0
    return out


def cell_annotations(spec, split, grid):
    """`train.cell_loss`'s targets for a spec's split: `(S, grid * grid, 6 * 5)` float32."""
    targets = cell_targets(*split_layouts(spec, split), grid)
    return targets.reshape(len(targets), grid * grid, -1)


def describe_question(question):
    """The question in words, from its 18-float encoding."""
    q = np.asarray(question)
    a = COLOURS[int(np.argmax(q[0:6]))]
    b = COLOURS[int(np.argmax(q[6:12]))]
    qtype = int(np.argmax(q[12:15]))
    sub = int(np.argmax(q[15:18]))
    texts = (
        (f"What shape is the {a} object?", f"Is the {a} object on the left?", f"Is the {a} object at the top?"),
        (f"What shape is the object closest to the {a} one?", f"What shape is the object farthest from the {a} one?",
         f"How many objects have the shape of the {a} one?"),
        (f"How many objects lie between the {a} and {b} ones?", f"Is any object on the line through the {a} and {b} ones?",
         f"How many objects form an obtuse triangle with the {a} and {b} ones?"),
    )
    return texts[qtype][sub]


def describe_answer(answer, question):
    """The answer in words: yes / no / a shape / a count (the count's offset depends on the question)."""
    answer = int(answer)
    if answer < 4:
        return ANSWERS[answer]
    q = np.asarray(question)
    binary_count = int(np.argmax(q[12:15])) == 1
    return str(answer - 3 if binary_count else answer - 4)


REPRESENTATIONS = ("pixels", "state")


def examples_from_scenes(scenes, representation="pixels"):
    """The questions of generated scenes as `Examples` (one per question; scenes stored once).

    `pixels`: inputs `image` (75, 75, 3) float32 in [0, 1] and `question` (18,);
    `state`: inputs `objects` (6, 10) (colour, shape one-hots, x / 75, y / 75) and `question`.
    Groups for per-type accuracy: `type` (3 types) and `kind` (9 subtypes).
    """
    from relzoo.datasets.examples import Examples

    if representation not in REPRESENTATIONS:
        raise ValueError(f"sort_of_clevr: representation must be one of {REPRESENTATIONS}, got {representation!r}.")
    n, q = scenes["answer"].shape
    kinds = scenes["kind"].reshape(-1)
    kind_names = tuple(f"{TYPE_NAMES[t]}/{s}" for t in range(3) for s in SUBTYPE_NAMES[t])
    key = "image" if representation == "pixels" else "objects"
    return Examples(
        inputs={"question": scenes["question"].reshape(n * q, QUESTION_DIM)},
        answers=scenes["answer"].reshape(-1),
        scenes={key: scenes[key]},
        scene_index=np.repeat(np.arange(n), q),
        scale={"image": 1.0 / 255.0} if representation == "pixels" else {},
        groups={"type": (kinds // 3, TYPE_NAMES), "kind": (kinds, kind_names)},
    )


def generate_examples(num_images=None, seed=0, split="train", representation="pixels", circles="round"):
    """A split as `Examples` (`num_images` scenes, 30 questions each); see `examples_from_scenes`.
    `circles`: "round" (the data set's own drawing), "opencv" (the public generator's) or "mixed"."""
    return examples_from_scenes(generate_scenes(num_images, seed, split, circles), representation)

"""clevr_world: a generated data set in CLEVR's format (scenes, programs, questions, images).

Scenes come from `scenes.generate_scenes`, questions from `questions.generate_questions`
(19 families in CLEVR's five categories, answers balanced per family), images from
`render.render_scene`; every example is encoded as `features` describes, exactly as the
real CLEVR reader encodes CLEVR, so a model trained on one accepts the other.

A split is made in fixed chunks of `CHUNK_SCENES` scenes. Chunk `c` holds the scenes
`c * CHUNK_SCENES ...` (`generate_scenes(count, seed, split, start=c * CHUNK_SCENES)`) and draws
its questions with `numpy.random.default_rng([seed, SPLIT_IDS[split], 53, c])` and a fresh
`Balancer`. So a split depends only on `(seed, split, size, questions_per_scene)`, not on the
number of worker processes, and a smaller split is a prefix of a larger one at any chunk
boundary (the first scenes of a chunk keep their questions too). The train, validation and
test splits draw their scenes from disjoint seed streams.

Sizes (`SPLIT_SIZES`, in scenes; 10 questions each, 100,000 questions in all): train 7,000,
validation 1,500, test 1,500.

Images are rendered at 192 x 128 (CLEVR's 3:2 view; CLEVR's own images are 480 x 320) and
resized to 128 x 128 with `features.resize_image`, as the real CLEVR images are.

    from relzoo.datasets.clevr import dataset
    scenes, questions, records = dataset.generate_split(100, seed=0, split="train")
    examples = dataset.generate_examples(100, split="validation", representation="state")

Command line (writes a folder in CLEVR_v1.0's layout and prints the generation speed and
the answer distribution per category):

    python -m relzoo.datasets.clevr --split train --scenes 1000 --out DIR
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from relzoo.datasets.clevr import features
from relzoo.datasets.clevr.executor import ANSWERS, answer_to_index
from relzoo.datasets.clevr.features import CATEGORIES, MAX_OBJECTS, MAX_QUESTION_LENGTH, REPRESENTATIONS, STATE_DIM
from relzoo.datasets.clevr.questions import FAMILY_NAMES, Balancer, generate_questions
from relzoo.datasets.clevr.scenes import SPLIT_IDS, generate_scenes

VERSION = "1.0.0"
NAME = "clevr_world"
SPLIT_SIZES = {"train": 7000, "validation": 1500, "test": 1500}  # scenes
QUESTIONS_PER_SCENE = 10
CHUNK_SCENES = 250
IMAGE_SIZE = features.IMAGE_SIZE
CLEVR_SPLIT_NAMES = {"train": "train", "validation": "val", "test": "test"}  # CLEVR's file names
_QUESTION_STREAM = 53  # the third word of the question rng's seed

_VOCABULARY = None


def _vocabulary():
    global _VOCABULARY
    if _VOCABULARY is None:
        _VOCABULARY = features.Vocabulary.shipped("clevr")
    return _VOCABULARY


def split_scenes(spec, split):
    """The scene dicts (CLEVR's scene JSON form) of a data set spec's split, in the order of its
    `Examples`' scene arrays; made without rendering (a few seconds a thousand scenes)."""
    return generate_scenes(int(spec[f"{split}_size"]), seed=int(spec.get("seed", 0)), split=split)


def render_size(image_size=IMAGE_SIZE):
    """`(width, height)` of the rendered view before resizing: 3:2, e.g. (192, 128) for 128."""
    return (3 * int(image_size)) // 2, int(image_size)


def _representations(representation):
    reps = (representation,) if isinstance(representation, str) else tuple(representation)
    unknown = [r for r in reps if r not in REPRESENTATIONS]
    if unknown or not reps:
        raise ValueError(f"clevr_world: representation must be among {REPRESENTATIONS}, got {representation!r}")
    return reps


def _make_chunk(task):
    """One chunk (runs in a worker process): scenes, questions, arrays and timings."""
    from time import perf_counter

    seed, split, c, start, count, per_scene, pixels, image_size, keep_scenes = task
    timing = {}
    t = perf_counter()
    scenes = generate_scenes(count, seed, split, start=start)
    timing["scenes"] = perf_counter() - t

    t = perf_counter()
    rng = np.random.default_rng([int(seed), SPLIT_IDS[split], _QUESTION_STREAM, int(c)])
    records = generate_questions(scenes, per_scene, rng, Balancer())
    timing["questions"] = perf_counter() - t

    t = perf_counter()
    vocab = _vocabulary()
    objects = np.zeros((count, MAX_OBJECTS, STATE_DIM), np.float32)
    mask = np.zeros((count, MAX_OBJECTS), bool)
    for i, scene in enumerate(scenes):
        objects[i], mask[i] = features.scene_state(scene)
    n = len(records)
    q = {
        "scene_index": np.array([r["image_index"] for r in records], np.int32).reshape(n),
        "question_tokens": np.stack([vocab.encode(r["question"]) for r in records]) if n
        else np.zeros((0, MAX_QUESTION_LENGTH), np.int32),
        "answer": np.array([answer_to_index(r["answer"]) for r in records], np.int32).reshape(n),
        "category": np.array([CATEGORIES.index(r["category"]) for r in records], np.int32).reshape(n),
        "family": np.array([FAMILY_NAMES.index(r["family"]) for r in records], np.int32).reshape(n),
    }
    timing["features"] = perf_counter() - t

    out = {"objects": objects, "object_mask": mask, "questions": q, "records": records, "count": count,
           "timing": timing}
    if keep_scenes:
        out["scenes"] = scenes
    if pixels:
        from relzoo.datasets.clevr.render import render_scene

        t = perf_counter()
        width, height = render_size(image_size)
        raw = [render_scene(scene, width, height) for scene in scenes]
        out["image"] = np.stack([features.resize_image(r, image_size) for r in raw]) if raw else \
            np.zeros((0, image_size, image_size, 3), np.uint8)
        if keep_scenes:
            out["raw_images"] = raw
        timing["render"] = perf_counter() - t
    return out


def _pool_context():
    import multiprocessing as mp

    # fork is fast, but forking a process that runs TensorFlow's threads is unsafe: spawn then
    if sys.platform.startswith("linux") and "tensorflow" not in sys.modules:
        return mp.get_context("fork")
    return mp.get_context("spawn")


def _iter_chunks(num_scenes, seed, split, questions_per_scene, pixels, image_size, workers, progress,
                 keep_scenes=False):
    """Yields the chunks of a split in order (see `_make_chunk`), computed by `workers` processes."""
    if split not in SPLIT_IDS:
        raise ValueError(f"clevr_world: split must be one of {sorted(SPLIT_IDS)}, got {split!r}.")
    num_scenes, chunk = int(num_scenes), int(CHUNK_SCENES)
    if num_scenes < 0:
        raise ValueError(f"clevr_world: num_scenes must be >= 0, got {num_scenes}")
    tasks = [(int(seed), split, c, c * chunk, min(chunk, num_scenes - c * chunk), int(questions_per_scene),
              bool(pixels), int(image_size), bool(keep_scenes))
             for c in range(-(-num_scenes // chunk))]
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    workers = max(1, min(workers, len(tasks)))
    from tqdm.auto import tqdm

    with tqdm(total=num_scenes, unit="scene", desc=f"{NAME} {split}", disable=not progress) as bar:
        if workers == 1:
            for task in tasks:
                out = _make_chunk(task)
                bar.update(out["count"])
                yield out
        else:
            with _pool_context().Pool(workers) as pool:
                for out in pool.imap(_make_chunk, tasks):
                    bar.update(out["count"])
                    yield out


def _assemble(chunks, pixels, image_size):
    """Concatenates chunks into `(scenes_arrays, question_arrays, records)`; renumbers questions."""
    scenes = {"objects": np.zeros((0, MAX_OBJECTS, STATE_DIM), np.float32),
              "object_mask": np.zeros((0, MAX_OBJECTS), bool)}
    if pixels:
        scenes["image"] = np.zeros((0, image_size, image_size, 3), np.uint8)
    questions = {"scene_index": np.zeros((0,), np.int32),
                 "question_tokens": np.zeros((0, MAX_QUESTION_LENGTH), np.int32),
                 "answer": np.zeros((0,), np.int32), "category": np.zeros((0,), np.int32),
                 "family": np.zeros((0,), np.int32)}
    records = []
    if chunks:
        for key in scenes:
            scenes[key] = np.concatenate([c[key] for c in chunks])
        for key in questions:
            questions[key] = np.concatenate([c["questions"][key] for c in chunks])
    for c in chunks:
        for r in c["records"]:
            r["question_index"] = len(records)
            records.append(r)
    return scenes, questions, records


def generate_split(num_scenes, seed=0, split="train", questions_per_scene=QUESTIONS_PER_SCENE,
                   representation=REPRESENTATIONS, workers=None, progress=True, image_size=IMAGE_SIZE,
                   renderer="numpy"):
    """Scenes and questions of one split, as arrays plus CLEVR-style question records.

    Args:
        num_scenes: S, the number of scenes (`SPLIT_SIZES[split]` for the standard sizes).
        seed: the data set's seed.
        split: "train", "validation" or "test".
        questions_per_scene: questions per scene (a scene that yields no acceptable question
            in `questions.MAX_ATTEMPTS` draws gets fewer; in practice all get them all).
        representation: "pixels", "state" or both: images are rendered only for "pixels".
        workers: processes (default `os.cpu_count()`); the result does not depend on it.
        progress: show a tqdm bar (scenes).
        image_size: side of the square images (128; smaller for quick tests); the view is
            rendered at `render_size(image_size)` (3:2) and resized.
        renderer: "numpy" (`render.render_scene`, in the worker processes) or "jax"
            (`render_jax.render_batch` in float64, in this process, for an accelerator; jax must
            be installed). On a CPU the two give identical images (tested); on a GPU the jax one
            may differ by a rounding level in rare pixels (see `render_jax`).

    Returns:
        `(scenes, questions, records)`:
        scenes: `image` uint8 `(S, image_size, image_size, 3)` (only with "pixels"),
            `objects` float32 `(S, 10, 18)` and `object_mask` bool `(S, 10)` (see `features`).
        questions (N = about S * questions_per_scene): `scene_index` int32 `(N,)`,
            `question_tokens` int32 `(N, 50)` (the shipped vocabulary), `answer` int32 `(N,)`
            (index in `executor.ANSWERS`), `category` int32 `(N,)` (index in
            `features.CATEGORIES`), `family` int32 `(N,)` (index in `questions.FAMILY_NAMES`).
        records: N question dicts in CLEVR's question JSON form (`image_index`,
            `image_filename`, `split`, `question`, `program`, `answer`, `question_index`)
            plus `family` and `category`; record k is question k.

    Scene `i` is the scene with `image_index` i (`scene_index` equals the records' `image_index`).
    Deterministic by `(seed, split, num_scenes, questions_per_scene)`, whatever `workers` is.
    """
    pixels = "pixels" in _representations(representation)
    if renderer not in RENDERERS:
        raise ValueError(f"clevr_world: renderer must be one of {RENDERERS}, got {renderer!r}.")
    if not pixels or renderer == "numpy":
        chunks = list(_iter_chunks(num_scenes, seed, split, questions_per_scene, pixels, image_size, workers,
                                   progress))
        return _assemble(chunks, pixels, int(image_size))
    # renderer "jax": scenes and questions in the workers, the images here in batches
    chunks = list(_iter_chunks(num_scenes, seed, split, questions_per_scene, False, image_size, workers, progress,
                               keep_scenes=True))
    scene_dicts = [scene for c in chunks for scene in c.pop("scenes")]
    arrays, questions, records = _assemble(chunks, False, int(image_size))
    arrays["image"] = render_images_jax(scene_dicts, int(image_size))
    return arrays, questions, records


def generate_scene_images(num_scenes, seed=0, split="train", image_size=IMAGE_SIZE, workers=None, progress=False):
    """A split's scene dicts and their images, without questions: `(scenes, images)`.

    `scenes`: the `num_scenes` scene dicts (`scenes.generate_scenes`'s); `images`: uint8
    `(S, image_size, image_size, 3)`, the images `generate_split` gives for the same arguments.
    For work on what the images show (e.g. where each object is), with the scenes sampled once.
    """
    scene_dicts, images = [], []
    for chunk in _iter_chunks(num_scenes, seed, split, 0, True, image_size, workers, progress, keep_scenes=True):
        chunk.pop("raw_images", None)
        scene_dicts.extend(chunk["scenes"])
        images.append(chunk["image"])
    size = int(image_size)
    return scene_dicts, (np.concatenate(images) if images else np.zeros((0, size, size, 3), np.uint8))


RENDERERS = ("numpy", "jax")


def render_images_jax(scenes, image_size=IMAGE_SIZE, batch_size=None):
    """The dataset's images of `scenes` (scene dicts, or a `render_jax.scene_table`) rendered by
    `render_jax` (float64) and resized as `_make_chunk` does: uint8 `(S, image_size, image_size, 3)`."""
    from relzoo.datasets.clevr import render_jax

    width, height = render_size(image_size)
    raw = render_jax.render_batch(scenes, width, height, batch_size=batch_size)
    out = np.zeros((len(raw), image_size, image_size, 3), np.uint8)
    for i, image in enumerate(raw):
        out[i] = features.resize_image(image, image_size)
    return out


# ----------------------------------------------------------------------------- unrendered splits
# A pixel split in two steps, for training on an accelerator that renders (`render_jax`): the
# scenes and questions anywhere (`generate_unrendered`, CPU work: about 31 ms a scene), saved in
# a few MB, then the images where the model trains (`render_unrendered`).

_QUESTION_DTYPES = {"scene_index": np.int32, "question_tokens": np.uint8, "answer": np.int8, "category": np.int8,
                    "family": np.int16}


def generate_unrendered(num_scenes=None, seed=0, split="train", workers=None, progress=False,
                        questions_per_scene=QUESTIONS_PER_SCENE):
    """A pixel split without its images: its questions and the table of its scenes.

    Returns:
        a dict of compact numpy arrays, for `np.savez_compressed`: `questions/<key>` (the
        question arrays of `generate_split`, in small integer types) and `table/<key>` (the
        `render_jax.scene_table` of the scenes). `render_unrendered` turns it into the
        `Examples` that `generate_examples(..., representation="pixels")` gives.
    """
    from relzoo.datasets.clevr import render_jax

    if split not in SPLIT_SIZES:
        raise ValueError(f"clevr_world: split must be one of {sorted(SPLIT_SIZES)}, got {split!r}.")
    num_scenes = SPLIT_SIZES[split] if num_scenes is None else int(num_scenes)
    chunks = list(_iter_chunks(num_scenes, seed, split, questions_per_scene, False, IMAGE_SIZE, workers, progress,
                               keep_scenes=True))
    scene_dicts = [scene for c in chunks for scene in c.pop("scenes")]
    _, questions, _ = _assemble(chunks, False, IMAGE_SIZE)
    if len(_vocabulary()) > 256:
        raise AssertionError("question tokens no longer fit uint8")
    out = {f"questions/{k}": np.asarray(v).astype(_QUESTION_DTYPES[k]) for k, v in questions.items()}
    out.update({f"table/{k}": v for k, v in render_jax.scene_table(scene_dicts).items()})
    return out


def render_unrendered(parts, image_size=IMAGE_SIZE, batch_size=None):
    """The `Examples` of a split from `generate_unrendered`'s arrays (or an `np.load` of them),
    its images rendered by `render_jax` (float64)."""
    try:
        table = {k.split("/", 1)[1]: np.asarray(parts[k]) for k in parts if k.startswith("table/")}
        questions = {k: np.asarray(parts[f"questions/{k}"]).astype(np.int32) for k in _QUESTION_DTYPES}
    except KeyError as err:
        raise ValueError(f"render_unrendered: expected the arrays of generate_unrendered; {err} is missing.") from None
    images = render_images_jax(table, int(image_size), batch_size=batch_size)
    return features.to_examples({"image": images}, questions, "pixels")


def generate_examples(num_scenes=None, seed=0, split="train", representation="pixels", workers=None,
                      progress=False, questions_per_scene=QUESTIONS_PER_SCENE, renderer="numpy"):
    """A split as `Examples` for the trainer and the evaluation (one example per question,
    scene arrays stored once); `num_scenes=None` -> `SPLIT_SIZES[split]`.

    "pixels": inputs `image` float32 `(128, 128, 3)` in [0, 1] and `question` int32 `(50,)`;
    "state": inputs `objects` `(10, 18)`, `object_mask` `(10,)` and `question`. Answers: indices
    in `executor.ANSWERS` (28 classes). Group `category` for per-category accuracy.
    """
    if split not in SPLIT_SIZES:
        raise ValueError(f"clevr_world: split must be one of {sorted(SPLIT_SIZES)}, got {split!r}.")
    num_scenes = SPLIT_SIZES[split] if num_scenes is None else int(num_scenes)
    scenes, questions, _ = generate_split(num_scenes, seed, split, questions_per_scene, representation,
                                          workers=workers, progress=progress, renderer=renderer)
    return features.to_examples(scenes, questions, representation)


def describe_question(tokens):
    """The words of an encoded question `(50,)` (the shipped vocabulary)."""
    return _vocabulary().decode(tokens)


def describe_answer(answer):
    """The answer string of an answer index."""
    return ANSWERS[int(answer)]


# ----------------------------------------------------------------------------- CLEVR folder


def _png(path, image):
    from PIL import Image

    Image.fromarray(image).save(path, optimize=False, compress_level=6)


def save_json(path_dir, split="train", num_scenes=None, seed=0, questions_per_scene=QUESTIONS_PER_SCENE,
              images=True, workers=None, progress=True, image_size=IMAGE_SIZE, clevr_names=True):
    """Writes a split as a folder in CLEVR_v1.0's layout; returns a summary dict.

    Files (`<s>` is CLEVR's split name: train, val, test):
        `scenes/CLEVR_<s>_scenes.json`: `{"info": {...}, "scenes": [...]}`;
        `questions/CLEVR_<s>_questions.json`: `{"info": {...}, "questions": [...]}` (with our
        `family` and `category` fields);
        `images/<s>/<image_filename>`: the rendered 3:2 views (`render_size(image_size)`,
        192 x 128 by default; `features.resize_image` of a PNG gives `generate_split`'s image
        exactly), unless `images=False`.

    With `clevr_names` (the default) the written scenes and questions carry CLEVR's names,
    `"split": "<s>"` and `"image_filename": "CLEVR_<s>_<image_index:06d>.png"`, and the PNGs are
    named so, as in CLEVR_v1.0 (tools that build an image path from the split and the index
    find them); otherwise they keep the generator's ("validation",
    "RELZOO_CLEVR_validation_000000.png"). Nothing else differs from `generate_split`'s records.
    The summary: `scenes`, `questions`, the
    `scenes_arrays` / `question_arrays` of `generate_split` (images left out), `timing`
    (seconds summed over workers: scenes, questions, features, render, png) and `wall_seconds`.
    """
    start = time.perf_counter()
    num_scenes = SPLIT_SIZES[split] if num_scenes is None else int(num_scenes)
    clevr_split = CLEVR_SPLIT_NAMES[split]
    root = Path(path_dir)
    image_dir = root / "images" / clevr_split
    for sub in (root / "scenes", root / "questions") + ((image_dir,) if images else ()):
        sub.mkdir(parents=True, exist_ok=True)
    timing = {}
    scene_dicts, chunks = [], []
    for chunk in _iter_chunks(num_scenes, seed, split, questions_per_scene, images, image_size, workers, progress,
                              keep_scenes=True):
        if clevr_names:
            for item in chunk["scenes"] + chunk["records"]:
                item["split"] = clevr_split
                item["image_filename"] = f"CLEVR_{clevr_split}_{int(item['image_index']):06d}.png"
        t = time.perf_counter()
        for scene, raw in zip(chunk["scenes"], chunk.pop("raw_images", [])):
            _png(image_dir / scene["image_filename"], raw)
        if images:
            timing["png"] = timing.get("png", 0.0) + time.perf_counter() - t
        for k, v in chunk["timing"].items():
            timing[k] = timing.get(k, 0.0) + v
        scene_dicts.extend(chunk.pop("scenes"))
        chunk.pop("image", None)  # only the PNGs are kept
        chunks.append(chunk)
    scenes_arrays, question_arrays, records = _assemble(chunks, False, int(image_size))
    info = {"split": clevr_split, "version": VERSION, "generator": f"relzoo {NAME}", "seed": int(seed)}
    with open(root / "scenes" / f"CLEVR_{clevr_split}_scenes.json", "w") as f:
        json.dump({"info": info, "scenes": scene_dicts}, f, separators=(",", ":"))
    with open(root / "questions" / f"CLEVR_{clevr_split}_questions.json", "w") as f:
        json.dump({"info": info, "questions": records}, f, separators=(",", ":"))
    return {"scenes": len(scene_dicts), "questions": len(records), "scenes_arrays": scenes_arrays,
            "question_arrays": question_arrays, "timing": timing, "wall_seconds": time.perf_counter() - start}


def answer_distribution(question_arrays):
    """`{category: [(answer string, fraction), ...]}`, most frequent first, and the counts per category."""
    out = {}
    for k, name in enumerate(CATEGORIES):
        answers = question_arrays["answer"][question_arrays["category"] == k]
        values, counts = np.unique(answers, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        out[name] = (int(len(answers)), [(ANSWERS[int(values[i])], float(counts[i]) / max(len(answers), 1))
                                         for i in order])
    return out


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m relzoo.datasets.clevr",
                                     description=f"Generate {NAME} as a folder in CLEVR_v1.0's layout.")
    parser.add_argument("--split", default="train", choices=sorted(SPLIT_SIZES))
    parser.add_argument("--scenes", type=int, default=None, help="scenes (default: the split's standard size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--questions-per-scene", type=int, default=QUESTIONS_PER_SCENE)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    parser.add_argument("--no-images", action="store_true", help="write the JSON files only (no rendering)")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)

    summary = save_json(args.out, args.split, args.scenes, args.seed, args.questions_per_scene,
                        images=not args.no_images, workers=args.workers)
    t, n, s = summary["timing"], summary["questions"], summary["scenes"]
    wall = summary["wall_seconds"]
    print(f"wrote {s} scenes, {n} questions to {args.out} in {wall:.1f} s "
          f"({n / wall:.0f} questions/s, {s / wall:.1f} scenes/s, wall clock, {args.workers or os.cpu_count()} "
          f"workers{'' if args.no_images else ', rendering included'})")
    no_render = t["scenes"] + t["questions"] + t["features"]
    print(f"CPU seconds (summed over workers): scenes {t['scenes']:.1f}, questions {t['questions']:.1f}, "
          f"features {t['features']:.1f}"
          + (f", render {t['render']:.1f}, png {t['png']:.1f}" if "render" in t else ""))
    print(f"per CPU: {n / no_render:.0f} questions/s without rendering"
          + (f"; {s / t['render']:.1f} scenes/s rendering ({n / (no_render + t['render']):.0f} questions/s "
             "with it)" if "render" in t else ""))
    for name, (count, dist) in answer_distribution(summary["question_arrays"]).items():
        shown = ", ".join(f"{a} {p:.2f}" for a, p in dist[:8]) + (", ..." if len(dist) > 8 else "")
        print(f"  {name:18s} {count:6d} questions ({count / max(n, 1):.1%}): {shown}")


if __name__ == "__main__":
    main()

"""Sort-of-CLEVR in the file format of the most used public generator (a pickle), read and written.

That generator (the PyTorch Relation Network port's `sort_of_clevr_generator.py`) draws with
OpenCV and saves one pickle, `(train, test)`, each a list of one tuple per image:

    (image, (ternary questions, answers), (binary questions, answers), (non-relational questions, answers))

(older versions: `(image, (relational questions, answers), (non-relational questions, answers))`),
where `image` is a float `(75, 75, 3)` array in [0, 1] in OpenCV's BGR channel order, each
question list holds 10 arrays of 18 floats in the encoding `relzoo.datasets.sort_of_clevr` uses
(11 floats in the oldest version: colour [0:6], type [6:8], subtype [8:11]; read as well) and each
answer list 10 ints in the same 10 classes. Its filled circles of radius 5 are OpenCV's: a
rasterised disc with one-pixel spikes at the four extremes (81 pixels; our generator draws the
97-pixel disc of radius 5.5), which `render` reproduces.

    from relzoo.datasets import sort_of_clevr_public as public
    train, test = public.read_pickle("data/sort-of-clevr.pickle")  # scene dicts
    examples = public.pickle_examples("data/sort-of-clevr.pickle", "test")

`relzoo evaluate rn_sort_of_clevr --data data/sort-of-clevr.pickle` measures a zoo model on such a
file. `write_pickle` writes our generator's scenes in this format, drawn as OpenCV draws them.
Reading uses a restricted unpickler that builds only numpy arrays, lists, tuples and numbers: a
pickle that asks for anything else is refused instead of run.
"""

import pickle

import numpy as np

from relzoo.datasets import sort_of_clevr as soc

SPLITS = ("train", "test")  # the pickle's two lists
SPIKY_DISC = soc.SPIKY_DISC  # OpenCV's filled circle of radius 5 (81 pixels)
_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"), ("_codecs", "encode"),  # bytes in protocol 2
}


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it asks for {module}.{name}, and a Sort-of-CLEVR file holds only numpy "
                                     "arrays, lists and numbers; nothing of it was run")


def render(centres, shapes):
    """Images as the public generator stores them: float64 `(N, 75, 75, 3)` in [0, 1], BGR, every
    circle OpenCV's."""
    every = np.ones(np.shape(shapes), bool)
    return soc.render(centres, shapes, spiky=every)[..., ::-1] / 255.0


def _entries(scenes, images):
    """One public tuple per image from our scene dict (slots 0-9 non-relational, 10-19 binary, 20-29 ternary)."""
    out = []
    for i, image in enumerate(images):
        q, a = scenes["question"][i], scenes["answer"][i]
        part = {t: ([q[j].astype(np.float64) for j in range(10 * t, 10 * t + 10)],
                    [int(v) for v in a[10 * t:10 * t + 10]]) for t in range(3)}
        out.append((image, part[2], part[1], part[0]))
    return out


def write_pickle(path, train_scenes, test_scenes):
    """Writes `(train, test)` scene dicts (`sort_of_clevr.generate_scenes`) as the public generator's pickle."""
    data = tuple(_entries(s, render(s["centre"], s["shape"])) for s in (train_scenes, test_scenes))
    with open(path, "wb") as f:
        pickle.dump(data, f)


def _question18(q):
    """An 18-float question from the public 18- or 11-float encoding."""
    q = np.asarray(q, np.float32).reshape(-1)
    if q.shape == (soc.QUESTION_DIM,):
        return q
    if q.shape != (11,):
        raise ValueError(f"sort_of_clevr_public: a question has {q.shape[0]} floats; expected 18 (or 11 in the "
                         "oldest format).")
    out = np.zeros(soc.QUESTION_DIM, np.float32)
    out[0:6], out[12:14], out[15:18] = q[0:6], q[6:8], q[8:11]
    return out


def _scene_dict(entries, where):
    """Our scene dict (`image` uint8 RGB, `question`, `answer`, `kind`) from a list of public tuples."""
    if not isinstance(entries, (list, tuple)) or not entries:
        raise ValueError(f"sort_of_clevr_public: {where} should be a non-empty list of per-image tuples.")
    images, questions, answers = [], [], []
    for n, entry in enumerate(entries):
        if not isinstance(entry, (list, tuple)) or len(entry) not in (3, 4):
            raise ValueError(f"sort_of_clevr_public: {where}[{n}] should be (image, ternary?, binary, "
                             f"non-relational); got {type(entry).__name__} of length {len(entry)}.")
        image = np.asarray(entry[0], np.float64)
        if image.shape != (soc.IMAGE_SIZE, soc.IMAGE_SIZE, 3):
            raise ValueError(f"sort_of_clevr_public: {where}[{n}]'s image is {image.shape}; expected (75, 75, 3).")
        images.append(np.clip(np.rint(image[..., ::-1] * 255.0), 0, 255).astype(np.uint8))  # BGR -> RGB
        groups = list(entry[1:])[::-1]  # non-relational, binary (, ternary): our slot order
        questions.append([_question18(q) for g in groups for q in g[0]])
        answers.append([int(v) for g in groups for v in g[1]])
    counts = {len(q) for q in questions}
    if len(counts) != 1:
        raise ValueError(f"sort_of_clevr_public: the images of {where} have different numbers of questions "
                         f"({sorted(counts)}).")
    question = np.asarray(questions, np.float32)  # (N, Q, 18)
    kind = np.argmax(question[..., 12:15], -1) * 3 + np.argmax(question[..., 15:18], -1)
    return {"image": np.stack(images), "question": question, "answer": np.asarray(answers, np.int32),
            "kind": kind.astype(np.int32)}


def read_pickle(path):
    """`(train, test)` scene dicts from the public generator's pickle (see the module docstring)."""
    with open(path, "rb") as f:
        try:
            data = _NumpyOnly(f, encoding="latin1").load()  # latin1: pickles of Python 2 numpy arrays too
        except (pickle.UnpicklingError, EOFError) as err:
            raise ValueError(f"sort_of_clevr_public: {path} is not a Sort-of-CLEVR pickle ({err}).") from None
    if not isinstance(data, (list, tuple)) or len(data) != 2:
        raise ValueError(f"sort_of_clevr_public: {path} should hold (train, test); it holds {type(data).__name__}.")
    return tuple(_scene_dict(entries, f"{path}'s {split} list") for entries, split in zip(data, SPLITS))


def pickle_examples(path, split="test"):
    """The `split` ("train" or "test") of a public pickle as pixel `Examples` (per type and subtype groups)."""
    if split not in SPLITS:
        raise ValueError(f"sort_of_clevr_public: a public pickle has the splits {SPLITS}; got {split!r}.")
    return soc.examples_from_scenes(read_pickle(path)[SPLITS.index(split)], "pixels")


__all__ = ["SPIKY_DISC", "pickle_examples", "read_pickle", "render", "write_pickle"]

"""A reader for the real CLEVR v1.0 data set, from a local copy (nothing is downloaded).

It yields exactly the features of our CLEVR-format generator (see `features`), so a model
trained on one accepts the other unchanged. The expected layout, as in CLEVR_v1.0.zip
(https://cs.stanford.edu/people/jcjohns/clevr/)::

    CLEVR_v1.0/
      images/{train,val,test}/CLEVR_{split}_{index:06d}.png     480x320 RGBA (or RGB) PNGs
      questions/CLEVR_{split}_questions.json   {"info": ..., "questions": [question, ...]}
      scenes/CLEVR_{split}_scenes.json         {"info": ..., "scenes": [scene, ...]}  (train, val)

The test split's questions have no `answer`, `program` or `question_family_index`, and
there is no test scenes file: its features have `answer` -1, `program`, `family` and
`category` "", all-zero `objects` and an all-False `object_mask`.

    folder = ClevrFolder("/data/CLEVR_v1.0")        # or its parent folder
    for f in folder.features("val", limit=10): ...  # one feature dict per question
    train = folder.examples("train", "state")       # `Examples` for the trainer
    folder.unknown_words("train")                   # words our vocabulary lacks (-> <UNK>)

Split names are CLEVR's ("train", "val", "test"); "validation" is accepted for "val".
"""

import collections
import itertools
import json
from pathlib import Path

import numpy as np

from relzoo.datasets.clevr import features as F

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"validation": "val"}
FOLDER_NAME = "CLEVR_v1.0"
HOMEPAGE = "https://cs.stanford.edu/people/jcjohns/clevr/"
FEATURE_KEYS = ("image", "objects", "object_mask", "question", "question_tokens", "program", "answer",
                "family", "category", "image_index")

_LAYOUT_HINT = (f"expected {FOLDER_NAME} with images/, questions/, scenes/ under {{root}}; download "
                f"CLEVR_v1.0.zip from {HOMEPAGE} and unzip it there (the folder itself or its parent "
                "may be given)")


def clevr_split(split):
    """CLEVR's name of a split: "train", "val" or "test" ("validation" -> "val")."""
    name = SPLIT_ALIASES.get(split, split)
    if name not in SPLITS:
        raise ValueError(f"CLEVR: split must be one of {SPLITS} (or 'validation'), got {split!r}")
    return name


def _load_json(path, key):
    """The list under `key` in a CLEVR JSON file; errors name the file."""
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"CLEVR: missing {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"CLEVR: {path} is not valid JSON ({e}); the file may be truncated or corrupt: "
                         f"unzip CLEVR_v1.0.zip again") from None
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        got = f"an object with keys {sorted(data)[:5]}" if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"CLEVR: {path} should hold a JSON object with a list under {key!r} "
                         f"(CLEVR's {{'info': ..., '{key}': [...]}}); got {got}")
    return items


class ClevrFolder:
    """A local CLEVR v1.0 folder (`root` is CLEVR_v1.0 itself or the folder holding it).

    Construction checks the layout: raises `FileNotFoundError` naming the missing path when
    there is no CLEVR_v1.0 folder with a `questions/` folder holding at least one
    `CLEVR_{split}_questions.json`. `images/` and `scenes/` are checked when first needed
    (CLEVR_v1.0_no_images.zip has no images but serves the state representation).

    Attributes:
        root: the CLEVR_v1.0 folder (a `Path`).
        splits: the splits that have a questions file, in `SPLITS` order.
    """

    def __init__(self, root):
        given = Path(root).expanduser()
        hint = _LAYOUT_HINT.format(root=given)
        if not given.is_dir():
            raise FileNotFoundError(f"CLEVR: no folder {given}; {hint}")
        if (given / "questions").is_dir():
            self.root = given
        elif (given / FOLDER_NAME / "questions").is_dir():
            self.root = given / FOLDER_NAME
        else:
            folder = given / FOLDER_NAME if (given / FOLDER_NAME).is_dir() else given
            raise FileNotFoundError(f"CLEVR: missing {folder / 'questions'}; {hint}")
        self.splits = tuple(s for s in SPLITS if self.questions_path(s).is_file())
        if not self.splits:
            expected = ", ".join(self.questions_path(s).name for s in SPLITS)
            raise FileNotFoundError(f"CLEVR: no questions file in {self.root / 'questions'} (expected {expected}); "
                                    f"{hint}")
        self._questions = {}
        self._scenes = {}
        self._scene_lookup = {}
        self._vocabulary = None

    def __repr__(self):
        return f"ClevrFolder({str(self.root)!r}, splits={self.splits})"

    # ------------------------------------------------------------------------ paths

    def questions_path(self, split):
        """`questions/CLEVR_{split}_questions.json`."""
        split = clevr_split(split)
        return self.root / "questions" / f"CLEVR_{split}_questions.json"

    def scenes_path(self, split):
        """`scenes/CLEVR_{split}_scenes.json` (CLEVR has none for test)."""
        split = clevr_split(split)
        return self.root / "scenes" / f"CLEVR_{split}_scenes.json"

    def image_path(self, split, image_index):
        """`images/{split}/CLEVR_{split}_{image_index:06d}.png`."""
        split = clevr_split(split)
        return self.root / "images" / split / f"CLEVR_{split}_{int(image_index):06d}.png"

    # ------------------------------------------------------------------------ raw data

    def questions(self, split):
        """The question dicts of a split, in file order (CLEVR's question JSON form; loaded once).

        Raises `FileNotFoundError` naming the missing questions file and `ValueError` naming a
        malformed one."""
        split = clevr_split(split)
        if split not in self._questions:
            path = self.questions_path(split)
            if not path.is_file():
                raise FileNotFoundError(f"CLEVR: missing {path} (this folder has questions for "
                                        f"{', '.join(self.splits)}); {_LAYOUT_HINT.format(root=self.root.parent)}")
            items = _load_json(path, "questions")
            for i, q in enumerate(items):
                if not isinstance(q, dict) or not isinstance(q.get("question"), str) or "image_index" not in q:
                    raise ValueError(f"CLEVR: question {i} of {path} needs 'question' and 'image_index', "
                                     f"got {q!r}"[:400])
            self._questions[split] = items
        return self._questions[split]

    def scenes(self, split):
        """The scene dicts of a split (CLEVR's scene JSON form; loaded once), or None for the
        test split, which has no scenes file.

        Raises `FileNotFoundError` naming the missing scenes file (train, val) and
        `ValueError` naming a malformed one."""
        split = clevr_split(split)
        if split not in self._scenes:
            path = self.scenes_path(split)
            if not path.is_file():
                if split == "test":
                    self._scenes[split] = None
                    return None
                raise FileNotFoundError(f"CLEVR: missing {path}; the {split} split needs its scenes file "
                                        f"({_LAYOUT_HINT.format(root=self.root.parent)})")
            self._scenes[split] = _load_json(path, "scenes")
        return self._scenes[split]

    def _scene_of(self, split, question, position):
        """The scene a question is about, or None when the split has no scenes."""
        scenes = self.scenes(split)
        if scenes is None:
            return None
        if split not in self._scene_lookup:
            lookup = {}
            for i, scene in enumerate(scenes):
                if not isinstance(scene, dict) or "image_index" not in scene:
                    raise ValueError(f"CLEVR: scene {i} of {self.scenes_path(split)} has no 'image_index'")
                lookup[int(scene["image_index"])] = scene
            self._scene_lookup[split] = lookup
        index = int(question["image_index"])
        scene = self._scene_lookup[split].get(index)
        if scene is None:
            raise ValueError(f"CLEVR: question {question.get('question_index', position)} of "
                             f"{self.questions_path(split)} is about image {index}, but "
                             f"{self.scenes_path(split)} has no scene with image_index {index}")
        return scene

    def image(self, split, image_index):
        """The image of a scene as the features hold it: uint8 `(IMAGE_SIZE, IMAGE_SIZE, 3)`
        (CLEVR's 480x320 RGBA PNG converted to RGB and resized by `features.resize_image`).

        Raises `FileNotFoundError` naming a missing PNG and `ValueError` naming an unreadable one."""
        from PIL import Image, UnidentifiedImageError

        path = self.image_path(split, image_index)
        try:
            with Image.open(path) as im:
                im.load()
                return F.resize_image(im.convert("RGB"))
        except FileNotFoundError:
            where = ("" if (self.root / "images").is_dir() else
                     f"; there is no {self.root / 'images'} folder: the pixels need CLEVR_v1.0.zip's images "
                     "(CLEVR_v1.0_no_images.zip has none)")
            raise FileNotFoundError(f"CLEVR: missing image {path}{where}") from None
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise ValueError(f"CLEVR: cannot read image {path} ({e}); the file may be corrupt") from None

    # ------------------------------------------------------------------------ features

    def _vocab(self, vocabulary):
        if vocabulary is not None:
            return vocabulary
        if self._vocabulary is None:
            self._vocabulary = F.Vocabulary.shipped("clevr")
        return self._vocabulary

    def _question_features(self, split, question, position, vocabulary):
        try:
            return F.question_features(question, vocabulary)
        except (ValueError, TypeError) as e:
            raise ValueError(f"CLEVR: question {question.get('question_index', position)} of "
                             f"{self.questions_path(split)}: {e}") from e

    def _state(self, split, question, position):
        scene = self._scene_of(split, question, position)
        if scene is None:
            return np.zeros((F.MAX_OBJECTS, F.STATE_DIM), np.float32), np.zeros((F.MAX_OBJECTS,), bool)
        try:
            return F.scene_state(scene)
        except ValueError as e:
            raise ValueError(f"CLEVR: the scene of image {question['image_index']} in "
                             f"{self.scenes_path(split)}: {e}") from e

    def features(self, split, limit=None, vocabulary=None):
        """Per-question feature dicts, in question-file order (the first `limit` questions).

        Each dict has exactly `FEATURE_KEYS`, encoded as our generator's (see `features`):
        `image` uint8 `(128, 128, 3)`, `objects` float32 `(MAX_OBJECTS, STATE_DIM)` =
        `(10, 18)`, `object_mask` bool `(10,)`, `question` str, `question_tokens` int32
        `(MAX_QUESTION_LENGTH,)` = `(50,)`, `program` str (JSON), `answer` int32 scalar
        (index in `executor.ANSWERS`), `family` str ("clevr_<question_family_index>"),
        `category` str (one of `CATEGORIES`, from the program), `image_index` int32 scalar.

        The test split has no scenes or answers: `objects` zeros, `object_mask` all False,
        `answer` -1, `program`, `family` and `category` "". Words outside `vocabulary` (the
        shipped one by default) become <UNK>; see `unknown_words`.
        """
        split = clevr_split(split)
        vocabulary = self._vocab(vocabulary)
        questions = self.questions(split)  # load (and check) the files now, not at the first next()
        self.scenes(split)
        return self._features(split, questions, limit, vocabulary)

    def _features(self, split, questions, limit, vocabulary):
        cached_index, cached_image = None, None  # CLEVR's questions come grouped by image
        for position, question in enumerate(itertools.islice(questions, limit)):
            out = self._question_features(split, question, position, vocabulary)
            objects, mask = self._state(split, question, position)
            index = int(question["image_index"])
            if index != cached_index:
                cached_index, cached_image = index, self.image(split, index)
                cached_image.setflags(write=False)  # shared by the questions about this image
            yield {
                "image": cached_image,
                "objects": objects,
                "object_mask": mask,
                "question": out["question"],
                "question_tokens": out["question_tokens"],
                "program": out["program"],
                "answer": out["answer"],
                "family": out["family"],
                "category": out["category"],
                "image_index": np.int32(index),
            }

    def examples(self, split, representation="pixels", limit=None, vocabulary=None, start=0):
        """The questions `start` to `limit` (the first `limit` by default) of a split as `Examples`
        (via `features.to_examples`).

        Scene arrays are stored once per image, in order of first use: "pixels" ->
        `image` uint8 `(S, 128, 128, 3)` (fed as float32 in [0, 1]); "state" -> `objects`
        float32 `(S, 10, 18)` and `object_mask` bool `(S, 10)`. Per question: the input
        `question` int32 `(N, 50)`, `answers` int32 `(N,)`, and the group `category`.
        Only the images needed are read (the full train split's pixels take about 3.4 GB).

        Raises `ValueError` for the test split (no answers) and for "state" on a split
        without scenes.
        """
        split = clevr_split(split)
        if representation not in F.REPRESENTATIONS:
            raise ValueError(f"CLEVR: representation must be one of {F.REPRESENTATIONS}, got {representation!r}")
        if representation == "state" and self.scenes(split) is None:
            raise ValueError(f"CLEVR: the state representation needs scenes, and the {split} split has no "
                             f"scenes file ({self.scenes_path(split)}); use the pixels representation")
        vocabulary = self._vocab(vocabulary)
        questions = self.questions(split)[start:limit]
        unanswered = sum("answer" not in q for q in questions)
        if unanswered:
            why = ("CLEVR's test split has no answers" if split == "test"
                   else f"{unanswered} of its questions have no 'answer'")
            raise ValueError(f"CLEVR: cannot make training/evaluation examples of the {split} split from "
                             f"{self.questions_path(split)}: {why}; use features('{split}') to predict answers")
        scene_of_image = {}  # image_index -> (position in the scene arrays, its first question, that one's position)
        scene_index = np.zeros((len(questions),), np.int32)
        tokens = np.zeros((len(questions), F.MAX_QUESTION_LENGTH), np.int32)
        answers = np.zeros((len(questions),), np.int32)
        categories = []
        for i, question in enumerate(questions):
            out = self._question_features(split, question, i, vocabulary)
            tokens[i], answers[i] = out["question_tokens"], out["answer"]
            categories.append(out["category"])
            image_index = int(question["image_index"])
            if image_index not in scene_of_image:
                self._scene_of(split, question, i)  # a question about an image without a scene is an error
                scene_of_image[image_index] = (len(scene_of_image), question, i)
            scene_index[i] = scene_of_image[image_index][0]
        if representation == "pixels":
            scenes = {"image": np.zeros((len(scene_of_image), F.IMAGE_SIZE, F.IMAGE_SIZE, 3), np.uint8)}
            for image_index, (s, _, _) in scene_of_image.items():
                scenes["image"][s] = self.image(split, image_index)
        else:
            scenes = {"objects": np.zeros((len(scene_of_image), F.MAX_OBJECTS, F.STATE_DIM), np.float32),
                      "object_mask": np.zeros((len(scene_of_image), F.MAX_OBJECTS), bool)}
            for s, question, position in scene_of_image.values():
                scenes["objects"][s], scenes["object_mask"][s] = self._state(split, question, position)
        return F.to_examples(
            scenes,
            {"scene_index": scene_index, "question_tokens": tokens, "answer": answers,
             "category": np.array(categories, dtype=object)},
            representation,
        )

    def unknown_words(self, split, limit=None, vocabulary=None):
        """`collections.Counter` of the question words (of the first `limit` questions) that
        `vocabulary` (the shipped one by default) lacks; they are encoded as <UNK>."""
        split = clevr_split(split)
        vocabulary = self._vocab(vocabulary)
        counts = collections.Counter()
        for question in itertools.islice(self.questions(split), limit):
            counts.update(vocabulary.unknown(question["question"]))
        return counts


def load_examples(root, split, representation="pixels", limit=None):
    """`ClevrFolder(root).examples(split, representation, limit)`: `Examples` of a local CLEVR v1.0."""
    return ClevrFolder(root).examples(split, representation=representation, limit=limit)


__all__ = ["FEATURE_KEYS", "SPLITS", "ClevrFolder", "clevr_split", "load_examples"]

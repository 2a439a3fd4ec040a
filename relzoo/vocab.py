"""Question vocabularies: English questions <-> token ids, and the answers that go with them.

A leaf module (numpy and the standard library only), shared by the data sets that write token
ids and by the library that reads them (`relzoo.ask`, `relzoo.export`):

    from relzoo.vocab import Vocabulary
    vocab = Vocabulary.shipped("clevr")       # relzoo/vocabularies/clevr.json
    vocab.encode("How many cubes are there?")  # int32 (50,): <START> words <END> <NULL>...
    vocab.answers                              # ("yes", "no", "0", ..., "small"): class id -> answer

Files use the layout of the CLEVR-IEP code's `vocab.json` (`question_token_to_idx`,
`answer_token_to_idx`), so vocabularies interoperate.
"""

import json
import re
from pathlib import Path

import numpy as np

NULL, START, END, UNK = "<NULL>", "<START>", "<END>", "<UNK>"
SPECIAL_TOKENS = (NULL, START, END, UNK)
QUESTION_LENGTH = 50  # tokens, <START> and <END> included; CLEVR's longest question has 43 words
SHIPPED = Path(__file__).with_name("vocabularies")

_TOKEN_RE = re.compile(r"[a-z0-9]+|[?;,.!]")


def tokenize(text):
    """Lower-cased words and punctuation (`? ; , . !`) of a question, e.g.
    "Is there a big cube?" -> ["is", "there", "a", "big", "cube", "?"]."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize: expected a question string, got {type(text).__name__}")
    return _TOKEN_RE.findall(text.lower())


def shipped_path(name):
    """The file of the vocabulary shipped with relzoo as `name` (e.g. "clevr")."""
    path = SHIPPED / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in SHIPPED.glob("*.json"))
        raise ValueError(f"Unknown question vocabulary {name!r}; relzoo ships {known}.")
    return path


def _ordered(table, path, key):
    tokens = sorted(table, key=table.get)
    if [table[t] for t in tokens] != list(range(len(tokens))):
        raise ValueError(f"Vocabulary: the ids of {key!r} in {path} are not 0..{len(tokens) - 1}")
    return tokens


class Vocabulary:
    """Question tokens <-> ids, and the answer classes. Ids 0..3 are <NULL> (padding), <START>,
    <END>, <UNK>; `answers[k]` is the answer string of class k (empty when the file has none)."""

    def __init__(self, tokens, answers=()):
        tokens = list(tokens)
        if tuple(tokens[:len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"Vocabulary: the first tokens must be {SPECIAL_TOKENS}, got {tokens[:4]}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("Vocabulary: duplicate tokens")
        self.tokens = tuple(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.answers = tuple(answers)

    def __len__(self):
        return len(self.tokens)

    @classmethod
    def build(cls, texts, extra_words=(), answers=()):
        """A vocabulary of every token in `texts` and `extra_words`, sorted after the special tokens."""
        words = set(extra_words)
        for text in texts:
            words.update(tokenize(text))
        return cls(SPECIAL_TOKENS + tuple(sorted(words - set(SPECIAL_TOKENS))), answers)

    @classmethod
    def load(cls, path):
        """The vocabulary in a `vocab.json` file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            table = data["question_token_to_idx"]
            answers = data.get("answer_token_to_idx") or {}
        except FileNotFoundError:
            raise FileNotFoundError(f"Vocabulary: no vocabulary file at {path}") from None
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"Vocabulary: {path} is not a vocab.json with 'question_token_to_idx' ({e})") from None
        return cls(_ordered(table, path, "question_token_to_idx"), _ordered(answers, path, "answer_token_to_idx"))

    @classmethod
    def shipped(cls, name):
        """The vocabulary shipped with relzoo as `name` (`relzoo/vocabularies/<name>.json`)."""
        return cls.load(shipped_path(name))

    def save(self, path):
        data = {"question_token_to_idx": {t: i for i, t in enumerate(self.tokens)},
                "answer_token_to_idx": {a: i for i, a in enumerate(self.answers)}}
        Path(path).write_text(json.dumps(data, indent=1) + "\n")

    def encode(self, text, length=QUESTION_LENGTH):
        """int32 `(length,)`: <START>, the token ids (<UNK> for unknown words), <END>, <NULL> padding.
        `ValueError` when the question needs more than `length` tokens."""
        words = tokenize(text)
        if len(words) + 2 > length:
            raise ValueError(f"Vocabulary.encode: the question has {len(words)} tokens; with <START> and <END> "
                             f"at most {length - 2} fit (pass a larger length): {text!r}")
        unk = self.index[UNK]
        ids = [self.index[START]] + [self.index.get(w, unk) for w in words] + [self.index[END]]
        out = np.zeros((length,), np.int32)
        out[:len(ids)] = ids
        return out

    def decode(self, ids):
        """The words of an encoded question (special tokens dropped), joined by spaces."""
        return " ".join(self.tokens[int(i)] for i in np.asarray(ids).reshape(-1)
                        if int(i) >= len(SPECIAL_TOKENS))

    def unknown(self, text):
        """The words of `text` this vocabulary does not have."""
        return [w for w in tokenize(text) if w not in self.index]


__all__ = ["END", "NULL", "QUESTION_LENGTH", "SPECIAL_TOKENS", "START", "UNK", "Vocabulary", "shipped_path",
           "tokenize"]

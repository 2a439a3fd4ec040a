"""The TFDS builder of Sort-of-CLEVR: nothing to download, the seeded generator writes it.

    import relzoo.datasets.sort_of_clevr_tfds  # registers "sort_of_clevr"
    ds = tfds.load("sort_of_clevr", split="train")             # 9,800 images, 30 questions each
    ds = tfds.load("sort_of_clevr/tiny", split="test")         # a few images, for tests

One example is one image with its 30 questions: `image` (75, 75, 3) uint8, `objects`
(6, 10) float32 (the state descriptions of the same scene), `question` (30, 18) float32,
`answer` (30,) int64, `kind` (30,) int64 (type * 3 + subtype). Splits come from disjoint
seed streams of `sort_of_clevr.generate_scenes` and are identical to its arrays.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from relzoo.datasets import sort_of_clevr as soc


@dataclasses.dataclass
class SortOfClevrConfig(tfds.core.BuilderConfig):
    sizes: dict = dataclasses.field(default_factory=lambda: dict(soc.SPLIT_SIZES))
    seed: int = 0


class SortOfClevr(tfds.core.GeneratorBasedBuilder):
    """Sort-of-CLEVR (Santoro et al. 2017), generated offline from a seed."""

    VERSION = tfds.core.Version(soc.VERSION)
    RELEASE_NOTES = {"1.0.0": "The public generator's encoding; 30 questions per image (10 per type)."}
    BUILDER_CONFIGS = [
        SortOfClevrConfig(name="default", description="train 9,800 / validation 200 / test 200 images, seed 0"),
        SortOfClevrConfig(name="tiny", description="16 / 4 / 4 images, for tests",
                          sizes={"train": 16, "validation": 4, "test": 4}),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self):
        q = soc.QUESTIONS_PER_TYPE * len(soc.TYPE_NAMES)
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(soc.IMAGE_SIZE, soc.IMAGE_SIZE, 3)),
                    "objects": tfds.features.Tensor(shape=(soc.NUM_OBJECTS, soc.STATE_DIM), dtype=np.float32),
                    "question": tfds.features.Tensor(shape=(q, soc.QUESTION_DIM), dtype=np.float32),
                    "answer": tfds.features.Tensor(shape=(q,), dtype=np.int64),
                    "kind": tfds.features.Tensor(shape=(q,), dtype=np.int64),
                }
            ),
            homepage="https://arxiv.org/abs/1706.01427",
            citation="Santoro et al. 2017, A simple neural network module for relational reasoning.",
        )

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split) for split in ("train", "validation", "test")}

    def _generate_examples(self, split):
        data = soc.generate_scenes(self.builder_config.sizes[split], seed=self.builder_config.seed, split=split)
        for i in range(len(data["answer"])):
            yield i, {
                "image": data["image"][i],
                "objects": data["objects"][i],
                "question": data["question"][i],
                "answer": data["answer"][i].astype("int64"),
                "kind": data["kind"][i].astype("int64"),
            }

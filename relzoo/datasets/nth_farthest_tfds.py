"""The TFDS builder of the N-th farthest task: nothing to download, the seeded generator writes it.

    import relzoo.datasets.nth_farthest_tfds  # registers "nth_farthest"
    ds = tfds.load("nth_farthest", split="test")          # 10,000 fixed examples
    ds = tfds.load("nth_farthest/tiny", split="train")    # a few, for tests

One example: `sequence` (8, 40) float32 (per step: vector, label one-hot, n one-hot,
m one-hot) and `answer` (the label, 0..7). Splits are `nth_farthest.generate`'s arrays:
train (100,000 by default; the trainer uses the endless `stream` instead), validation
and test (10,000 each), from disjoint seed streams.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from relzoo.datasets import nth_farthest as nf


@dataclasses.dataclass
class NthFarthestConfig(tfds.core.BuilderConfig):
    sizes: dict = dataclasses.field(default_factory=lambda: {"train": 100000, **nf.SPLIT_SIZES})
    seed: int = 0


class NthFarthest(tfds.core.GeneratorBasedBuilder):
    """The N-th farthest task (Santoro et al. 2018), generated offline from a seed."""

    VERSION = tfds.core.Version(nf.VERSION)
    RELEASE_NOTES = {"1.0.0": "8 vectors of U(-1, 1)^16, labels a random permutation, n and m one-hot at every step."}
    BUILDER_CONFIGS = [
        NthFarthestConfig(name="default", description="train 100,000 / validation 10,000 / test 10,000, seed 0"),
        NthFarthestConfig(name="tiny", description="64 / 16 / 16 examples, for tests",
                          sizes={"train": 64, "validation": 16, "test": 16}),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self):
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "sequence": tfds.features.Tensor(shape=(nf.NUM_VECTORS, nf.STEP_DIM), dtype=np.float32),
                    "answer": tfds.features.ClassLabel(num_classes=nf.NUM_VECTORS),
                }
            ),
            supervised_keys=("sequence", "answer"),
            homepage="https://arxiv.org/abs/1806.01822",
            citation="Santoro et al. 2018, Relational recurrent neural networks.",
        )

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split) for split in ("train", "validation", "test")}

    def _generate_examples(self, split):
        x, y = nf.generate(self.builder_config.sizes[split], seed=self.builder_config.seed, split=split)
        for i in range(len(y)):
            yield i, {"sequence": x["sequence"][i], "answer": int(y[i])}

"""The TFDS builder of the real CLEVR v1.0, from a manual download (nothing is fetched).

    import relzoo.datasets.clevr_v1_tfds  # registers "clevr_v1"
    builder = tfds.builder("clevr_v1", data_dir=...)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir="/data"))  # holds CLEVR_v1.0/
    ds = builder.as_dataset(split="validation")

One example is one question with its scene, with the features of our CLEVR-format generator
(`clevr.features`, read by `clevr.reader.ClevrFolder`): `image` (128, 128, 3) uint8,
`objects` (10, 18) float32, `object_mask` (10,) bool, `question` text, `question_tokens`
(50,) int32, `program` text (JSON), `answer` int32 (index in `executor.ANSWERS`; -1 for
test), `family` text ("clevr_<question_family_index>"), `category` text. Splits: train,
validation (CLEVR's val), test (no answers, programs or scenes). Keys:
`f"{clevr_split}_{question_index}"`. Each image is stored once per question (about 10 each).
"""

import tensorflow_datasets as tfds

from relzoo.datasets.clevr import features as F
from relzoo.datasets.clevr.reader import HOMEPAGE, ClevrFolder

TFDS_SPLITS = {"train": "train", "validation": "val", "test": "test"}  # TFDS name -> CLEVR name


class ClevrV1(tfds.core.GeneratorBasedBuilder):
    """CLEVR v1.0 (Johnson et al. 2017) from a local copy, in relzoo's CLEVR feature encoding."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "CLEVR v1.0 questions with relzoo's CLEVR features (128x128 images, state rows)."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Download CLEVR_v1.0.zip (18 GB) from {HOMEPAGE} and unzip it in the manual dir, so that it holds "
        "CLEVR_v1.0/images/, CLEVR_v1.0/questions/ and CLEVR_v1.0/scenes/ (the CLEVR_v1.0 folder itself "
        "may also be given as the manual dir)."
    )

    def _info(self):
        return self.dataset_info_from_configs(
            description=__doc__,
            features=F.tfds_features(),
            homepage=HOMEPAGE,
            citation="Johnson et al. 2017, CLEVR: A Diagnostic Dataset for Compositional Language and "
                     "Elementary Visual Reasoning.",
        )

    def _split_generators(self, dl_manager):
        folder = ClevrFolder(dl_manager.manual_dir)
        return {name: self._generate_examples(folder, split)
                for name, split in TFDS_SPLITS.items() if split in folder.splits}

    def _generate_examples(self, folder, split):
        questions = folder.questions(split)
        for position, (question, example) in enumerate(zip(questions, folder.features(split))):
            yield f"{split}_{question.get('question_index', position)}", example

import os
import tempfile

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# the tests never read or fill the user's artifact cache, nor download from a hub they did not start
os.environ["RELZOO_CACHE"] = tempfile.mkdtemp(prefix="relzoo-test-cache-")
os.environ.pop("RELZOO_HUB", None)
os.environ.pop("RELZOO_HOME", None)


# `python -c` this with the trainer's arguments: the trainer runs with every TensorFlow import
# refused, as on the lent GPU machines (JAX, no TensorFlow)
_TRAIN_WITHOUT_TENSORFLOW = """
import sys, runpy
class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError("TensorFlow is blocked: the GPU machines have none")
sys.meta_path.insert(0, _NoTensorFlow())
sys.argv = ["training.train"] + sys.argv[1:]
runpy.run_module("training.train", run_name="__main__")
"""


@pytest.fixture
def train_without_tensorflow():
    return _TRAIN_WITHOUT_TENSORFLOW


@pytest.fixture(scope="session")
def clevr_folder(tmp_path_factory):
    """A CLEVR_v1.0-layout folder written by our generator: train (6 scenes, 4 questions each, seed 21)
    and val (4 scenes, 5 questions each, seed 22)."""
    from relzoo.datasets.clevr import dataset

    root = tmp_path_factory.mktemp("clevr") / "CLEVR_v1.0"
    dataset.save_json(root, "train", 6, seed=21, questions_per_scene=4, workers=1, progress=False)
    dataset.save_json(root, "validation", 4, seed=22, questions_per_scene=5, workers=1, progress=False)
    return root

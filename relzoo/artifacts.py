"""Artifacts on disk: the `.keras` file, its `card.json`, and their integrity checks.

An artifact folder `<name>/` holds the weights file (`model.keras`) and
`card.json`, and for models that read questions as token ids their vocabulary
(`vocab.json`). The card records the sha256 and size of each file; every load
checks them before Keras reads a byte of the model.
"""

import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
from pathlib import Path

CARD_FILE = "card.json"
WEIGHTS_FILE = "model.keras"
CARD_SCHEMA_VERSION = 1
EXTRA_FILE_NAMES = {"vocabulary": "vocab.json"}  # files beside the weights that a card may record: key -> file
EXTRA_FILE_KEYS = tuple(EXTRA_FILE_NAMES)

# Keys every published card must have (see the registry issue and DESIGN.md).
REQUIRED_CARD_KEYS = (
    "name",
    "description",
    "paper",
    "dataset",
    "params",
    "metrics",
    "training",
    "versions",
    "weights_file",
    "sha256",
    "size_bytes",
)


class ArtifactError(Exception):
    """An artifact cannot be used: missing, unreadable, or not what its card says."""


class ArtifactNotFoundError(ArtifactError, FileNotFoundError):
    """No artifact (or no card / weights file) where one was expected."""


class ArtifactIntegrityError(ArtifactError):
    """The weights file does not match the sha256 or size recorded in its card."""


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions():
    """Versions of the software an artifact was made with (no import of TensorFlow needed)."""
    return {
        "relzoo": package_version("relzoo"),
        "keras": package_version("keras"),
        "tensorflow": package_version("tensorflow"),
        "jax": package_version("jax"),
        "python": platform.python_version(),
    }


def hardware_description():
    """A one-line description of this machine's processor, cores and memory."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    gpus = gpu_names()
    accelerators = f"; GPU: {', '.join(gpus)}" if gpus else ""
    return f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.machine()}{accelerators}"


def gpu_names():
    """The names of this machine's NVIDIA GPUs (from `nvidia-smi`), with their memory; [] where
    there are none or `nvidia-smi` is missing or fails."""
    import subprocess

    try:
        run = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    if run.returncode != 0:
        return []
    names = []
    for line in run.stdout.splitlines():
        name, _, memory = line.partition(",")
        if name.strip():
            names.append(f"{name.strip()} ({memory.strip()})" if memory.strip() else name.strip())
    return names


def read_card(directory):
    """Reads and checks `directory/card.json`; a clear error when missing or malformed."""
    path = Path(directory) / CARD_FILE
    if not path.is_file():
        raise ArtifactNotFoundError(f"No model card at {path}: an artifact folder needs {CARD_FILE} beside the weights.")
    try:
        card = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ArtifactError(f"The model card {path} is not valid JSON ({err}).") from err
    if not isinstance(card, dict):
        raise ArtifactError(f"The model card {path} must hold a JSON object, found {type(card).__name__}.")
    missing = [k for k in REQUIRED_CARD_KEYS if k not in card]
    if missing:
        raise ArtifactError(f"The model card {path} lacks the keys {missing}.")
    return card


def verify_weights(path, sha256, size_bytes=None, kind="weights file"):
    """Checks the file's size and sha256 against the card; raises naming the file otherwise.
    `kind` names the file in the messages ("weights file", "vocabulary file")."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactNotFoundError(
            f"The {kind} {path} is missing (its card expects sha256 {sha256}, {size_bytes} bytes)."
        )
    size = path.stat().st_size
    if size_bytes is not None and size != size_bytes:
        how = "truncated" if size < size_bytes else "larger than recorded"
        raise ArtifactIntegrityError(
            f"The {kind} {path} is {size} bytes, its card expects {size_bytes} bytes ({how}); "
            f"expected sha256 {sha256}. Restore the file (e.g. `git checkout -- {path.name}` in its folder) "
            "or retrain it; it was not loaded."
        )
    got = sha256_file(path)
    if got != sha256:
        raise ArtifactIntegrityError(
            f"The {kind} {path} has sha256 {got}, but its card expects {sha256}: "
            "the file was altered or replaced. Restore the file or retrain it; it was not loaded."
        )
    return got


def _atomic_write_text(path, text):
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_card(directory, card):
    """Writes `card.json` (sorted keys, indented) atomically."""
    _atomic_write_text(Path(directory) / CARD_FILE, json.dumps(card, indent=2, sort_keys=True) + "\n")


def save_model_file(model, path):
    """Saves `model` to `path` (.keras) atomically, without optimizer state.

    Artifacts are for inference and fine-tuning: the optimizer's slots would
    double or triple the file for nothing, so the model is saved uncompiled.
    """
    import keras

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.keras")
    optimizer = getattr(model, "optimizer", None)
    compiled = getattr(model, "compiled", False)
    try:
        if optimizer is not None:
            # Save the architecture and weights only; restore the training state after.
            model.optimizer = None
            model.compiled = False
        keras.saving.save_model(model, tmp)
    finally:
        if optimizer is not None:
            model.optimizer = optimizer
            model.compiled = compiled
    os.replace(tmp, path)
    return path


def copy_file_record(source, directory, name=None):
    """Copies `source` into `directory` (atomically) and returns its card record
    `{"file", "sha256", "size_bytes"}`."""
    source = Path(source)
    if not source.is_file():
        raise ArtifactNotFoundError(f"Cannot add {source} to the artifact: no such file.")
    target = Path(directory) / (name or source.name)
    tmp = target.with_name(target.name + ".partial")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    return {"file": target.name, "sha256": sha256_file(target), "size_bytes": target.stat().st_size}


def verify_artifact(directory, card=None):
    """Checks the weights file and every extra file a card records (`vocabulary`, ...); returns the card."""
    directory = Path(directory)
    card = read_card(directory) if card is None else card
    verify_weights(directory / card["weights_file"], card["sha256"], card.get("size_bytes"))
    for key in EXTRA_FILE_KEYS:
        record = card.get(key)
        if record is not None:
            verify_weights(directory / record["file"], record["sha256"], record.get("size_bytes"), f"{key} file")
    return card


def write_artifact(model, directory, card, weights_file=WEIGHTS_FILE, extra_files=None):
    """Saves `model` and its card into `directory`; returns the completed card.

    `card` holds the descriptive fields (name, description, paper, dataset,
    metrics, training, ...); this adds what is measured from the files: params,
    weights_file, sha256, size_bytes, versions and the creation time.
    `extra_files` maps a card key of `EXTRA_FILE_KEYS` (e.g. "vocabulary") to a file
    copied beside the weights; the card records its name, sha256 and size.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(extra_files or {}) - set(EXTRA_FILE_KEYS))
    if unknown:
        raise ValueError(f"write_artifact: extra_files keys must be among {EXTRA_FILE_KEYS}, got {unknown}.")
    path = save_model_file(model, directory / weights_file)
    full = dict(card)
    for key, source in (extra_files or {}).items():
        full[key] = copy_file_record(source, directory, EXTRA_FILE_NAMES[key])
    full.update(
        {
            "card_schema": CARD_SCHEMA_VERSION,
            "params": int(model.count_params()),
            "weights_file": weights_file,
            "sha256": sha256_file(path),
            "size_bytes": path.stat().st_size,
            "versions": versions(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
    )
    missing = [k for k in REQUIRED_CARD_KEYS if k not in full]
    if missing:
        raise ValueError(f"write_artifact: the card lacks {missing}.")
    write_card(directory, full)
    return full

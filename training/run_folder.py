"""A run's folder (`--run-dir`, default `runs/<name>`) and what it keeps between invocations.

    backup/latest.weights.h5   the resumable checkpoint (training/checkpoints.py)
    logs/                      TensorBoard: train/ and validation/ scalars, HParams
    data/                      the generated splits, keyed by their spec and the data set code
    artifact/                  model.keras and card.json of a run that does not publish
    epochs.json                every epoch's time and logs, over resumed invocations
    init_from.json             the weights a warm-started run began from
    recipe.json                the resolved recipe of the last invocation
"""

import json
import os
import shutil
from pathlib import Path


class RunFolder:
    """The paths of a run folder (see the module docstring)."""

    def __init__(self, root):
        self.root = Path(root)
        self.backup, self.logs, self.data, self.artifact = (self.root / n for n in ("backup", "logs", "data", "artifact"))
        self.epoch_log, self.init_record = self.root / "epochs.json", self.root / "init_from.json"

    def create(self):
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    def discard(self):
        """Empties the folder for `--restart`: the checkpoint, logs, epoch log and artifact go; the
        generated data (keyed by its spec and code, so valid for any run of that spec) stays."""
        for entry in self.root.iterdir():
            if entry.name == "data" and entry.is_dir():
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def write_json(self, path, value):
        """Writes `value` as JSON to `path` in the folder, atomically."""
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(json.dumps(value, indent=1))
        os.replace(tmp, path)


def read_epoch_log(path):
    """The epoch log (`epochs.json`) at `path`: `[{"epoch", "seconds", "first_in_invocation", "logs"}]`."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []


def history_of(epoch_log):
    """`{metric: [value per epoch]}` of an epoch log."""
    full = {}
    for entry in epoch_log:
        for key, value in entry["logs"].items():
            full.setdefault(key, []).append(value)
    return full

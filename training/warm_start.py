"""`train.init_from`: a new run that starts from published (or any `.keras`) weights, and the record
of where they came from that its card carries.

A fresh run copies every weight of the source (BatchNormalization statistics included; the
optimizer starts anew) after checking that each variable's shape matches, and writes the
source's record to the run folder. A resumed run takes its weights from its checkpoint and the
record from the run folder; a checkpoint that began from other weights than the recipe names is
refused, so that the card never credits the wrong source.
"""

import json
import os
import subprocess
from pathlib import Path

from relzoo import artifacts, hub, presets
from training.errors import CheckpointError

ROOT = Path(__file__).resolve().parent.parent
# what identifies each earlier source in a card; the rest (its recipe, hardware, ...) is in the card
# that its git_commit published
EARLIER_SOURCE_KEYS = ("init_from", "sha256", "git_commit", "card_created", "epochs", "test_metrics")


def git_commit_of(path):
    """The last commit of this source tree that wrote `path`, when the file is unchanged since
    (so that a card can say which published weights a run began from); None otherwise."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()

    try:
        rel = Path(path).resolve().relative_to(ROOT)
        if git("status", "--porcelain", "--", str(rel)):
            return None  # modified or untracked
        return git("log", "-1", "--format=%H", "--", str(rel)) or None
    except (ValueError, OSError, subprocess.SubprocessError):
        return None


def earlier_sources(init):
    """The chain of weights before a warm-start source, newest first, as a flat list of
    `EARLIER_SOURCE_KEYS` records. `init` is the source card's own `training.init_from`; cards written
    before this list existed nest the chain under `source_init_from` and are flattened the same way."""
    chain = []
    while isinstance(init, dict):
        chain.append({k: init.get(k) for k in EARLIER_SOURCE_KEYS})
        if "earlier_sources" in init:
            chain.extend(init["earlier_sources"] or [])
            break
        init = init.get("source_init_from")
    return chain


def _source_file(spec):
    """`(path, card or None, sha256)` of `train.init_from`: a zoo name with a published artifact, or a
    `.keras` path (checked against a card beside it when there is one)."""
    path = Path(spec).expanduser()
    if spec in presets.PRESETS and not path.suffix:
        directory = hub.resolve(spec)
        card = artifacts.verify_artifact(directory)
        return directory / card["weights_file"], card, card["sha256"]
    if not path.is_file() or path.suffix != ".keras":
        raise CheckpointError(f"train.init_from = {spec!r} is neither a zoo model with a published artifact nor a "
                              "path to a .keras file.")
    card = artifacts.read_card(path.parent) if (path.parent / artifacts.CARD_FILE).is_file() else None
    if card is not None and card.get("weights_file") == path.name:
        return path, card, artifacts.verify_weights(path, card["sha256"], card.get("size_bytes"))
    return path, None, artifacts.sha256_file(path)


def source_record(spec, path, card, sha256):
    """What a card records of its warm-start source."""
    record = {"init_from": spec, "file": str(path), "sha256": sha256, "size_bytes": Path(path).stat().st_size,
              "git_commit": git_commit_of(path)}
    if card is None:
        return record
    training = card.get("training") or {}
    record.update({
        "card_created": card.get("created"),
        "epochs": training.get("epochs"),
        # the whole chain: a source that was itself warm-started counts its own sources' epochs
        "epochs_total": training.get("epochs_total", training.get("epochs")),
        "train_time_s": training.get("train_time_s"),
        "train_time_total_s": training.get("train_time_total_s", training.get("train_time_s")),
        "hardware": training.get("hardware"),
        "recipe_values": training.get("recipe_values"),
        "test_metrics": next((m["values"] for m in card.get("metrics", []) if m.get("split") == "test"), None),
        "earlier_sources": earlier_sources(training.get("init_from")),
    })
    return record


def load_source(spec):
    """The model and the record of `train.init_from = spec`."""
    try:
        path, card, sha256 = _source_file(spec)
        return hub.load_keras_file(path), source_record(spec, path, card, sha256)
    except artifacts.ArtifactError as err:
        raise CheckpointError(f"train.init_from = {spec!r}: {err}") from err


def _check_shapes(mine, theirs, spec, what="weight"):
    if len(mine) != len(theirs):
        raise CheckpointError(f"train.init_from = {spec!r}: its {what} has {len(theirs)} weights, "
                              f"the recipe's {len(mine)}; the architectures differ.")
    for a, b in zip(mine, theirs):
        if tuple(a.shape) != tuple(b.shape):
            raise CheckpointError(f"train.init_from = {spec!r}: weight {b.path} has shape {tuple(b.shape)}, "
                                  f"the recipe's {a.path} {tuple(a.shape)}; the architectures differ.")


def _layer(model, name, spec, whose):
    try:
        return model.get_layer(name)
    except ValueError:
        raise CheckpointError(f"train.init_layers: {whose} ({spec!r}) has no layer {name!r}; its layers: "
                              f"{[layer.name for layer in model.layers]}.") from None


def copy_weights(model, source, spec, layers=None):
    """Copies every weight of `source` into `model` (or only those of the named `layers`, matched by
    name), refusing architectures that differ."""
    if layers is None:
        _check_shapes(model.weights, source.weights, spec, "model")
        model.set_weights(source.get_weights())
        return
    for name in layers:
        mine, theirs = _layer(model, name, spec, "the recipe's model"), _layer(source, name, spec, "the source")
        _check_shapes(mine.weights, theirs.weights, spec, f"layer {name!r}")
        mine.set_weights(theirs.get_weights())


def _copy_again(model, spec, recorded, layers):
    source, record = load_source(spec)
    if record["sha256"] != recorded["sha256"]:
        raise CheckpointError(f"train.init_from = {spec!r} has changed since this run began (sha256 "
                              f"{record['sha256'][:12]}..., recorded {recorded['sha256'][:12]}...): the weights the "
                              "checkpoint lacks cannot be restored; start again with --restart.")
    copy_weights(model, source, spec, layers)


def warm_start(model, spec, run, done, layers=None, resumes_all=True):
    """Starts `model` from `train.init_from = spec` (only the named `layers` when given) in the run
    folder `run` (`done`: epochs its checkpoint holds); returns the source's record, or None when
    the recipe has none. `resumes_all`: the checkpoint holds every weight of `model`; when not (a
    twin of part of it, `train.feed = "cells"`), a resumed run copies the source's weights again first."""
    recorded = json.loads(run.init_record.read_text()) if run.init_record.is_file() else None
    if done:
        began = None if recorded is None else recorded["init_from"]
        if began != spec:
            raise CheckpointError(
                f"The checkpoint in {run.backup} began from {began or 'a fresh initialisation'}, "
                f"but train.init_from is {spec!r}: set it back, or start again with --restart.")
        if spec is not None and not resumes_all:
            _copy_again(model, spec, recorded, layers)
        return recorded
    if spec is None:
        run.init_record.unlink(missing_ok=True)
        return None
    source, record = load_source(spec)
    copy_weights(model, source, spec, layers)
    if layers is not None:
        record["layers"] = list(layers)
    tmp = run.init_record.with_name(run.init_record.name + ".partial")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, run.init_record)
    which = "the weights" if layers is None else f"the layers {', '.join(layers)}"
    print(f"train: starting from {which} of {record['file']} (sha256 {record['sha256'][:12]}...).", flush=True)
    return record

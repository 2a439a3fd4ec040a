"""How training batches are made: `train.feed` picks one of four feeds behind one interface.

    examples        batches of `batch_size` questions drawn at random (tf.data on TensorFlow, numpy
                    `ExampleBatches` elsewhere; a `Stream` of fresh examples as `StreamBatches`)
    scenes          `scenes_per_batch` scenes with all their questions, the image encoder run once
                    per scene (scene_batches.py), with optional image jitter and, with
                    `train.cell_loss`, per-cell targets (cell_loss.py)
    object_buckets  questions about scenes with one number of objects, cut to it, so that the
                    relation module computes no padded pair (object_buckets.py)
    device          fixed-shape batches with raw pixels, scaled and jittered inside the compiled
                    step: one compile under JAX (device_feed.py)
    cells           the training scenes alone, `scenes_per_batch` a batch, and only the image stem
                    trained, on the per-cell loss (cell_feed.py): a pre-training stage

A feed tells the trainer which builder arguments the trained model needs (`model_kwargs`), which
model `fit` trains (`fit_model`: the model itself or a twin that shares its layers) with which loss
(`loss`), what `fit` consumes (`batches`), how many samples an epoch has and the validation data
(`validation`). With a twin, validation runs on
the model itself.
"""

import inspect
import math
from pathlib import Path

from relzoo.datasets import get_dataset
from relzoo.datasets.examples import Stream
from relzoo.models import get_builder
from training.batches import ExampleBatches, StreamBatches
from training.cell_feed import CellBatches, CellLossFn, cell_model
from training.cell_loss import cells_output, readout_of, scene_cell_targets
from training.data import fingerprint
from training.device_feed import DeviceBatches, clevr_mirror, device_fed_model
from training.errors import RecipeError
from training.optimizer import loss_fn
from training.object_buckets import ObjectBuckets, ObjectBucketsError
from training.scene_batches import SceneBatches, relation_layer, scene_groups, scene_grouped_model


def padded_id_inputs(model):
    """The inputs whose batches may be cut after their longest row: int token ids of any length
    `(batch, None)` that only Embedding layers masking id 0 read (and the mask `!= 0` itself), so
    that the trailing padding changes no output; an LSTM over them then runs fewer steps. Read off
    the model's functional config, which lists every call of every layer."""
    inputs = model.input if isinstance(model.input, dict) else {}
    config = model.get_config()
    layer_of = {key: value[0] for key, value in config.get("input_layers", {}).items()} \
        if isinstance(config.get("input_layers"), dict) else {}
    candidates = {layer_of.get(name, name): name for name, t in inputs.items()
                  if len(t.shape) == 2 and t.shape[1] is None and "int" in str(t.dtype)}
    readers = {layer: [] for layer in candidates}
    for layer in config.get("layers", []):
        for node in layer.get("inbound_nodes", []):
            args = node.get("args", []) if isinstance(node, dict) else []
            for source in _histories(node):
                if source in readers:
                    readers[source].append((layer, args))
    return sorted(candidates[layer] for layer, found in readers.items() if found and all(map(_masks_zero, found)))


def _histories(node):
    """The names of the layers whose outputs a node of a functional config reads."""
    if isinstance(node, dict):
        if node.get("class_name") == "__keras_tensor__":
            return [node["config"]["keras_history"][0]]
        return [name for value in node.values() for name in _histories(value)]
    if isinstance(node, (list, tuple)):
        return [name for value in node for name in _histories(value)]
    return []


def _masks_zero(reader):
    layer, args = reader
    if layer["class_name"] == "Embedding":
        return bool(layer["config"].get("mask_zero"))
    return layer["class_name"] == "NotEqual" and len(args) == 2 and args[1] == 0  # Embedding's mask, `ids != 0`


class Feed:
    """The `examples` feed, and the interface of every feed."""

    model_kwargs = {}
    twin = False

    def __init__(self, recipe, data, backend, cache_dir=None):
        self.recipe, self.train, self.data, self.backend = recipe, recipe.train, data, backend
        self.cache_dir = cache_dir  # where a feed may keep what it derives from the data (the run's data/)

    @classmethod
    def check_recipe(cls, recipe):
        """Raises `RecipeError` when the recipe's model cannot be fed this way (before any data is made)."""

    def fit_model(self, model):
        return model

    def loss(self):
        """`(loss, metrics)` the fitted model is compiled with."""
        return loss_fn(), ["accuracy"]

    def samples_per_epoch(self):
        return len(self.data["train"])

    def batches(self, model, start_epoch):
        """`(what fit trains on, a line that describes it or None)`, from epoch `start_epoch` on."""
        train, examples = self.train, self.data["train"]
        if isinstance(examples, Stream):
            return StreamBatches(examples, train.batch_size, start_epoch=start_epoch), None
        if self.backend == "tensorflow":
            return examples.tf_dataset(train.batch_size, seed=self.recipe.seed, shuffle=True,
                                       trim=padded_id_inputs(model)), None
        trim = padded_id_inputs(model)
        return ExampleBatches(examples, train.batch_size, self.recipe.seed, True, start_epoch, trim), None

    def validation(self, model):
        """The validation split as `fit` and `evaluate` take it (batches of at least 256)."""
        batch, examples, trim = max(self.train.batch_size, 256), self.data["validation"], padded_id_inputs(model)
        if self.backend == "tensorflow":
            return examples.tf_dataset(batch, seed=self.recipe.seed, trim=trim)
        return ExampleBatches(examples, batch, self.recipe.seed, trim=trim)


class SceneFeed(Feed):
    twin = True

    def __init__(self, recipe, data, backend, cache_dir=None):
        super().__init__(recipe, data, backend, cache_dir)
        self.module = get_dataset(recipe.dataset["name"])  # what the cells are taught from (train.cell_loss)
        self.readout = readout_of(self.module)

    def fit_model(self, model):
        return scene_grouped_model(model, self.data["train"].scenes, cell_loss=self.train.cell_loss,
                                   cell_readout=self.readout, cell_loss_grad=self.train.cell_loss_grad)

    def _cell_targets(self, model):
        if not self.train.cell_loss:
            return None
        return self._targets(model)

    def _targets(self, model):
        spec = self.recipe.dataset
        cells = cells_output(model, self.readout)
        where = "`cells` layer" if cells is not None else "relation's objects"
        count = (cells if cells is not None else relation_layer(model).input[0]).shape[1]
        grid = math.isqrt(count)
        if grid * grid != count:
            raise RecipeError(f"train.cell_loss: the {where} of {model.name} are {count} cells, not a square map.")
        examples = self.data["train"]
        scenes = len(next(iter(examples.scenes.values())))
        cache = None if self.cache_dir is None else \
            Path(self.cache_dir) / f"cells{grid}-train-{fingerprint(spec, 'train')}.npz"
        return scene_cell_targets(self.module, spec, "train", scenes, grid, cache)

    def batches(self, model, start_epoch):
        t = self.train
        batches = SceneBatches(self.data["train"], t.scenes_per_batch, seed=self.recipe.seed, shuffle=True,
                               start_epoch=start_epoch, trim=padded_id_inputs(model),
                               trim_multiple=1 if self.backend == "tensorflow" else 8, image_shift=t.image_shift,
                               image_rotation=t.image_rotation, cell_targets=self._cell_targets(model))
        jitter = (f"; images jittered by up to {t.image_shift} pixels and {t.image_rotation} radians"
                  if t.image_shift or t.image_rotation else "")
        grad = f", {t.cell_loss_grad:g} of its gradient reaching the model" if t.cell_loss_grad != 1 else ""
        cells = f"; per-cell loss (weight {t.cell_loss:g}{grad}) against the scenes' annotations" if t.cell_loss else ""
        line = (f"scene-grouped batches: {t.scenes_per_batch} scenes with all their questions a batch, "
                f"{len(batches)} batches an epoch{jitter}{cells}.")
        return (batches.tf_dataset() if self.backend == "tensorflow" else batches), line


class ObjectBucketFeed(Feed):
    model_kwargs = {"num_objects": None}

    @classmethod
    def check_recipe(cls, recipe):
        if "num_objects" not in inspect.signature(get_builder(recipe.builder)).parameters:
            raise ObjectBucketsError(f"train.feed = \"object_buckets\" needs a model whose builder takes num_objects "
                                     f"(a state-description model); {recipe.builder} does not. Set "
                                     "train.feed = \"examples\".")

    def batches(self, model, start_epoch):
        batches = ObjectBuckets(self.data["train"], self.train.batch_size, seed=self.recipe.seed, shuffle=True,
                                start_epoch=start_epoch, trim=padded_id_inputs(model),
                                trim_multiple=1 if self.backend == "tensorflow" else 8)
        padded = self.data["train"].batch(slice(0, 1))["objects"].shape[1] ** 2
        line = (f"object-count buckets: batches of up to {self.train.batch_size} questions about scenes of one size "
                f"({', '.join(map(str, batches.sizes))} objects), cut to that size; {len(batches)} batches an epoch, "
                f"{batches.mean_pairs():.1f} pairs a question on average against {padded} padded.")
        return (batches.tf_dataset() if self.backend == "tensorflow" else batches), line


class DeviceFeed(Feed):
    twin = True

    def fit_model(self, model):
        t, seed = self.train, self.recipe.seed
        mirror = clevr_mirror(seed=seed) if t.mirror_left_right else None
        return device_fed_model(model, self.data["train"], t.image_shift, t.image_rotation, seed=seed, mirror=mirror)

    def batches(self, model, start_epoch):
        t, examples = self.train, self.data["train"]
        batches = DeviceBatches(examples, t.batch_size, seed=self.recipe.seed, start_epoch=start_epoch)
        raw = sorted(examples.scale)
        jitter = (f"; images jittered on the device by up to {t.image_shift} pixels and {t.image_rotation} radians"
                  if t.image_shift or t.image_rotation else "")
        mirrored = "; half the questions mirrored left to right" if t.mirror_left_right else ""
        sent = f", {', '.join(raw)} sent raw and scaled in the step" if raw else ""
        line = (f"device feed: {len(batches)} batches of {t.batch_size} an epoch (the last "
                f"{len(examples) % t.batch_size} examples of each epoch's order left out), full-length "
                f"questions{sent}{jitter}{mirrored}.")
        return batches, line

    def validation(self, model):
        # one question length, so one compile of the evaluation step
        batch, examples = max(self.train.batch_size, 256), self.data["validation"]
        if self.backend == "tensorflow":
            return examples.tf_dataset(batch, seed=self.recipe.seed)
        return ExampleBatches(examples, batch, self.recipe.seed)


class CellFeed(SceneFeed):
    """Only the stem, on the per-cell loss (cell_feed.py); the rest of the model as it is."""

    def fit_model(self, model):
        return cell_model(model, self.data["train"].scenes, self.readout)

    def loss(self):
        return CellLossFn(self.readout), []

    def samples_per_epoch(self):
        return len(scene_groups(self.data["train"])[0])

    def batches(self, model, start_epoch):
        t = self.train
        batches = CellBatches(self.data["train"], t.scenes_per_batch, self._targets(model), seed=self.recipe.seed,
                              shuffle=True, start_epoch=start_epoch)
        line = (f"stem pre-training: {t.scenes_per_batch} training scenes a batch, {len(batches)} batches an epoch, "
                "the per-cell loss against their annotations; no answers, the rest of the model unchanged.")
        return (batches.tf_dataset() if self.backend == "tensorflow" else batches), line


FEEDS = {"examples": Feed, "scenes": SceneFeed, "object_buckets": ObjectBucketFeed, "device": DeviceFeed,
         "cells": CellFeed}


def make_feed(recipe, data, backend, cache_dir=None):
    """The feed `recipe.train.feed` names, checked against the recipe's model and data."""
    FEEDS[recipe.train.feed].check_recipe(recipe)
    return FEEDS[recipe.train.feed](recipe, data, backend, cache_dir)

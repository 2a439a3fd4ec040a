"""What a CLEVR pixel model's convolutions know about each object: linear probes, layer by layer.

    python -m benchmarks.clevr_probe rn_clevr
    python -m benchmarks.clevr_probe rn_clevr --weights runs/rn_clevr/artifact/model.keras
    python -m benchmarks.clevr_probe rn_clevr --scenes 300          (noisier; not quicker, see below)

A pixel model can only answer "What color is the large cube?" if its object features carry the
cube's colour. This script measures, for every conv layer of the model (`conv_K_relu`), how much
of each object's colour, shape, material and size a linear classifier can read from the feature
vector at the object's centre (the cell of that layer's map that holds the object's projected
centre, `pixel_coords` in CLEVR's 480 x 320 frame). The probes are fitted on the objects of the
card's validation scenes and scored on those of its test scenes (the splits `relzoo evaluate`
generates: same seeds and sizes). The same layers with fresh random weights (seed 0; batch norm
at its initial statistics) are measured beside them, as the floor a trained encoder should
beat, with the share of the commonest value of each attribute on the test objects.

For a model whose objects are detected cells (`rn_clevr_detect`), the table has one more row,
`detected_objects`: the probe reads each object from the row the relation module sees for it
(the kept row that comes from the object's cell), or from zeros when its cell was not kept, so
a missed object counts against the row.

A cell can hold more than one object, mostly in deep layers; each object is probed at its own
cell all the same, so a deep layer scores lower even with perfect features. The probe is a
softmax layer over standardised features, trained for a fixed number of Adam steps
(`PROBE_STEPS`) from a fixed seed: the figures are comparable between layers and weights, not
the best any classifier could do. The steps are taken as whole epochs over the objects, so a
small `--scenes` means many short epochs, each with Keras's fixed cost: on 2 CPU cores the full
splits take about 4 minutes, 300 scenes about 6.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ATTRIBUTES = ("color", "shape", "material", "size")
PROBE_STEPS = 1500  # Adam steps of batches of 256, whatever the number of objects


def attribute_values():
    """`{attribute: its values}` in the order of `relzoo.datasets.clevr.scenes`' constants."""
    from relzoo.datasets.clevr import scenes as S

    return {"color": S.COLORS, "shape": S.SHAPES, "material": S.MATERIALS, "size": S.SIZES}


def object_table(scene_dicts):
    """`(M, 3 + len(ATTRIBUTES))` float64 rows, one per object: scene index, centre row and
    column as fractions of the image in [0, 1), then each attribute's index in
    `relzoo.datasets.clevr.scenes` (COLORS, SHAPES, MATERIALS, SIZES)."""
    import numpy as np

    from relzoo.datasets.clevr import camera

    values = attribute_values()
    rows = []
    for i, scene in enumerate(scene_dicts):
        for o in scene["objects"]:
            x, y = o["pixel_coords"][:2]
            rows.append([i, min(max(y / camera.HEIGHT, 0.0), 0.999999), min(max(x / camera.WIDTH, 0.0), 0.999999),
                         *[values[a].index(o[a]) for a in ATTRIBUTES]])
    return np.array(rows, np.float64).reshape(-1, 3 + len(ATTRIBUTES))


def conv_layer_names(model):
    """The model's conv blocks' outputs, in order: `conv_0_relu`, `conv_1_relu`, ..."""
    names = [layer.name for layer in model.layers if layer.name.startswith("conv_") and layer.name.endswith("_relu")]
    if not names:
        raise ValueError(f"clevr_probe: model {model.name!r} has no conv_K_relu layers; it needs a CLEVR pixel "
                         "model (relzoo.models.rn.build_rn_clevr_pixels).")
    return sorted(names, key=lambda n: int(n.split("_")[1]))


def object_features(model, layer_names, images, table, batch_size=100):
    """`{layer: (M, C) float32}`: the feature vector at each object's centre cell of each named
    layer's map, for uint8 `images` `(S, H, W, 3)` and `object_table` rows (one pass over the
    images, batch by batch)."""
    import keras
    import numpy as np

    sub = keras.Model(model.get_layer("image").output, {n: model.get_layer(n).output for n in layer_names})
    scene = table[:, 0].astype(np.int64)
    out = {}
    for start in range(0, len(images), batch_size):
        maps = sub(images[start:start + batch_size].astype(np.float32) / 255.0, training=False)
        here = np.flatnonzero((scene >= start) & (scene < start + batch_size))
        for n, m in maps.items():
            m = keras.ops.convert_to_numpy(m).astype(np.float32)
            rows, cols = m.shape[1], m.shape[2]
            r = np.minimum((table[here, 1] * rows).astype(np.int64), rows - 1)
            c = np.minimum((table[here, 2] * cols).astype(np.int64), cols - 1)
            out.setdefault(n, np.zeros((len(table), m.shape[-1]), np.float32))[here] = m[scene[here] - start, r, c]
    return out


def _has_detections(model):
    return any(layer.name == "detected_objects" for layer in model.layers)


def _detections(model, images, batch_size=100):
    """For a model with a `DetectedObjects` layer, batch by batch: `(first scene, rows, mask, kept
    cells (batch, k) in the layer's order, grid)`."""
    import keras
    import numpy as np

    layer = model.get_layer("detected_objects")
    sub = keras.Model(model.get_layer("image").output, {"cells": model.get_layer("cells").output,
                                                        "rows": layer.output[0], "mask": layer.output[1]})
    for start in range(0, len(images), batch_size):
        got = {k: keras.ops.convert_to_numpy(v) for k, v in
               sub(images[start:start + batch_size].astype(np.float32) / 255.0, training=False).items()}
        grid = int(round(np.sqrt(got["cells"].shape[1])))
        kept = np.argsort(-got["cells"][..., 0], axis=1, kind="stable")[:, :layer.max_objects]  # the layer's top k
        yield start, got["rows"], got["mask"], kept, grid


def _object_cells(rows, grid):
    """The flat cell (row-major on a `grid` x `grid` map) of each `object_table` row's centre."""
    import numpy as np

    return (np.minimum((rows[:, 1] * grid).astype(np.int64), grid - 1) * grid
            + np.minimum((rows[:, 2] * grid).astype(np.int64), grid - 1))


def detected_object_features(model, images, table, batch_size=100):
    """`(M, d)` float32: for each object of `table`, the row the relation sees for it in a model with
    a `DetectedObjects` layer (`rn_clevr_detect`): the kept row that comes from the object's cell of
    the `cells` map, or zeros when that cell was not kept (the relation does not see the object)."""
    import numpy as np

    scene = table[:, 0].astype(np.int64)
    out = np.zeros((len(table), model.get_layer("detected_objects").output[0].shape[-1]), np.float32)
    for start, rows, mask, kept, grid in _detections(model, images, batch_size):
        here = np.flatnonzero((scene >= start) & (scene < start + len(rows)))
        for i, s, c in zip(here, scene[here] - start, _object_cells(table[here], grid)):
            slot = np.flatnonzero(kept[s] == c)
            if len(slot) and mask[s, slot[0]]:
                out[i] = rows[s, slot[0]]
    return out


def detection_summary(model, images, table, batch_size=100):
    """For a model with a `DetectedObjects` layer: `{recall, precision, exact_count}` of the objects
    it keeps (a kept row is right when its cell holds an object's centre; `exact_count`: the share
    of scenes where it keeps as many objects as there are)."""
    import numpy as np

    scene = table[:, 0].astype(np.int64)
    hits = kept_total = exact = 0
    for start, _, mask, kept, grid in _detections(model, images, batch_size):
        for s in range(len(kept)):
            objects = table[scene == start + s]
            found = set(kept[s][mask[s]].tolist())
            hits += len(found & set(_object_cells(objects, grid).tolist()))
            kept_total += len(found)
            exact += len(found) == len(objects)
    return {"recall": hits / max(len(table), 1), "precision": hits / max(kept_total, 1),
            "exact_count": exact / max(len(images), 1)}


def linear_probe(x_fit, y_fit, x_score, y_score, classes, seed=1, steps=PROBE_STEPS):
    """Accuracy on `(x_score, y_score)` of a softmax layer fitted to `(x_fit, y_fit)` (features
    standardised with the fitting set's mean and deviation)."""
    import keras
    import numpy as np

    x_fit, x_score = np.asarray(x_fit, np.float32), np.asarray(x_score, np.float32)
    mean, std = x_fit.mean(0), x_fit.std(0) + 1e-6
    keras.utils.set_random_seed(seed)
    probe = keras.Sequential([keras.Input((x_fit.shape[1],)), keras.layers.Dense(classes, dtype="float32")])
    probe.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    epochs = max(1, round(steps / -(-len(x_fit) // 256)))
    probe.fit((x_fit - mean) / std, np.asarray(y_fit, np.int64), epochs=epochs, batch_size=256, verbose=0)
    predicted = keras.ops.convert_to_numpy(probe((x_score - mean) / std)).argmax(-1)  # a call: no retraced predict
    return float((predicted == np.asarray(y_score)).mean())


def probe_layers(model, fit, score, steps=PROBE_STEPS):
    """`{layer: {attribute: accuracy}}` for every conv layer of `model`; `fit` and `score` are
    `(images uint8 (S, H, W, 3), object_table rows)`."""
    classes = {a: len(v) for a, v in attribute_values().items()}
    names = conv_layer_names(model)
    x_fit, x_score = object_features(model, names, *fit), object_features(model, names, *score)
    if _has_detections(model):
        names = names + ["detected_objects"]
        x_fit["detected_objects"] = detected_object_features(model, *fit)
        x_score["detected_objects"] = detected_object_features(model, *score)
    return {n: {a: linear_probe(x_fit[n], fit[1][:, 3 + k], x_score[n], score[1][:, 3 + k], classes[a], steps=steps)
                for k, a in enumerate(ATTRIBUTES)} for n in names}


def majority_share(table):
    """`{attribute: share of its commonest value}` over the objects of `table`."""
    import numpy as np

    return {a: float(np.bincount(table[:, 3 + k].astype(np.int64)).max() / len(table)) for k, a in enumerate(ATTRIBUTES)}


def split_objects(spec, split, num_scenes=None, image_size=128):
    """The images and object table of a CLEVR-world split, as `relzoo evaluate` generates it
    (the card's seed; its size unless `num_scenes`, which takes the split's first scenes)."""
    from relzoo.datasets.clevr import dataset as D

    size = spec[f"{split}_size"] if num_scenes is None else int(num_scenes)
    scene_dicts, images = D.generate_scene_images(size, seed=spec["seed"], split=split, image_size=image_size)
    return images, object_table(scene_dicts)


def format_table(results, chance):
    width = max([len(layer) for layer in results["trained"]] + [12]) + 2  # the layer names stay apart from the rest
    head = f"{'layer':<{width}}{'weights':<10}" + "".join(f"{a:>10}" for a in ATTRIBUTES)
    lines = [head, f"{'(commonest value)':<{width + 10}}" + "".join(f"{chance[a]:>10.3f}" for a in ATTRIBUTES)]
    for layer in results["trained"]:
        for which in ("trained", "random"):
            lines.append(f"{layer:<{width}}{which:<10}" +
                         "".join(f"{results[which][layer][a]:>10.3f}" for a in ATTRIBUTES))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.clevr_probe", description=__doc__.split("\n\n")[0])
    p.add_argument("name", nargs="?", default="rn_clevr", help="a zoo pixel model on the CLEVR-format world")
    p.add_argument("--weights", help="a .keras file to measure instead of the published artifact (same card)")
    p.add_argument("--scenes", type=int, default=None, help="only the first N scenes of each split")
    args = p.parse_args(argv)

    import keras

    import relzoo
    from relzoo import artifacts, hub, presets

    preset = presets.get(args.name)
    options = preset.dataset.get("options", {})
    if preset.dataset.get("name") != "clevr_world" or options.get("representation", "pixels") != "pixels":
        print(f"clevr_probe: {args.name} is not a CLEVR-world pixel model (data set {preset.dataset.get('name')}, "
              f"options {options}).", file=sys.stderr)
        return 2
    if args.weights:
        model, source = relzoo.load(args.name, weights=args.weights), args.weights
    else:
        model = relzoo.load(args.name)
        source = f"the published {args.name} (sha256 {artifacts.read_card(hub.artifact_dir(args.name))['sha256'][:12]})"
    keras.utils.set_random_seed(0)
    fresh = keras.models.clone_model(model)  # the same layers with new random weights
    image_size = int(model.get_layer("image").output.shape[1])
    t = time.perf_counter()
    fit = split_objects(preset.dataset, "validation", args.scenes, image_size)
    score = split_objects(preset.dataset, "test", args.scenes, image_size)
    print(f"{source}: probes fitted on {len(fit[1])} objects of {len(fit[0])} validation scenes, scored on "
          f"{len(score[1])} objects of {len(score[0])} test scenes (data: {time.perf_counter() - t:.0f} s)", flush=True)
    results = {"trained": probe_layers(model, fit, score), "random": probe_layers(fresh, fit, score)}
    print("accuracy of a linear probe of each object's attribute from its centre cell, test objects")
    print(format_table(results, majority_share(score[1])))
    if _has_detections(model):
        found = detection_summary(model, *score)
        print(f"detected objects, test scenes: recall {found['recall']:.3f}, precision {found['precision']:.3f}, "
              f"scenes with the right number of objects {found['exact_count']:.3f}")
    print(f"({time.perf_counter() - t:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

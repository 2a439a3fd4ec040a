"""What the trainer's CLEVR batching saves, measured on CLEVR-world data.

    python -m benchmarks.clevr_batches

Trains the presets `rn_clevr` and `rn_clevr_state` (mixed_bfloat16 without XLA, as their
recipes, or `--policy float32`; `--settings` picks some of the rows below) for two epochs of the
same questions, fed as the trainer's feeds (`training/feeds.py`) feed them:
- `rn_clevr`, batches of 64 questions, each with its own copy of its image, 50 tokens;
- `rn_clevr`, the same with each batch cut after its longest question;
- `rn_clevr`, 8 scenes a batch with all their questions (`train.feed = "scenes"`,
  the convs run once per scene, `training/scene_batches.py`), cut after the longest question;
- `rn_clevr_state`, batches of 128 questions of 50 tokens, then cut after the longest;
- `rn_clevr_state`, batches of up to 128 questions about scenes with the same number of
  objects, cut to that number and after the longest question (`train.feed = "object_buckets"`:
  no padded pairs, `training/object_buckets.py`).

Reports questions per second (wall clock) and per CPU-second (`time.process_time`, all
threads), of the second epoch. The second holds when another process shares the CPU; the
first is what a run alone on the machine sees.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _measure(model, data, count):
    model.fit(data, epochs=1, verbose=0)  # graph building and warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(data, epochs=1, verbose=0)
    return {"questions_per_s": round(count / (time.perf_counter() - wall), 1),
            "questions_per_cpu_s": round(count / (time.process_time() - cpu), 1)}


SETTINGS = ("plain", "cut", "scenes", "state_plain", "state_cut", "state_buckets")


def run(pixel_scenes=64, state_scenes=128, policy="mixed_bfloat16", settings=SETTINGS, jit_compile=False):
    import keras

    from relzoo import presets
    from relzoo.datasets.clevr import dataset
    from training.feeds import padded_id_inputs
    from training.object_buckets import ObjectBuckets
    from training.optimizer import compile_for_training
    from training.scene_batches import SceneBatches, scene_grouped_model
    from training.settings import TrainSettings

    keras.mixed_precision.set_global_policy(policy)
    train = TrainSettings(jit_compile=jit_compile, learning_rate=2.5e-4)
    rows = {}
    pixels = state = None
    if {"plain", "cut", "scenes"} & set(settings):
        pixels = dataset.generate_examples(pixel_scenes, seed=0, split="validation", representation="pixels")
    if {"state_plain", "state_cut", "state_buckets"} & set(settings):
        state = dataset.generate_examples(state_scenes, seed=0, split="validation", representation="state")
    for setting, label, examples, name, batch, mode in [
        ("plain", "rn_clevr, 64 questions a batch, 50 tokens", pixels, "rn_clevr", 64, "plain"),
        ("cut", "rn_clevr, 64 questions a batch, cut after the longest", pixels, "rn_clevr", 64, "cut"),
        ("scenes", "rn_clevr, 8 scenes a batch (all their questions), cut after the longest", pixels, "rn_clevr",
         8, "scenes"),
        ("state_plain", "rn_clevr_state, 128 questions a batch, 50 tokens", state, "rn_clevr_state", 128, "plain"),
        ("state_cut", "rn_clevr_state, 128 questions a batch, cut after the longest", state, "rn_clevr_state", 128,
         "cut"),
        ("state_buckets", "rn_clevr_state, up to 128 questions a batch about scenes of one size, cut to it and after "
         "the longest question", state, "rn_clevr_state", 128, "buckets"),
    ]:
        if setting not in settings:
            continue
        label += f" ({policy}{', XLA' if jit_compile else ''})"
        keras.utils.set_random_seed(0)
        model = presets.get(name).build(**({"num_objects": None} if mode == "buckets" else {}))
        if mode == "buckets":
            data = ObjectBuckets(examples, batch, seed=0, shuffle=True, trim=padded_id_inputs(model),
                                 trim_multiple=1).tf_dataset()
        elif mode == "scenes":
            trim = padded_id_inputs(model)
            model = scene_grouped_model(model, examples.scenes)
            data = SceneBatches(examples, batch, seed=0, shuffle=True, trim=trim, trim_multiple=1).tf_dataset()
        else:
            data = examples.tf_dataset(batch, seed=0, shuffle=True,
                                       trim=padded_id_inputs(model) if mode == "cut" else ())
        compile_for_training(model, train)
        rows[label] = _measure(model, data, len(examples))
        print(f"{label}: {rows[label]}", file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pixel-scenes", type=int, default=64, help="rendered scenes (10 questions each)")
    p.add_argument("--state-scenes", type=int, default=128, help="state-description scenes (10 questions each)")
    p.add_argument("--policy", choices=("mixed_bfloat16", "float32"), default="mixed_bfloat16",
                   help="the Keras dtype policy of the models (the recipes train in mixed_bfloat16)")
    p.add_argument("--xla", action="store_true", help="compile the training steps with XLA (jit_compile)")
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS),
                   help="which of the settings to measure (default: all)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = p.parse_args(argv)
    rows = run(args.pixel_scenes, args.state_scenes, args.policy, args.settings, args.xla)
    if args.json:
        print(json.dumps(rows))
        return 0
    print("| setting | questions/s | questions per CPU-second |")
    print("|---|---|---|")
    for label, r in rows.items():
        print(f"| {label} | {r['questions_per_s']:.1f} | {r['questions_per_cpu_s']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

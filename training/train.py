"""The relzoo trainer: every published artifact is produced by this program.

    python -m training.train RECIPE [dotted.path=value ...] [options]

    python -m training.train training/recipes/rn_nearest_object.toml
    python -m training.train training/recipes/rn_nearest_object.toml train.epochs=5 --strategy mirrored --cpu-devices 2
    TF_CONFIG=... python -m training.train RECIPE --strategy multi_worker     (on each worker)
    KERAS_BACKEND=jax python -m training.train RECIPE                         (no TensorFlow needed)

A recipe (training/recipe.py) names a preset and holds the training settings
(training/settings.py). The run folder (`--run-dir`, default `runs/<name>`; training/run_folder.py)
keeps the resumable checkpoint, the TensorBoard logs, the generated data and the artifact: killed
at any point, the same command continues from the last completed epoch. The parts:

    data.py         the recipe's splits, generated once and cached
    feeds.py        how batches are made (train.feed)
    fit_run.py      training with model.fit (default and mirrored strategies, JAX)
    multi_worker.py training under MultiWorkerMirroredStrategy (a loop of its own)
    warm_start.py   train.init_from
    publish.py      evaluation on the held-out splits, model.keras and card.json

Exit codes: 0 done, 2 bad recipe or arguments, 3 NaN loss, 4 unreadable checkpoint.
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
EXIT_BAD_INPUT, EXIT_NAN, EXIT_BAD_CHECKPOINT = 2, 3, 4


class _HelpSettings(argparse.Action):
    """`--help-settings`: every [train] setting with its default and meaning, then exit."""

    def __call__(self, parser, namespace, values, option_string=None):
        from training.settings import describe

        print(describe())
        parser.exit()


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m training.train", description="Train a relzoo model from a recipe "
                                "(resumable; writes TensorBoard logs and a carded artifact).")
    p.add_argument("recipe", help="a recipe file, e.g. training/recipes/rn_nearest_object.toml")
    p.add_argument("--help-settings", action=_HelpSettings, nargs=0, help="list the [train] settings and exit")
    p.add_argument("overrides", nargs="*", help="recipe overrides, dotted.path=value (value in TOML syntax)")
    p.add_argument("--strategy", choices=("default", "mirrored", "multi_worker"), help="overrides train.strategy")
    p.add_argument("--run-dir", help="checkpoints, logs, data and the artifact (default: runs/<name>)")
    p.add_argument("--publish", action="store_true",
                   help="write the artifact to saved_models/<name>/ (the recipe must train its preset exactly)")
    p.add_argument("--cpu-devices", type=int, default=0,
                   help="split the CPU into this many logical devices (to run `mirrored` without GPUs)")
    p.add_argument("--restart", action="store_true",
                   help="discard the run's checkpoint, logs and artifact and start over (its generated data is kept)")
    p.add_argument("--no-data-cache", action="store_true",
                   help="generate the data on every start instead of keeping it in RUN_DIR/data/")
    p.add_argument("--prepare-data", action="store_true",
                   help="only generate the recipe's data into RUN_DIR/data/ (the cache a later run reuses), then exit")
    p.add_argument("--renderer", choices=("numpy", "jax"), default="numpy",
                   help="what renders the training split's images: numpy (the CPU renderer) or jax "
                        "(relzoo.datasets.clevr.render_jax, for a GPU); validation and test are always numpy's")
    p.add_argument("--prepare-scenes", action="store_true",
                   help="only generate the training split's scenes and questions, without images, into RUN_DIR/data/ "
                        "(a few MB to carry to a GPU machine, where --renderer jax renders them), then exit")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                   help="Keras verbosity: 1 progress bar, 2 one line per epoch (default: 1 on a terminal, else 2)")
    return p.parse_args(argv)


def make_strategy(name, cpu_devices):
    """The tf.distribute strategy `name` (after splitting the CPU into `cpu_devices` logical devices)."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = None
        if cpu_devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        elif not tf.config.list_logical_devices("GPU"):
            print("train: mirrored without GPUs or --cpu-devices runs one replica on the CPU.", file=sys.stderr)
        return tf.distribute.MirroredStrategy(devices=devices)
    if "TF_CONFIG" not in os.environ:
        raise SystemExit("train: --strategy multi_worker needs TF_CONFIG (the cluster and this worker's task).")
    ring = tf.distribute.experimental.CommunicationImplementation.RING
    return tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(implementation=ring))


def _configure_backend(args, recipe):
    """Imports Keras on the right devices; returns the backend's name."""
    from training.errors import RecipeError

    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow" and args.cpu_devices:
        import tensorflow as tf

        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * args.cpu_devices)
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow" and recipe.train.strategy != "default":
        raise RecipeError(f"the {recipe.train.strategy} strategy needs TensorFlow; on {backend} use --strategy default.")
    keras.utils.set_random_seed(recipe.seed)
    return backend


def _prepare_only(args, recipe, run):
    """`--prepare-scenes` / `--prepare-data`: fill the data cache and stop."""
    from training import data
    from training.errors import RecipeError

    started = time.perf_counter()
    if args.prepare_scenes:
        try:
            path = data.prepare_scenes(recipe.dataset, run.data)
        except ValueError as err:
            raise RecipeError(str(err)) from None
        print(f"train: the training split's scenes and questions are in {path} ({path.stat().st_size / 1e6:.1f} MB, "
              f"{time.perf_counter() - started:.0f} s); a run with --renderer jax and the same recipe, run folder and "
              "code renders their images.", flush=True)
        return 0
    if args.no_data_cache:
        raise RecipeError("--prepare-data writes the data cache; it cannot be combined with --no-data-cache.")
    data.load_data(recipe.dataset, cache_dir=run.data, renderer=args.renderer)
    print(f"train: data ready in {run.data} ({time.perf_counter() - started:.0f} s); the same command without "
          "--prepare-data trains on it.", flush=True)
    return 0


def _train(args, recipe, run, backend, verbose):
    """Trains, recalibrates BatchNormalization in float32 and writes the artifact (on the chief)."""
    from training import batch_norm, data, publish
    from training.optimizer import float32_copy

    splits = data.load_data(recipe.dataset, cache_dir=None if args.no_data_cache else run.data, renderer=args.renderer)
    strategy = make_strategy(recipe.train.strategy, args.cpu_devices) if backend == "tensorflow" else None
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    print(f"train: {recipe.name} | preset {recipe.preset.name} | backend {backend} | strategy {recipe.train.strategy} "
          f"({replicas} replica{'s' if replicas != 1 else ''}) | epochs {recipe.train.epochs} | batch "
          f"{recipe.train.batch_size} | lr {recipe.train.learning_rate} | seed {recipe.seed} | run dir {run.root}",
          flush=True)
    start = time.perf_counter()
    if recipe.train.strategy == "multi_worker":
        from training.multi_worker import multi_worker_run

        model, result = multi_worker_run(recipe, splits, strategy, run, verbose)
    else:
        from training.fit_run import fit_run

        model, result = fit_run(recipe, splits, strategy, run, verbose, backend)
    wall = time.perf_counter() - start
    model = float32_copy(model, recipe)
    t = recipe.train
    result["bn_recalibration"] = None
    if batch_norm.batch_norm_layers(model) and t.bn_recalibration_batches:
        layers = batch_norm.recalibrate(model, splits["train"], t.bn_recalibration_batches, t.batch_size, recipe.seed)
        result["bn_recalibration"] = {"layers": layers, "batches": t.bn_recalibration_batches, "batch_size": t.batch_size,
                                      "note": "BatchNormalization statistics recomputed under the final weights "
                                              "(float32) before evaluation and saving"}
    if result.get("is_chief", True):
        info = {"argv": args.argv, "strategy": t.strategy, "replicas": replicas, "backend": backend,
                "wall_time_s": wall, "renderer": args.renderer}
        publish.write_outputs(model, recipe, splits, result, info, run, args.publish)
        (run.root / "history.json").write_text(json.dumps(result["history"], indent=2))
    if "barrier" in result:
        result["barrier"]()
    return 0


def main(argv=None):
    args = parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    from training import recipe as recipes
    from training.errors import TrainError
    from training.run_folder import RunFolder

    try:
        overrides = args.overrides + ([f"train.strategy={args.strategy}"] if args.strategy else [])
        recipe = _fit_devices(recipes.load(args.recipe, overrides), args)
        run = RunFolder(Path(args.run_dir or ROOT / "runs" / recipe.name).resolve())
        if args.restart and run.root.exists():
            run.discard()
        run.create()
        if args.publish:
            from training.publish import check_publishable

            check_publishable(recipe)
        backend = _configure_backend(args, recipe)
        _check_model_and_feed(recipe)
        run.write_json(run.root / "recipe.json", recipe.to_dict())
        if args.prepare_scenes or args.prepare_data:
            return _prepare_only(args, recipe, run)
        return _train(args, recipe, run, backend, _verbosity(args))
    except TrainError as err:
        prefix = "" if err.exit_code == EXIT_NAN else "error: "
        print(f"train: {prefix}{err}", file=sys.stderr)
        return err.exit_code


def _check_model_and_feed(recipe):
    """The recipe's [model] overrides and its feed against the builder (after Keras is imported)."""
    from training.feeds import FEEDS

    FEEDS[recipe.train.feed].check_recipe(recipe.check_model())


def _fit_devices(recipe, args):
    """The recipe as this invocation's devices can run it (XLA does not run across logical CPU devices)."""
    if recipe.train.strategy == "mirrored" and args.cpu_devices and recipe.train.jit_compile:
        print("train: jit_compile off: XLA does not run across logical CPU devices.", flush=True)
        return dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, jit_compile=False))
    return recipe


def _verbosity(args):
    return args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)


if __name__ == "__main__":
    sys.exit(main())

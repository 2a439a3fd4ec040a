"""Hyperparameter search with keras-tuner over the space a recipe declares.

    python -m training.tune RECIPE [dotted.path=value ...] [--tuner hyperband|bayesian]
                            [--max-trials N] [--epochs E] [--out FILE] [--dir DIR]

    python -m training.tune training/recipes/rn_nearest_object.toml --tuner bayesian --max-trials 8

The recipe's `[tune]` table gives `objective` (a Keras log key, maximised when it
is an accuracy, else minimised), `max_epochs`, and `[tune.space]`: dotted recipe
paths mapped to distributions:

    "train.learning_rate" = { type = "float", min = 3e-4, max = 1e-2, sampling = "log" }
    "model.dropout" = { type = "float", min = 0.0, max = 0.3, step = 0.1 }
    "model.g_units" = { type = "choice", values = [[32, 32], [64, 64, 64]] }
    "train.batch_size" = { type = "int", min = 32, max = 256, step = 32 }

Each trial writes TensorBoard logs (scalars and HParams) under DIR/logs/<trial>/.
The search resumes where it stopped when run again with the same DIR. The best
trial is written as a recipe (default `training/recipes/<name>_tuned.toml`) that
`python -m training.train` accepts unchanged.
"""

import argparse
import copy
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m training.tune", description=__doc__.split("\n\n")[0])
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", help="recipe overrides, dotted.path=value")
    p.add_argument("--tuner", choices=("hyperband", "bayesian"), default="hyperband")
    p.add_argument("--max-trials", type=int, default=10, help="trials of the bayesian tuner")
    p.add_argument("--epochs", type=int, help="epochs per trial (bayesian) / max epochs (hyperband); "
                                                "default: tune.max_epochs")
    p.add_argument("--out", help="the best trial's recipe (default training/recipes/<name>_tuned.toml)")
    p.add_argument("--dir", help="the tuner's folder (default runs/tune/<name>_<tuner>)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)
    return p.parse_args(argv)


def _direction(objective):
    return "max" if "acc" in objective else "min"


def sample(hp, path, spec):
    """One hyperparameter of keras-tuner for a `[tune.space]` entry; returns its value."""
    kind = spec.get("type")
    if kind == "float":
        return hp.Float(path, float(spec["min"]), float(spec["max"]), step=spec.get("step"),
                        sampling=spec.get("sampling", "linear"))
    if kind == "int":
        return hp.Int(path, int(spec["min"]), int(spec["max"]), step=int(spec.get("step", 1)),
                      sampling=spec.get("sampling", "linear"))
    if kind == "choice":
        values = list(spec["values"])
        if all(isinstance(v, (int, float, str, bool)) for v in values):
            return hp.Choice(path, values)
        return values[hp.Choice(path, list(range(len(values))))]  # lists etc.: choose an index
    raise ValueError(f"tune.space[{path!r}]: type must be float, int or choice, got {kind!r}.")


def chosen_values(space, values):
    """`{path: value}` of the search space from keras-tuner's values (`HyperParameters.get`), the
    indices of list-valued choices resolved."""
    out = {}
    for path, spec in space.items():
        value = values[path]
        if spec["type"] == "choice" and not all(isinstance(v, (int, float, str, bool)) for v in spec["values"]):
            value = spec["values"][value]
        out[path] = value
    return out


def _search_space(recipe, source):
    """The recipe's `[tune]` table and its space, or a `RecipeError` when it cannot be tuned."""
    from training.errors import RecipeError

    tune = recipe.tune or {}
    space = tune.get("space") or {}
    if recipe.train.feed != "examples" or "train.feed" in space:
        raise RecipeError(f"trials train with plain batches of train.batch_size questions; override "
                          f"train.feed=examples (train.feed is {recipe.train.feed!r}) and leave it out of [tune.space].")
    if not space:
        raise RecipeError(f"{source} declares no [tune.space].")
    for path in space:
        recipe.with_values({path: _any_value(space[path])})  # a path the recipe does not have is refused now
    return tune, space


def _any_value(spec):
    if spec.get("type") == "choice":
        return spec["values"][0]
    return spec.get("min")


def _hypermodel(recipe, space, data, backend):
    import keras_tuner as kt

    from training.batches import ExampleBatches
    from training.optimizer import compiled_model

    def inputs(examples, batch, shuffle):
        if backend == "tensorflow":
            return examples.tf_dataset(batch, seed=recipe.seed, shuffle=shuffle)
        return ExampleBatches(examples, batch, recipe.seed, shuffle)

    class RecipeHyperModel(kt.HyperModel):
        def build(self, hp):
            return compiled_model(recipe.with_values({path: sample(hp, path, spec) for path, spec in space.items()}))

        def fit(self, hp, model, **kwargs):
            batch = hp.values.get("train.batch_size", recipe.train.batch_size)
            return model.fit(inputs(data["train"], batch, True), validation_data=inputs(data["validation"],
                             max(batch, 256), False), **kwargs)

    return RecipeHyperModel()


def _write_best(recipe, space, tuner, args, objective, epochs):
    """Writes the best trial as a recipe; returns its path."""
    from training import recipe as recipes

    best_hp, best_trial = tuner.get_best_hyperparameters(1)[0], tuner.oracle.get_best_trials(1)[0]
    chosen = chosen_values(space, {p: best_hp.get(p) for p in space})
    table = copy.deepcopy(recipe.table)
    for path, value in chosen.items():
        recipes.set_path(table, path, value)
    summary = (f"tuned by training/tune.py from {args.recipe}: {args.tuner}, {len(tuner.oracle.trials)} trials of "
               f"{epochs} epochs, best trial {best_trial.trial_id} with {objective} {best_trial.score:.4f}")
    table["notes"] = summary
    table.setdefault("tune", {})["result"] = {
        "tuner": args.tuner, "objective": objective, "best_score": float(best_trial.score),
        "trial_id": best_trial.trial_id, "trials": len(tuner.oracle.trials), "epochs_per_trial": epochs,
        "from_recipe": str(Path(args.recipe))}
    out = Path(args.out or ROOT / "training" / "recipes" / f"{recipe.name}_tuned.toml")
    recipes.dump(table, out, header=f"# {out.stem}: {summary}.\n#\n#   python -m training.train {out.as_posix()}")
    print(f"tune: best trial {best_trial.trial_id}: {objective} {best_trial.score:.4f} with {json.dumps(chosen)}")
    print(f"tune: wrote {out}")
    return out


def main(argv=None):
    args = parse_args(argv)
    from training import recipe as recipes
    from training.errors import RecipeError

    try:
        recipe = recipes.load(args.recipe, args.overrides)
        tune, space = _search_space(recipe, args.recipe)
    except RecipeError as err:
        print(f"tune: error: {err}", file=sys.stderr)
        return 2
    objective = tune.get("objective", "val_accuracy")
    epochs = args.epochs or int(tune.get("max_epochs", recipe.train.epochs))

    import keras
    import keras_tuner as kt

    from training.data import load_data

    keras.utils.set_random_seed(recipe.seed)
    try:
        recipe.check_model()
    except RecipeError as err:
        print(f"tune: error: {err}", file=sys.stderr)
        return 2
    hypermodel = _hypermodel(recipe, space, load_data(recipe.dataset), keras.backend.backend())
    directory = Path(args.dir or ROOT / "runs" / "tune" / f"{recipe.name}_{args.tuner}").resolve()
    common = dict(objective=kt.Objective(objective, _direction(objective)), directory=str(directory.parent),
                  project_name=directory.name, seed=recipe.seed, overwrite=False)
    if args.tuner == "hyperband":
        tuner, search_kwargs = kt.Hyperband(hypermodel, max_epochs=epochs, factor=3, **common), {}
    else:
        tuner = kt.BayesianOptimization(hypermodel, max_trials=args.max_trials, **common)
        search_kwargs = {"epochs": epochs}
    print(f"tune: {recipe.name} | {args.tuner} | objective {objective} ({_direction(objective)}) | "
          f"{len(space)} hyperparameters | folder {directory}", flush=True)
    tuner.search(callbacks=[keras.callbacks.TensorBoard(log_dir=str(directory / "logs"))], verbose=args.verbose,
                 **search_kwargs)
    _write_best(recipe, space, tuner, args, objective, epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

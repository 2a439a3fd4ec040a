"""The end of a run: evaluate on the held-out splits and write `model.keras` with its `card.json`.

`--publish` writes `saved_models/<name>/` of the source tree, and only for a recipe that trains
its preset exactly (a variant is registered as a preset of its own first); otherwise the artifact
goes to the run folder's `artifact/`.
"""

import shlex
import sys
from pathlib import Path

from relzoo import artifacts, hub, presets
from relzoo.evaluate import evaluate_examples, evaluation_command

ROOT = Path(__file__).resolve().parent.parent


def check_publishable(recipe):
    """Raises `SystemExit` unless `recipe` may be published to `saved_models/<name>/`."""
    if recipe.name not in presets.PRESETS:
        raise SystemExit(f"train: --publish writes saved_models/<name>/ of a preset, and {recipe.name!r} is none. "
                         "Register it in relzoo/presets.py (its builder, kwargs and dataset), or run without "
                         "--publish: the artifact then goes to the run folder's artifact/.")
    preset = presets.get(recipe.name)
    differ = [part for part, mine, theirs in (("builder", recipe.builder, preset.builder),
                                               ("model", recipe.model, preset.kwargs),
                                               ("dataset", recipe.dataset, preset.dataset)) if mine != theirs]
    if differ:
        raise SystemExit(f"train: --publish: this run's {' and '.join(differ)} differ from the preset "
                         f"{recipe.name!r}'s (overrides in the recipe or on the command line). A variant is "
                         "published under its own name: register a preset for it and set name = in its recipe.")


def _metric_records(model, recipe, data, out_dir, publish):
    """The card's `metrics`: test and validation, each with the command that measures it again."""
    preset = presets.PRESETS.get(recipe.name)
    records = []
    for split in ("test", "validation"):
        record = evaluate_examples(model, data[split], split)
        if preset is not None and recipe.dataset == preset.dataset:
            record["command"] = evaluation_command(recipe.name, split)
            if not publish:
                record["command"] += f" --weights {shlex.quote(str(out_dir / artifacts.WEIGHTS_FILE))}"
        else:  # not the preset's data: the same code, on the card's own dataset spec
            record["command"] = (f"relzoo.evaluate.evaluate_model(model, card['dataset'], '{split}') "
                                 "(this run's dataset differs from its preset's)")
        records.append(record)
    return records


def _relative(path):
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def training_record(recipe, result, run_info):
    """The card's `training` section. `result`: what the training loop returned; `run_info`: the
    invocation's `argv`, `strategy`, `replicas`, `backend`, `wall_time_s` and `renderer`."""
    record = {
        "recipe": _relative(recipe.path), "recipe_values": recipe.to_dict(), "notes": recipe.notes,
        "bn_recalibration": result.get("bn_recalibration"),
        "command": "python -m training.train " + shlex.join(run_info["argv"]),
        "seed": recipe.seed, "strategy": run_info["strategy"], "replicas": run_info["replicas"],
        "backend": run_info["backend"], "epochs": recipe.train.epochs, "resumed_at_epoch": result["resumed_at_epoch"],
        "wall_time_s": round(run_info["wall_time_s"], 1),
        "wall_time_note": "this invocation only (a resumed run counts the time since resuming)",
        "train_time_s": None if result.get("train_time_s") is None else round(result["train_time_s"], 1),
        "train_time_note": "all epochs of the run, over every invocation (training and per-epoch validation)",
        "samples_per_s": None if result["samples_per_s"] is None else round(result["samples_per_s"], 1),
        "hardware": artifacts.hardware_description(),
        "final": {k: (round(v[-1], 6) if v else None) for k, v in result["history"].items()},
    }
    if run_info.get("renderer", "numpy") != "numpy":
        record["train_images_renderer"] = (f"{run_info['renderer']}: the training split's images by "
                                           "relzoo.datasets.clevr.render_jax (float64); validation and test by "
                                           "relzoo.datasets.clevr.render (numpy)")
    init = result.get("init_from")
    if init is not None:  # a warm-started run: its source, and the totals over the whole chain
        record["init_from"] = {k: v for k, v in init.items() if k != "file"}
        record["epochs_total"] = record["epochs"] + (init.get("epochs_total") or 0)
        before = init.get("train_time_total_s")
        own = record["train_time_s"]
        record["train_time_total_s"] = None if own is None or before is None else round(own + before, 1)
        record["epochs_total_note"] = ("this run's epochs plus those of the weights it started from "
                                       "(init_from, and its own sources)")
    return record


def write_outputs(model, recipe, data, result, run_info, run, publish):
    """Evaluates `model` on the held-out splits and writes it with its card; returns the folder.

    `data`: the run's splits; its held-out splits are exactly what the generator makes (the cache
    is keyed by the spec and the data set code), so they are evaluated as they are rather than
    generated again."""
    preset = presets.PRESETS.get(recipe.name)
    out_dir = hub.SOURCE_SAVED_MODELS / recipe.name if publish else run.artifact
    metrics = _metric_records(model, recipe, data, out_dir, publish)
    card = {
        "name": recipe.name,
        "description": preset.description if preset else f"trained from {_relative(recipe.path)}",
        "paper": preset.paper if preset else recipe.preset.paper,
        "dataset": recipe.dataset,
        "metrics": metrics,
        "paper_metrics": preset.paper_metrics if preset else {},
        "answer_vocab": list(recipe.preset.answer_vocab) if recipe.preset.answer_vocab else None,
        "training": training_record(recipe, result, run_info),
    }
    extra = {}
    if recipe.preset.question_vocab is not None:  # the vocabulary travels with the weights
        from relzoo.vocab import shipped_path

        extra["vocabulary"] = shipped_path(recipe.preset.question_vocab)
    card = artifacts.write_artifact(model, out_dir, card, extra_files=extra)
    print(f"train: wrote {out_dir / card['weights_file']} and card.json (sha256 {card['sha256'][:12]}...)")
    for record in metrics:
        print(f"train: {record['split']}: " + ", ".join(f"{k} {v:.4f}" for k, v in record["values"].items())
              + f" ({record['num_examples']} examples)", file=sys.stdout)
    return out_dir

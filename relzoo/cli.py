"""The `relzoo` command: demo, explain, list, download, card, verify, evaluate, export."""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _headline(card):
    """The first test-split metric of a card, as 'name=value (split)'."""
    for record in card.get("metrics") or []:
        for key, value in (record.get("values") or {}).items():
            return f"{key}={value:.4g} ({record.get('split')})"
    return "-"


def _status(name):
    from relzoo import artifacts, hub

    d = hub.artifact_dir(name)
    if d is None:
        where = hub.hub()
        return ("not downloaded" if isinstance(where, str) else "not trained" if where else "no hub set"), None
    try:
        card = artifacts.verify_artifact(d)
    except artifacts.ArtifactError as err:
        return f"BROKEN: {err}", None
    return "ok", card


def cmd_list(args):
    from relzoo import presets

    names = presets.list_models(include_test=args.all)
    if not names:
        print("No published models yet. `relzoo list --all` also shows the test fixtures.")
        return 0
    rows = [("name", "family", "dataset", "artifact", "headline metric")]
    for name in names:
        preset = presets.get(name)
        status, card = _status(name)
        rows.append((name, preset.family, preset.dataset.get("name") or "-", status.split(":")[0],
                     _headline(card or {})))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_card(args):
    from relzoo import hub

    print(json.dumps(hub.model_card(args.name, specs=args.specs), indent=2, sort_keys=True, default=str))
    return 0


def cmd_verify(args):
    from relzoo import presets

    names = args.names or presets.list_models(include_test=True)
    bad = 0
    for name in names:
        presets.get(name)
        status, _ = _status(name)
        print(f"{name}: {status}")
        bad += status.startswith("BROKEN")
    return 1 if bad else 0


def cmd_evaluate(args):
    from relzoo import artifacts, hub
    from relzoo.evaluate import evaluate, format_record

    if args.check and args.mismatched_scenes:
        print("relzoo: --check compares with the card, which holds no --mismatched-scenes numbers.", file=sys.stderr)
        return 1
    if args.record:
        problem = ("--record writes the card and --check compares with it; use one of them." if args.check else
                   "--record writes the generated splits' numbers only (not --data or --mismatched-scenes)."
                   if args.data is not None or args.mismatched_scenes else
                   "--record writes the published artifact's card; it cannot take --weights."
                   if args.weights is not None else None)
        if problem:
            print(f"relzoo: {problem}", file=sys.stderr)
            return 1
    record = evaluate(args.name, split=args.split, weights=args.weights or "pretrained", batch_size=args.batch_size,
                      data=args.data, limit=args.limit, mismatched_scenes=args.mismatched_scenes,
                      log=lambda line: print(f"relzoo: {line}", file=sys.stderr, flush=True))
    print(format_record(args.name, record), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(record, indent=2, sort_keys=True))
    if args.record:
        return record_in_card(args, record)
    if not args.check:
        return 0
    if args.data is not None:
        print("relzoo: --check compares with the card, which holds the generated splits' numbers; not with --data.",
              file=sys.stderr)
        return 1
    card = artifacts.read_card(hub.artifact_dir(args.name))
    recorded = [r for r in card["metrics"] if r.get("split") == record["split"]]
    if not recorded:
        print(f"relzoo: the card of {args.name} records no {record['split']} metrics to check against.", file=sys.stderr)
        return 1
    mismatches = {
        k: (v, record["values"].get(k))
        for k, v in recorded[0]["values"].items()
        if record["values"].get(k) is None or abs(record["values"][k] - v) > args.tolerance
    }
    if mismatches:
        print(f"relzoo: measured values differ from the card (card, measured): {mismatches}", file=sys.stderr)
        return 1
    print(f"relzoo: matches the card's {record['split']} metrics (tolerance {args.tolerance}).")
    return 0


def record_in_card(args, record):
    """`relzoo evaluate NAME --split S --record`: the measured record replaces the card's record of
    that split, which is kept, with when and where it had been measured, in `superseded_metrics`.

    For a card measured on other hardware than its users check it on: a GPU sums in another order
    and, under JAX by default, multiplies float32 matrices at TF32 precision, so a few borderline
    answers can differ from a CPU's. The card then holds what this command measures here, and
    says where it measured it.
    """
    import datetime

    import keras

    from relzoo import artifacts, hub

    directory = hub.artifact_dir(args.name)
    card = artifacts.read_card(directory)

    record["measured"] = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                          "hardware": artifacts.hardware_description(), "backend": keras.backend.backend(),
                          "versions": artifacts.versions()}
    training = card.get("training", {})
    published = {"hardware": training.get("hardware"), "backend": training.get("backend"),
                 "note": "measured by the trainer when it published the artifact"}
    kept, superseded = [], []
    for r in card.get("metrics", []):
        if r.get("split") == record["split"]:
            superseded.append(dict(r, superseded=record["measured"]["date"], measured=r.get("measured", published)))
        else:
            kept.append(r)
    # the new record takes the old one's place (or comes last)
    at = next((i for i, r in enumerate(card.get("metrics", [])) if r.get("split") == record["split"]), len(kept))
    card["metrics"] = kept[:at] + [record] + kept[at:]
    if superseded:
        card.setdefault("superseded_metrics", []).extend(superseded)
    artifacts.write_card(directory, card)
    print(f"relzoo: wrote the {record['split']} metrics into {directory / artifacts.CARD_FILE}.")
    return 0


def cmd_export(args):
    from relzoo import export

    target = export.export(args.name, args.outdir, version=args.version, weights=args.weights or "pretrained",
                           overwrite=args.overwrite)
    print(export.describe(args.name, target))
    return 0


def cmd_download(args):
    from relzoo import hub

    for name in args.names:
        print(f"{name}: {hub.download(name, force=args.force)}")
    return 0


def cmd_demo(args):
    from relzoo.demo import run_demo

    run_demo(args.name, seed=args.seed, scenes=args.scenes, out=args.out, weights=args.weights or "pretrained",
             show=args.show)
    return 0


def cmd_explain(args):
    from relzoo.explain import run_explain

    run_explain(args.name, seed=args.seed, out=args.out, weights=args.weights or "pretrained")
    return 0


def _viewers(sub):
    """demo, explain: a trained model on fresh examples, and a picture."""
    p = sub.add_parser("demo", help="a trained model on fresh scenes (rn_sort_of_clevr by default, or rn_clevr, "
                                    "...): accuracy per question type and a PNG")
    p.add_argument("name", nargs="?", default="rn_sort_of_clevr")
    p.add_argument("--seed", type=int, help="scene seed (default: a new random one, printed)")
    p.add_argument("--scenes", type=int, default=100,
                   help="fresh scenes to answer (30 questions each in Sort-of-CLEVR, 10 in the CLEVR world)")
    p.add_argument("--show", type=int, default=4, help="scenes drawn in the PNG (0: no PNG)")
    p.add_argument("--out", help="the PNG's path (default: relzoo_demo_NAME.png)")
    p.add_argument("--weights", help="a .keras file instead of the published artifact")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("explain", help="a PNG of a recurrent relational model's attention on one fresh example")
    p.add_argument("name", nargs="?", default="rmc_nth_farthest")
    p.add_argument("--seed", type=int, help="example seed (default: a new random one, printed)")
    p.add_argument("--out", help="the PNG's path (default: relzoo_explain_NAME.png)")
    p.add_argument("--weights", help="a .keras file instead of the published artifact")
    p.set_defaults(func=cmd_explain)


def _registry(sub):
    """list, download, card, verify: the zoo's models and their artifacts."""
    p = sub.add_parser("list", help="list the zoo's models, their artifacts and headline metrics")
    p.add_argument("--all", action="store_true", help="include test fixtures")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("download", help="download published artifacts from the hub ($RELZOO_HUB) into the cache")
    p.add_argument("names", nargs="+")
    p.add_argument("--force", action="store_true", help="download again even when the cache holds a copy")
    p.set_defaults(func=cmd_download)
    p = sub.add_parser("card", help="print a model's preset, its specs and its card as JSON")
    p.add_argument("name")
    p.add_argument("--specs", action="store_true",
                   help="add the input and output specs, read off the built model (starts Keras: a few seconds)")
    p.set_defaults(func=cmd_card)
    p = sub.add_parser("verify", help="check artifacts' sha256 against their cards (all by default)")
    p.add_argument("names", nargs="*")
    p.set_defaults(func=cmd_verify)


def _evaluate(sub):
    p = sub.add_parser("evaluate", help="accuracy per question category and overall: on the model's held-out split "
                                        "(the cards' numbers), or on a real data set folder (--data)")
    p.add_argument("name")
    p.add_argument("--split", choices=("test", "validation", "train", "val"),
                   help="default: test (the generated data set); with --data, CLEVR's val or the pickle's test")
    p.add_argument("--data", help="a local copy of the real data instead: CLEVR_v1.0 or its parent folder for the "
                                  "CLEVR models (--data ~/data/CLEVR_v1.0), the public generator's pickle for the "
                                  "Sort-of-CLEVR pixel models (--data data/sort-of-clevr.pickle)")
    p.add_argument("--limit", type=int, help="with --data: only the first N questions")
    p.add_argument("--json", action="store_true", help="print the metrics record as JSON (the table goes to stderr)")
    p.add_argument("--weights", help="a .keras file instead of the published artifact")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--mismatched-scenes", action="store_true",
                   help="a control: show each question another question's scene (image or objects); the accuracy "
                        "left is what the model answers from the question alone")
    p.add_argument("--check", action="store_true", help="fail unless the result matches the card")
    p.add_argument("--tolerance", type=float, default=1e-4, help="allowed difference with --check")
    p.add_argument("--record", action="store_true",
                   help="write the result into the published card (replacing that split's record, which is kept "
                        "under superseded_metrics): for a card measured on other hardware, such as a GPU")
    p.set_defaults(func=cmd_evaluate)


def _export(sub):
    p = sub.add_parser("export", help="write a TensorFlow Serving SavedModel: OUTDIR/NAME/VERSION/")
    p.add_argument("name")
    p.add_argument("outdir")
    p.add_argument("--version", type=int, default=1, help="TF Serving's model version (default 1)")
    p.add_argument("--weights", help="a .keras file instead of the published artifact")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version folder")
    p.set_defaults(func=cmd_export)


def build_parser():
    parser = argparse.ArgumentParser(prog="relzoo", description="A model zoo of relational-reasoning networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_viewers, _registry, _evaluate, _export):
        add(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from relzoo import ArtifactError, UnknownModelError

    try:
        return args.func(args)
    except (UnknownModelError, ArtifactError, FileExistsError, FileNotFoundError, ValueError) as err:
        print(f"relzoo: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of our output went away (`relzoo card NAME | head`): stop quietly, as other
        # command-line tools do, without a traceback; the interpreter's last flush at exit would
        # raise again, so stdout is pointed at the null device first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""Several runs of one recipe side by side under a time limit; the best by validation is published.

    python -m training.parallel_runs RECIPE --candidate "train.learning_rate=6.25e-5" \\
        --candidate "train.learning_rate=3.125e-5" --minutes 6 --data-cache DIR --publish

A lent GPU gives a session minutes, not hours, and one small model leaves most of the chip
idle (each step of a run waits on its Python loop), so the runs of a short sweep share it:
each candidate is `python -m training.train RECIPE OVERRIDES train.epochs=<many>` in its own
run folder (`<runs>/<name>-<k>`), started together. At the time limit each one is stopped
(SIGINT, then SIGKILL): its checkpoint holds its last completed epoch. The candidate whose
checkpointed epoch has the highest `val_accuracy` (the validation split; the test split plays no
part in the choice) is then published by the trainer itself, resuming its run folder with
`train.epochs` set to the epochs it completed, so that the card's command and recipe values are
that run's own. Every candidate's per-epoch logs go to `<runs>/<name>-sweep.json`.

A card published on a GPU holds the GPU's evaluation, which can differ from a CPU's by a few
borderline examples; `relzoo evaluate NAME --split S --record` on a CPU re-measures it there.
"""

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from training.run_folder import read_epoch_log  # (no Keras import at module level)

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m training.parallel_runs", description=__doc__.split("\n\n")[0])
    p.add_argument("recipe")
    p.add_argument("--candidate", action="append", required=True,
                   help="one run's overrides, space-separated dotted.path=value (repeat for each run)")
    p.add_argument("--minutes", type=float, required=True, help="training time of every candidate, start included")
    p.add_argument("--max-epochs", type=int, default=1000, help="train.epochs of the candidates (the time limit ends them)")
    p.add_argument("--runs", default="runs",
                   help="where the run folders go, relative to the repository's root (the cards record the path)")
    p.add_argument("--data-cache", help="a folder of generated splits (.npz) copied into each run folder's data/")
    p.add_argument("--publish", action="store_true", help="publish the chosen run to saved_models/<name>/")
    p.add_argument("--metric", default="val_accuracy", help="the per-epoch log that chooses (higher is better)")
    return p.parse_args(argv)


def train_command(recipe, overrides, epochs, run_dir):
    """The trainer's command line for one candidate (`run_dir` relative: the card records it)."""
    return [sys.executable, "-m", "training.train", recipe, *overrides, f"train.epochs={epochs}",
            "--run-dir", str(run_dir), "--verbose", "2"]


def _completed_epochs(backup):
    from training.checkpoints import completed_epochs

    return completed_epochs(backup)


def choose(results, metric):
    """The index of the candidate whose checkpointed epoch scores highest on `metric`; None if none
    completed an epoch."""
    best, best_value = None, None
    for k, r in enumerate(results):
        if r["epochs"] == 0:
            continue
        value = r["log"][r["epochs"] - 1]["logs"].get(metric)
        if value is not None and (best_value is None or value > best_value):
            best, best_value = k, value
    return best


def stop(procs, grace=60):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    deadline = time.time() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv=None):
    args = parse_args(argv)
    from training import recipe as recipes

    name = recipes.load(args.recipe, []).name
    runs = Path(args.runs)
    (ROOT / runs).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # JAX takes 75% of a GPU's memory per process by default; the candidates share one
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    procs, dirs, logs = [], [], []
    for k, cand in enumerate(args.candidate):
        run_dir = runs / f"{name}-{k}"
        here = ROOT / run_dir  # run_dir itself stays relative: it is what the command (and card) records
        here.mkdir(parents=True, exist_ok=True)
        if args.data_cache:
            (here / "data").mkdir(exist_ok=True)
            for f in Path(args.data_cache).glob("*.npz"):
                if not (here / "data" / f.name).exists():
                    shutil.copy2(f, here / "data" / f.name)
        cmd = train_command(args.recipe, shlex.split(cand), args.max_epochs, run_dir)
        logs.append(open(here / "log.txt", "a"))
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=logs[-1], stderr=subprocess.STDOUT,
                                      start_new_session=True))
        dirs.append(run_dir)
        print(f"parallel_runs: candidate {k}: {cand} -> {run_dir}", flush=True)
    deadline = time.time() + args.minutes * 60
    while time.time() < deadline and any(p.poll() is None for p in procs):
        time.sleep(5)
    stop(procs)
    for f in logs:
        f.close()
    results = []
    for k, run_dir in enumerate(dirs):
        log = read_epoch_log(ROOT / run_dir / "epochs.json")
        results.append({"candidate": args.candidate[k], "run_dir": str(run_dir), "exit_code": procs[k].returncode,
                        "epochs": _completed_epochs(ROOT / run_dir / "backup"), "log": log})
        vals = [round(e["logs"].get(args.metric, float("nan")), 4) for e in log]
        secs = [e["seconds"] for e in log]
        print(f"parallel_runs: candidate {k} ({args.candidate[k]}): {results[-1]['epochs']} epochs checkpointed; "
              f"{args.metric} {vals}; seconds {secs}", flush=True)
    best = choose(results, args.metric)
    summary = {"recipe": args.recipe, "minutes": args.minutes, "metric": args.metric, "chosen": best,
               "candidates": results}
    (ROOT / runs / f"{name}-sweep.json").write_text(json.dumps(summary, indent=1))
    if best is None:
        print("parallel_runs: no candidate completed an epoch; nothing to publish.", file=sys.stderr)
        return 1
    print(f"parallel_runs: chosen: candidate {best} ({args.candidate[best]}), {results[best]['epochs']} epochs",
          flush=True)
    cmd = train_command(args.recipe, shlex.split(args.candidate[best]), results[best]["epochs"], dirs[best])
    if args.publish:
        cmd.append("--publish")
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput of the zoo's pixel and CLEVR models on this machine.

    python -m benchmarks.train_step                       # Sort-of-CLEVR: float32 and mixed_bfloat16, XLA on and off
    python -m benchmarks.train_step --suite clevr         # the CLEVR models (4 vs 5 convs, state descriptions)
    python -m benchmarks.train_step --suite nth_farthest  # the RMC and its LSTM baseline (batch 256)

Measures `model.fit` samples (questions) per second, after one warm-up epoch, at batch 64
(256 for `nth_farthest`, the recipes' batch):
- `sort_of_clevr`: the paper-size RN (g 4 x 256), a half-width RN (g 4 x 128, f 128) and
  the CNN+MLP baseline on 75x75 images and 18-d questions;
- `clevr`: `rn_clevr` (128x128 images, token questions) with the paper's 4 convs (8x8 map,
  64 objects, 4,096 pairs) and with 5 as registered (4x4, 16 objects, 256 pairs), and `rn_clevr_state`;
- `nth_farthest`: `rmc_nth_farthest` and `lstm_nth_farthest` as registered (8 steps of 40).
Each setting runs in a fresh process (the precision policy is global).
"""

import argparse
import json
import os
import subprocess
import sys
import time

SUITES = {
    "sort_of_clevr": {
        "rn_pixels g4x256": dict(builder="rn_pixels", kwargs={}),
        "rn_pixels g4x128": dict(builder="rn_pixels", kwargs={"g_units": [128] * 4, "f_units": [128, 128]}),
        "cnn_mlp": dict(builder="cnn_mlp", kwargs={}),
    },
    "clevr": {
        "rn_clevr 4 convs": dict(zoo="rn_clevr", kwargs={"conv_layers": 4}),
        "rn_clevr 5 convs": dict(zoo="rn_clevr", kwargs={"conv_layers": 5}),  # as registered
        "rn_clevr_state": dict(zoo="rn_clevr_state", kwargs={}),
    },
    "nth_farthest": {
        "rmc_nth_farthest": dict(zoo="rmc_nth_farthest", kwargs={}),
        "lstm_nth_farthest": dict(zoo="lstm_nth_farthest", kwargs={}),
    },
}
STEPS = {"sort_of_clevr": 8, "clevr": 8, "nth_farthest": 16}
BATCH = {"sort_of_clevr": 64, "clevr": 64, "nth_farthest": 256}


QUESTION_LENGTH = 50  # a dimension the model leaves open (the CLEVR models' question length) gets this


def _inputs(model, n, rng):
    """Random inputs of the model's input names and shapes (token ids for `question` when int)."""
    import numpy as np

    x = {}
    for t in model.inputs:
        shape = (n,) + tuple(QUESTION_LENGTH if d is None else d for d in t.shape[1:])
        if "int" in str(t.dtype):
            x[t.name] = rng.integers(1, 80, shape).astype("int32")
        elif "bool" in str(t.dtype):
            x[t.name] = rng.random(shape) < 0.7
        else:
            x[t.name] = rng.random(shape).astype("float32")
    return x


def worker(suite, policy, xla):
    import numpy as np

    import keras
    from relzoo import presets
    from relzoo.models import get_builder

    keras.mixed_precision.set_global_policy(policy)
    rng = np.random.default_rng(0)
    batch = BATCH[suite]
    n = batch * STEPS[suite]
    out = {}
    for name, spec in SUITES[suite].items():
        if "zoo" in spec:
            model = presets.get(spec["zoo"]).build(**spec["kwargs"])
        else:
            model = get_builder(spec["builder"])(**spec["kwargs"])
        x = _inputs(model, n, rng)
        y = rng.integers(0, model.outputs[0].shape[-1], n)
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=xla)
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=2, verbose=0)
        out[name] = 2 * n / (time.perf_counter() - start)
    print(json.dumps(out))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", choices=sorted(SUITES), default="sort_of_clevr")
    p.add_argument("--worker", nargs=2, metavar=("POLICY", "XLA"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.suite, args.worker[0], args.worker[1] == "1")
        return 0
    rows = []
    for policy in ("float32", "mixed_bfloat16"):
        for xla in (True, False):
            cmd = [sys.executable, "-m", "benchmarks.train_step", "--suite", args.suite, "--worker", policy,
                   "1" if xla else "0"]
            res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
            if res.returncode:
                raise SystemExit(res.stderr[-3000:])
            rows.append((policy, xla, json.loads(res.stdout.strip().splitlines()[-1])))
            print(f"{policy}, XLA {'on' if xla else 'off'}: {rows[-1][2]}", file=sys.stderr, flush=True)
    names = list(SUITES[args.suite])
    print("| policy | XLA | " + " | ".join(f"{n} samples/s" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for policy, xla, r in rows:
        print(f"| {policy} | {'on' if xla else 'off'} | " + " | ".join(f"{r[n]:.1f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput of the Sort-of-CLEVR pixel models on this machine.

    python -m benchmarks.train_step                       # float32 and mixed_bfloat16, XLA on and off

Measures `model.fit` samples per second (batch 64, 75x75 images, 18-d questions) for
the paper-size RN (g 4 x 256), a half-width RN (g 4 x 128, f 128) and the CNN+MLP
baseline, after one warm-up epoch. Each setting runs in a fresh process (the precision
policy is global).
"""

import argparse
import json
import os
import subprocess
import sys
import time

MODELS = {
    "rn_pixels g4x256": dict(builder="rn_pixels", kwargs={}),
    "rn_pixels g4x128": dict(builder="rn_pixels", kwargs={"g_units": [128] * 4, "f_units": [128, 128]}),
    "cnn_mlp": dict(builder="cnn_mlp", kwargs={}),
}


def worker(policy, xla, batch=64, steps=8):
    import numpy as np

    import keras
    from relzoo.models import get_builder

    keras.mixed_precision.set_global_policy(policy)
    rng = np.random.default_rng(0)
    n = batch * steps
    x = {"image": rng.random((n, 75, 75, 3)).astype("float32"), "question": rng.random((n, 18)).astype("float32")}
    y = rng.integers(0, 10, n)
    out = {}
    for name, spec in MODELS.items():
        model = get_builder(spec["builder"])(**spec["kwargs"])
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=xla)
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=2, verbose=0)
        out[name] = 2 * n / (time.perf_counter() - start)
    print(json.dumps(out))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", nargs=2, metavar=("POLICY", "XLA"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker[0], args.worker[1] == "1")
        return 0
    rows = []
    for policy in ("float32", "mixed_bfloat16"):
        for xla in (True, False):
            cmd = [sys.executable, "-m", "benchmarks.train_step", "--worker", policy, "1" if xla else "0"]
            res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
            if res.returncode:
                raise SystemExit(res.stderr[-3000:])
            rows.append((policy, xla, json.loads(res.stdout.strip().splitlines()[-1])))
    names = list(MODELS)
    print("| policy | XLA | " + " | ".join(f"{n} samples/s" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for policy, xla, r in rows:
        print(f"| {policy} | {'on' if xla else 'off'} | " + " | ".join(f"{r[n]:.1f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

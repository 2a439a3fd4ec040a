"""Throughput and peak memory of PairwiseRelation against the naive all-pairs RN.

    python -m benchmarks.pairwise            # the table (about 5 minutes on 2 cores)
    python -m benchmarks.pairwise --quick    # fewer steps, for a smoke run
    python -m benchmarks.pairwise --no-xla   # without jit_compile

The naive implementation is the one most public RN code uses: repeat the
objects along both pair axes, tile the question, concatenate into
`(batch, n, n, 2d + c)`, and run `g` as dense layers on that. Both compute the
same function with the same weights (checked before timing). A third row,
"bound", times layers 2..L of g alone on the pair activations: work that every
exact implementation must do, so bound/naive caps the possible speedup.

Setting: Sort-of-CLEVR sizes (objects of d = 24 channels + 2 coordinates, an
18-d question, g = 4 x 256, sum over pairs). One training step is forward and
backward (gradients of a scalar loss with respect to the weights, the objects
and the question), under `tf.function` (with XLA unless `--no-xla`).

Each measurement runs in a fresh process. Peak memory ("MiB") is the step's
working memory as TensorFlow's CPU allocator counts it: after a warm-up step,
its peak counter is reset, and the figure is the peak bytes in use during the
timed steps minus the bytes in use before them (the inputs and weights). As a
cross-check, "RSS MiB" is the process's peak resident memory from just before
the first step (so it includes XLA compilation and allocator caching) minus the
resident memory at that point (`/proc/self/clear_refs` resets the kernel's
peak counter).
"""

import argparse
import json
import os
import subprocess
import sys
import time

D_OBJECT = 26
D_QUESTION = 18
G_UNITS = (256, 256, 256, 256)
# n -> batch size (smaller batches for larger n so the naive version fits in memory)
SIZES = {8: 64, 25: 64, 64: 16, 256: 4}
CHUNK = 16


def _naive_layer_cls():
    import keras
    from keras import ops

    class NaivePairwise(keras.layers.Layer):
        """All pairs by repeat + concatenate, then g as dense layers (the common public recipe)."""

        def __init__(self, g_units, **kwargs):
            super().__init__(**kwargs)
            self.dense = [keras.layers.Dense(u, activation="relu", name=f"g_{k}") for k, u in enumerate(g_units)]

        def build(self, objects_shape, condition_shape):
            width = 2 * objects_shape[-1] + condition_shape[-1]
            for layer in self.dense:
                layer.build((None, width))
                width = layer.units

        def call(self, objects, condition):
            n = objects.shape[1]
            o_i = ops.repeat(objects[:, :, None, :], n, axis=2)  # (b, n, n, d)
            o_j = ops.repeat(objects[:, None, :, :], n, axis=1)  # (b, n, n, d)
            q = ops.repeat(ops.repeat(condition[:, None, None, :], n, axis=1), n, axis=2)  # (b, n, n, c)
            x = ops.concatenate([o_i, o_j, q], axis=-1)  # (b, n, n, 2d + c)
            x = ops.reshape(x, (-1, x.shape[-1]))
            for layer in self.dense:
                x = layer(x)
            x = ops.reshape(x, (-1, n * n, x.shape[-1]))
            return ops.sum(x, axis=1)  # (b, units)

    return NaivePairwise


def _status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    raise KeyError(key)


def worker(impl, n, batch, xla, min_seconds, min_steps):
    """Measures one (implementation, n) in this process; prints a JSON line."""
    import ctypes

    import numpy as np
    import tensorflow as tf

    from relzoo.layers import PairwiseRelation

    rng = np.random.default_rng(0)
    objects = tf.constant(rng.normal(size=(batch, n, D_OBJECT)).astype("float32"))
    question = tf.constant(rng.normal(size=(batch, D_QUESTION)).astype("float32"))

    reference = PairwiseRelation(g_units=G_UNITS)
    reference(objects, question)
    if impl in ("naive", "bound"):
        layer = _naive_layer_cls()(G_UNITS)
        layer(objects, question)
        # Same weights: the decomposed kernel is exactly the naive first kernel.
        layer.set_weights(reference.get_weights())
    else:
        layer = PairwiseRelation(g_units=G_UNITS, chunk_size=CHUNK if impl == "relzoo_chunked" else None)
        layer(objects, question)
        layer.set_weights(reference.get_weights())
    want = reference(objects, question).numpy()
    got = layer(objects, question).numpy()
    if not np.allclose(got, want, rtol=1e-4, atol=1e-3 * np.abs(want).max()):
        raise SystemExit(f"{impl}: outputs differ from PairwiseRelation's (max diff {np.abs(got - want).max()})")

    variables = layer.trainable_variables

    @tf.function(jit_compile=xla)
    def step(o, q):
        with tf.GradientTape() as tape:
            tape.watch([o, q])
            out = layer(o, q)
            loss = tf.reduce_mean(tf.square(out))
        grads = tape.gradient(loss, variables + [o, q])
        return loss, tf.add_n([tf.reduce_sum(tf.abs(g)) for g in grads])

    if impl == "bound":
        # Layers 2..L of g alone on the (b * n * n, h) pair activations, summed:
        # work every exact RN must do whatever its first layer, so its speed
        # bounds what any exact implementation can reach.
        pairs = tf.constant(rng.normal(size=(batch * n * n, G_UNITS[0])).astype("float32"))
        kernels = variables[2::2]
        biases = variables[3::2]

        @tf.function(jit_compile=xla)
        def step(o, q):  # noqa: F811  (o, q unused: same call as the others)
            with tf.GradientTape() as tape:
                tape.watch(pairs)
                x = pairs
                for w, b in zip(kernels, biases):
                    x = tf.nn.relu(tf.matmul(x, w) + b)
                out = tf.reduce_sum(tf.reshape(x, (batch, n * n, -1)), axis=1)
                loss = tf.reduce_mean(tf.square(out))
            grads = tape.gradient(loss, kernels + biases + [pairs])
            return loss, tf.add_n([tf.reduce_sum(tf.abs(g)) for g in grads])

    # Process RSS from here on includes compilation (cross-check figure).
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    rss_base = _status_kib("VmRSS")
    step(objects, question)[1].numpy()  # compile + warm up
    # TensorFlow's CPU allocator: the peak of the bytes in use during the timed steps.
    tf.config.experimental.reset_memory_stats("CPU:0")
    in_use = tf.config.experimental.get_memory_info("CPU:0")["current"]
    steps, start = 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - start < min_seconds:
        step(objects, question)[1].numpy()
        steps += 1
    elapsed = time.perf_counter() - start
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    rss_peak = _status_kib("VmHWM")
    print(json.dumps({"impl": impl, "n": n, "batch": batch, "samples_per_s": steps * batch / elapsed,
                      "peak_mib": (peak - in_use) / 2**20, "rss_peak_mib": (rss_peak - rss_base) / 1024.0,
                      "steps": steps}))


def run_one(impl, n, batch, xla, min_seconds, min_steps):
    cmd = [sys.executable, "-m", "benchmarks.pairwise", "--worker", impl, str(n), str(batch),
           "--min-seconds", str(min_seconds), "--min-steps", str(min_steps)]
    if not xla:
        cmd.append("--no-xla")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"benchmark worker failed ({impl}, n={n}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--no-xla", action="store_true", help="run the steps without jit_compile")
    p.add_argument("--quick", action="store_true", help="fewer steps (a smoke run, noisier numbers)")
    p.add_argument("--sizes", type=int, nargs="*", default=sorted(SIZES), help="numbers of objects")
    p.add_argument("--min-seconds", type=float, default=None)
    p.add_argument("--min-steps", type=int, default=None)
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--worker", nargs=3, metavar=("IMPL", "N", "BATCH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    min_seconds = args.min_seconds if args.min_seconds is not None else (1.0 if args.quick else 8.0)
    min_steps = args.min_steps if args.min_steps is not None else (2 if args.quick else 5)
    xla = not args.no_xla
    if args.worker:
        impl, n, batch = args.worker
        worker(impl, int(n), int(batch), xla, min_seconds, min_steps)
        return 0

    unknown = [n for n in args.sizes if n not in SIZES]
    if unknown:
        raise SystemExit(f"--sizes takes values from {sorted(SIZES)}; got {unknown}")
    print(f"PairwiseRelation vs naive repeat+concatenate RN; d={D_OBJECT}, c={D_QUESTION}, g={list(G_UNITS)}, "
          f"sum; forward+backward; XLA {'on' if xla else 'off'}; chunked = chunk_size {CHUNK} with remat")
    rows = []
    for n in args.sizes:
        batch = SIZES[n]
        r = {impl: run_one(impl, n, batch, xla, min_seconds, min_steps)
             for impl in ("naive", "relzoo", "relzoo_chunked", "bound")}
        rows.append(r)
    header = ("n", "batch", "naive sps", "relzoo sps", "speedup", "chunked sps", "bound sps", "bound/naive",
              "naive MiB", "relzoo MiB", "chunked MiB", "naive/chunked MiB", "RSS MiB naive/relzoo/chunked")
    lines = [header]
    for r in rows:
        nv, rz, ch, bd = r["naive"], r["relzoo"], r["relzoo_chunked"], r["bound"]
        lines.append((
            str(nv["n"]), str(nv["batch"]),
            f"{nv['samples_per_s']:.1f}", f"{rz['samples_per_s']:.1f}", f"{rz['samples_per_s'] / nv['samples_per_s']:.2f}x",
            f"{ch['samples_per_s']:.1f}",
            f"{bd['samples_per_s']:.1f}", f"{bd['samples_per_s'] / nv['samples_per_s']:.2f}x",
            f"{nv['peak_mib']:.0f}", f"{rz['peak_mib']:.0f}", f"{ch['peak_mib']:.0f}",
            f"{nv['peak_mib'] / max(ch['peak_mib'], 1e-9):.1f}x",
            f"{nv['rss_peak_mib']:.0f}/{rz['rss_peak_mib']:.0f}/{ch['rss_peak_mib']:.0f}",
        ))
    widths = [max(len(line[k]) for line in lines) for k in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(lines[0], widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines[1:]:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(line, widths)) + " |")
    print("sps = training samples per second (forward + backward); MiB = peak working memory of a step "
          "(TensorFlow's allocator); bound = layers 2..L of g alone, the work any exact RN does, so "
          "bound/naive is the most any exact implementation can gain over the naive one.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`relzoo explain`: pictures of what a recurrent relational model attends to.

    relzoo explain rmc_nth_farthest                     # one fresh N-th farthest example, a PNG
    relzoo explain rmc_nth_farthest --seed 3 --out attention.png

For a model with a `RelationalMemoryCell`, the PNG shows, for every time step and
attention head, the attention weights of the memory rows and the input row over each
other (rows: queries, columns: keys; darker is more weight), with the step's input (its
label) and the question, the model's answer and the true one.
"""

import secrets
import sys
from pathlib import Path

import numpy as np


def attention_weights(model, inputs):
    """Per-step attention of the model's `RelationalMemoryCell`: `(batch, steps, heads, S+1, S+1)`.

    Runs a copy of the model's RNN whose cell also returns its attention (same weights).
    """
    import keras

    from relzoo.layers import RelationalMemoryCell

    rnns = [layer for layer in model.layers
            if isinstance(layer, keras.layers.RNN) and isinstance(layer.cell, RelationalMemoryCell)]
    if not rnns:
        raise ValueError(f"{model.name} has no keras.layers.RNN over a RelationalMemoryCell to explain.")
    rnn = rnns[0]
    config = rnn.cell.get_config()
    config["return_attention"] = True
    cell = RelationalMemoryCell.from_config(config)
    probe = keras.layers.RNN(cell, return_sequences=True)
    sequence = np.asarray(inputs["sequence"] if isinstance(inputs, dict) else inputs, np.float32)  # (b, steps, d)
    probe.build(sequence.shape)
    cell.set_weights(rnn.cell.get_weights())
    out = keras.ops.convert_to_numpy(probe(sequence))  # (batch, steps, output_size)
    _, attention = cell.split_output(out)
    return np.asarray(keras.ops.convert_to_numpy(attention))


def _heat(values, cell_px):
    """A grayscale-blue heat map image of a 2-D array in [0, 1]."""
    from PIL import Image

    v = np.clip(np.asarray(values, np.float64), 0.0, 1.0)
    rgb = np.stack([255 * (1 - v), 255 * (1 - 0.8 * v), 255 * (1 - 0.35 * v)], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb).resize((v.shape[1] * cell_px, v.shape[0] * cell_px), Image.NEAREST)


def run_explain(name="rmc_nth_farthest", seed=None, out=None, weights="pretrained", stream=sys.stdout):
    """Draws the attention of `name` on one fresh N-th farthest example; returns the PNG path and the weights."""
    from PIL import Image, ImageDraw, ImageFont

    from relzoo import hub, presets
    from relzoo.datasets import nth_farthest as nf

    preset = presets.get(name)
    if preset.dataset.get("name") != "nth_farthest":
        raise ValueError(f"relzoo explain draws N-th farthest models; {name!r} is trained on "
                         f"{preset.dataset.get('name')!r}.")
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    model = hub.load(preset, weights=weights)
    sequences, answers, parts = nf.sample(1, np.random.default_rng([seed, 5]))
    attention = attention_weights(model, {"sequence": sequences})[0]  # (steps, heads, S+1, S+1)
    logits = np.asarray(model.predict({"sequence": sequences}, verbose=0))
    guess, truth = int(np.argmax(logits[0])), int(answers[0])

    steps, heads, rows, _ = attention.shape
    cell_px, pad, top, left = 18, 14, 96, 70
    tile = rows * cell_px
    width = left + steps * (tile + pad) + pad
    height = top + heads * (tile + pad) + 60
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=14)
    bold = ImageFont.load_default(size=17)
    n, m = int(parts["n"][0]), int(parts["m"][0])
    draw.text((pad, 8), f"{name}: attention per step and head (seed {seed})", fill="black", font=bold)
    draw.text((pad, 32), f"Question: which vector is number {n + 1} by distance (farthest first) from vector {m}?   "
                         f"model: {guess}   truth: {truth}   {'right' if guess == truth else 'WRONG'}",
              fill=(0, 130, 0) if guess == truth else (200, 0, 0), font=font)
    draw.text((pad, 52), f"Rows attend to columns; rows/columns 0..{rows - 2} are memory slots, the last is the "
                         "step's input.", fill="black", font=font)
    for t in range(steps):
        x0 = left + t * (tile + pad)
        draw.text((x0, top - 20), f"step {t + 1}: label {int(parts['labels'][0, t])}", fill="black", font=font)
        for h in range(heads):
            y0 = top + h * (tile + pad)
            canvas.paste(_heat(attention[t, h], cell_px), (x0, y0))
            draw.rectangle([x0 - 1, y0 - 1, x0 + tile, y0 + tile], outline="black")
            if t == 0:
                draw.text((pad, y0 + tile // 2 - 8), f"head {h + 1}", fill="black", font=font)
    png = Path(out or f"relzoo_explain_{name}.png")
    png.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(png)
    print(f"{name}: seed {seed}, model answered {guess}, truth {truth}; wrote {png}", file=stream)
    return {"png": str(png), "attention": attention, "answer": guess, "truth": truth, "seed": seed}

"""`relzoo demo`: a zoo model answering questions about scenes it has never seen.

    relzoo demo                              # rn_sort_of_clevr, fresh scenes, a PNG
    relzoo demo rn_sort_of_clevr_state --seed 7 --scenes 200 --out demo.png

Generates scenes with a new seed (printed, so a run can be repeated), answers every
question, prints the accuracy per question type beside the numbers in the model's card,
and writes a PNG with a few scenes, questions in words, the model's answers and the true
answers (green when right, red when wrong).
"""

import secrets
import sys
from pathlib import Path

import numpy as np

DEMO_DATASETS = ("sort_of_clevr",)


class DemoResult(dict):
    """`accuracy` (the demo's values), `card` (the card's test values), `seed`, `num_questions`, `png`."""


def run_demo(name="rn_sort_of_clevr", seed=None, scenes=100, out=None, weights="pretrained", show=4,
             questions_per_scene=6, stream=sys.stdout):
    """Runs the demo; returns a `DemoResult`. See the module docstring."""
    from relzoo import zoo
    from relzoo.datasets import sort_of_clevr
    from relzoo.evaluate import accuracy_values, predict_logits

    entry = zoo.get_entry(name)
    if entry.dataset.get("name") not in DEMO_DATASETS:
        raise ValueError(f"relzoo demo shows models of {DEMO_DATASETS}; {name!r} is trained on "
                         f"{entry.dataset.get('name')!r}. Try `relzoo demo rn_sort_of_clevr`.")
    if scenes < 1 or show < 0:
        raise ValueError(f"relzoo demo: --scenes must be >= 1 and --show >= 0, got {scenes} and {show}.")
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    model = zoo.load(name, weights=weights)
    card_values = {}
    if weights == "pretrained":
        card = zoo.model_card(name)["card"] or {}
        card_values = next((m["values"] for m in card.get("metrics", []) if m.get("split") == "test"), {})

    data = sort_of_clevr.generate_scenes(scenes, seed=seed, split="test")
    representation = entry.dataset.get("options", {}).get("representation", "pixels")
    examples = sort_of_clevr.examples_from_scenes(data, representation)
    predictions = np.argmax(predict_logits(model, examples), axis=-1)
    values = accuracy_values(predictions, examples)

    print(f"{name}: {scenes} fresh Sort-of-CLEVR scenes (seed {seed}), {len(examples)} questions", file=stream)
    print(f"  {'question type':<16}{'this demo':>10}{'card (test)':>13}", file=stream)
    for key in [f"accuracy/{t}" for t in sort_of_clevr.TYPE_NAMES] + ["accuracy"]:
        label = key.split("/", 1)[1] if "/" in key else "overall"
        card_text = f"{card_values[key]:.4f}" if key in card_values else "-"
        print(f"  {label:<16}{values[key]:>10.4f}{card_text:>13}", file=stream)

    png = None
    if show:
        png = Path(out or f"relzoo_demo_{name}.png")
        image = draw_sort_of_clevr(data, predictions.reshape(data["answer"].shape), min(show, scenes),
                                   questions_per_scene, title=f"{name} on fresh scenes (seed {seed})", rng_seed=seed)
        png.parent.mkdir(parents=True, exist_ok=True)
        image.save(png)
        print(f"  wrote {png}", file=stream)
    return DemoResult(accuracy=values, card=card_values, seed=seed, num_questions=len(examples),
                      png=None if png is None else str(png))


def draw_sort_of_clevr(data, predictions, count, per_scene=6, title="", rng_seed=0, zoom=4):
    """A PIL image: `count` scenes, each with `per_scene` questions (as many of each type), answers and truth."""
    from PIL import Image, ImageDraw, ImageFont

    from relzoo.datasets import sort_of_clevr as soc

    font = ImageFont.load_default(size=15)
    bold = ImageFont.load_default(size=18)
    side = soc.IMAGE_SIZE * zoom
    text_w, pad, line = 640, 16, 22
    panel_h = max(side, (per_scene * 2 + 1) * line) + 2 * pad
    cols = 2 if count > 1 else 1
    rows = -(-count // cols)
    header = 44
    canvas = Image.new("RGB", (cols * (side + text_w + 2 * pad), header + rows * panel_h), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 12), title, fill="black", font=bold)
    rng = np.random.default_rng(rng_seed)
    per_type = max(1, per_scene // len(soc.TYPE_NAMES))
    for i in range(count):
        x0 = (i % cols) * (side + text_w + 2 * pad) + pad
        y0 = header + (i // cols) * panel_h + pad
        scene = Image.fromarray(data["image"][i]).resize((side, side), Image.NEAREST)
        canvas.paste(scene, (x0, y0))
        draw.rectangle([x0 - 1, y0 - 1, x0 + side, y0 + side], outline="black")
        slots = np.concatenate([rng.choice(np.arange(t * soc.QUESTIONS_PER_TYPE, (t + 1) * soc.QUESTIONS_PER_TYPE),
                                           per_type, replace=False) for t in range(len(soc.TYPE_NAMES))])
        ty = y0
        for j in slots:
            q = data["question"][i, j]
            truth, guess = int(data["answer"][i, j]), int(predictions[i, j])
            ok = truth == guess
            draw.text((x0 + side + pad, ty), soc.describe_question(q), fill="black", font=font)
            ty += line
            verdict = (f"model: {soc.describe_answer(guess, q)}    truth: {soc.describe_answer(truth, q)}"
                       f"    {'right' if ok else 'WRONG'}")
            draw.text((x0 + side + pad + 18, ty), verdict, fill=(0, 130, 0) if ok else (200, 0, 0), font=font)
            ty += line
    return canvas

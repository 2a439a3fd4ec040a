"""`relzoo demo`: a zoo model answering questions about scenes it has never seen.

    relzoo demo                              # rn_sort_of_clevr, fresh scenes, a PNG
    relzoo demo rn_sort_of_clevr_state --seed 7 --scenes 200 --out demo.png
    relzoo demo rn_clevr --scenes 50         # the CLEVR-format world (clevr_world)
    relzoo demo rn_clevr_state --seed 3

Generates scenes with a new seed (printed, so a run can be repeated), answers every
question, prints the accuracy per question type (Sort-of-CLEVR) or per question category
(CLEVR: exist, count, compare_integer, query_attribute, compare_attribute) beside the
numbers in the model's card, and writes a PNG with a few scenes, questions in words, the
model's answers and the true answers (green when right, red when wrong).

Models trained on `sort_of_clevr` (`rn_sort_of_clevr`, `rn_sort_of_clevr_state`) and on
`clevr_world` (`rn_clevr` on the rendered images, `rn_clevr_state` on the state
descriptions; 10 questions per scene, the test split's scene stream) are supported.
"""

import secrets
import sys
from pathlib import Path

import numpy as np

DEMO_DATASETS = ("sort_of_clevr", "clevr_world")


class DemoResult(dict):
    """`accuracy` (the demo's values), `card` (the card's test values), `seed`, `num_questions`, `png`."""


def run_demo(name="rn_sort_of_clevr", seed=None, scenes=100, out=None, weights="pretrained", show=4,
             questions_per_scene=6, stream=sys.stdout):
    """Runs the demo; returns a `DemoResult`. See the module docstring.

    `scenes` fresh scenes are answered; `show` of them are drawn in the PNG (0: no PNG), each
    with `questions_per_scene` of its questions.
    """
    from relzoo import artifacts, hub, presets

    preset = presets.get(name)
    dataset_name = preset.dataset.get("name")
    if dataset_name not in DEMO_DATASETS:
        raise ValueError(f"relzoo demo shows models of {DEMO_DATASETS}; {name!r} is trained on "
                         f"{dataset_name!r}. Try `relzoo demo rn_sort_of_clevr` or `relzoo demo rn_clevr`.")
    if scenes < 1 or show < 0:
        raise ValueError(f"relzoo demo: --scenes must be >= 1 and --show >= 0, got {scenes} and {show}.")
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    model = hub.load(preset, weights=weights)
    card_values = {}
    if weights == "pretrained":  # loaded, so its card is local now
        card = artifacts.read_card(hub.artifact_dir(preset.name))
        card_values = next((m["values"] for m in card.get("metrics", []) if m.get("split") == "test"), {})
    demo = _demo_sort_of_clevr if dataset_name == "sort_of_clevr" else _demo_clevr
    return demo(name, preset, model, card_values, seed, scenes, out, show, questions_per_scene, stream)


def _print_table(stream, label_title, rows, values, card_values, width):
    """The accuracy table: one row per `(label, key)`, columns `this demo` and `card (test)`."""
    print(f"  {label_title:<{width}}{'this demo':>10}{'card (test)':>13}", file=stream)
    for label, key in rows:
        card_text = f"{card_values[key]:.4f}" if key in card_values else "-"
        print(f"  {label:<{width}}{values[key]:>10.4f}{card_text:>13}", file=stream)


def _save_png(image, out, name, stream):
    png = Path(out or f"relzoo_demo_{name}.png")
    png.parent.mkdir(parents=True, exist_ok=True)
    image.save(png)
    print(f"  wrote {png}", file=stream)
    return png


def _demo_sort_of_clevr(name, preset, model, card_values, seed, scenes, out, show, questions_per_scene, stream):
    from relzoo.datasets import sort_of_clevr
    from relzoo.evaluate import accuracy_values, predict_logits

    data = sort_of_clevr.generate_scenes(scenes, seed=seed, split="test")
    representation = preset.dataset.get("options", {}).get("representation", "pixels")
    examples = sort_of_clevr.examples_from_scenes(data, representation)
    predictions = np.argmax(predict_logits(model, examples), axis=-1)
    values = accuracy_values(predictions, examples)

    print(f"{name}: {scenes} fresh Sort-of-CLEVR scenes (seed {seed}), {len(examples)} questions", file=stream)
    rows = [(t, f"accuracy/{t}") for t in sort_of_clevr.TYPE_NAMES] + [("overall", "accuracy")]
    _print_table(stream, "question type", rows, values, card_values, 16)

    png = None
    if show:
        image = draw_sort_of_clevr(data, predictions.reshape(data["answer"].shape), min(show, scenes),
                                   questions_per_scene, title=f"{name} on fresh scenes (seed {seed})", rng_seed=seed)
        png = _save_png(image, out, name, stream)
    return DemoResult(accuracy=values, card=card_values, seed=seed, num_questions=len(examples),
                      png=None if png is None else str(png))


def _demo_clevr(name, preset, model, card_values, seed, scenes, out, show, questions_per_scene, stream):
    from relzoo.datasets.clevr import dataset, features
    from relzoo.evaluate import accuracy_values, predict_logits

    representation = preset.dataset.get("options", {}).get("representation", "pixels")
    # images are rendered for the pixel model, and for the PNG whatever the model reads;
    # the questions depend only on (seed, split, scenes, questions per scene)
    wanted = ("pixels", "state") if show else (representation,)
    # one process: deterministic, nothing spawned (the data do not depend on the workers)
    scene_arrays, questions, records = dataset.generate_split(
        scenes, seed=seed, split="test", questions_per_scene=dataset.QUESTIONS_PER_SCENE,
        representation=wanted, workers=1, progress=False)
    examples = features.to_examples(scene_arrays, questions, representation)
    predictions = np.argmax(predict_logits(model, examples), axis=-1)
    values = accuracy_values(predictions, examples)

    print(f"{name}: {scenes} fresh CLEVR-world scenes (seed {seed}), {len(examples)} questions", file=stream)
    rows = [(c, f"accuracy/{c}") for c in features.CATEGORIES if f"accuracy/{c}" in values]
    _print_table(stream, "question category", rows + [("overall", "accuracy")], values, card_values, 20)

    png = None
    if show:
        count = min(show, scenes)
        scene_index = np.asarray(questions["scene_index"])
        per_scene = [np.flatnonzero(scene_index == i) for i in range(count)]
        image = draw_clevr(scene_arrays["image"][:count], [[records[k] for k in ks] for ks in per_scene],
                           [predictions[ks] for ks in per_scene], count, questions_per_scene,
                           title=f"{name} on fresh CLEVR-world scenes (seed {seed})")
        png = _save_png(image, out, name, stream)
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


def _wrap(draw, text, font, width):
    """`text` broken at spaces into lines no wider than `width` pixels (a longer word gets its own line)."""
    lines, current = [], ""
    for word in text.split():
        trial = f"{current} {word}" if current else word
        if current and draw.textlength(trial, font=font) > width:
            lines.append(current)
            current = word
        else:
            current = trial
    return lines + [current] if current else lines


def draw_clevr(images, records_per_scene, predictions_per_scene, count, per_scene=6, title="", zoom=3):
    """A PIL image of CLEVR-format scenes, their questions in words, the model's answers and the truth.

    Args:
        images: uint8 `(S, H, W, 3)` renders (the first `count` are drawn, enlarged `zoom` times).
        records_per_scene: per scene, its question records (dicts with `question` and `answer`).
        predictions_per_scene: per scene, the model's answer ids (indices in `executor.ANSWERS`),
            one per record.
        count: scenes drawn, two per row.
        per_scene: questions shown per scene (the scene's first ones).
        title: the line on top.
    """
    from PIL import Image, ImageDraw, ImageFont

    from relzoo.datasets.clevr.executor import ANSWERS

    font = ImageFont.load_default(size=15)
    bold = ImageFont.load_default(size=18)
    side_h, side_w = images.shape[1] * zoom, images.shape[2] * zoom
    text_w, pad, line, gap, indent, header = 600, 16, 20, 8, 18, 44
    panel_w = side_w + text_w + 3 * pad
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    panels = []  # per scene: [(x offset, text, colour)] lines, blocks separated by `None`
    for i in range(count):
        lines = []
        for record, guess in list(zip(records_per_scene[i], predictions_per_scene[i]))[:max(0, per_scene)]:
            for k, text in enumerate(_wrap(measure, record["question"], font, text_w - indent)):
                lines.append((0 if k == 0 else indent, text, "black"))
            guess_text, truth = ANSWERS[int(guess)], str(record["answer"])
            ok = guess_text == truth
            verdict = f"model: {guess_text}   truth: {truth}   {'right' if ok else 'WRONG'}"
            lines.append((indent, verdict, (0, 130, 0) if ok else (200, 0, 0)))
            lines.append(None)
        panels.append(lines)

    def text_height(lines):
        return sum(gap if entry is None else line for entry in lines)

    cols = 2 if count > 1 else 1
    row_heights = [max([side_h] + [text_height(p) for p in panels[r * cols:(r + 1) * cols]]) + 2 * pad
                   for r in range(-(-count // cols))]
    canvas = Image.new("RGB", (cols * panel_w, header + sum(row_heights)), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 12), title, fill="black", font=bold)
    for i in range(count):
        row = i // cols
        x0 = (i % cols) * panel_w + pad
        y0 = header + sum(row_heights[:row]) + pad
        scene = Image.fromarray(np.asarray(images[i], np.uint8)).resize((side_w, side_h), Image.NEAREST)
        canvas.paste(scene, (x0, y0))
        draw.rectangle([x0 - 1, y0 - 1, x0 + side_w, y0 + side_h], outline="black")
        tx, ty = x0 + side_w + pad, y0
        for entry in panels[i]:
            if entry is None:
                ty += gap
                continue
            dx, text, colour = entry
            draw.text((tx + dx, ty), text, fill=colour, font=font)
            ty += line
    return canvas

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import keras
import relzoo
from relzoo import artifacts, hub, presets

TINY = "rn_tiny_test"
ROOT = Path(__file__).resolve().parent.parent


def _tiny_inputs(seed=0):
    rng = np.random.default_rng(seed)
    return {"objects": rng.normal(size=(5, 4, 3)).astype("float32"), "question": rng.normal(size=(5, 2)).astype("float32")}


def _fixture_card(name):
    entry = presets.get(name)
    return {
        "name": name,
        "description": entry.description,
        "paper": entry.paper,
        "dataset": entry.dataset,
        "metrics": [],
        "training": {"recipe": None, "command": "tests/test_zoo.py fixture (untrained)", "wall_time_s": 0.0,
                     "hardware": artifacts.hardware_description()},
    }


@pytest.fixture
def tiny_home(tmp_path, monkeypatch):
    """A RELZOO_HOME holding a freshly built rn_tiny_test artifact; yields (home, model)."""
    model = relzoo.load(TINY, weights=None)
    artifacts.write_artifact(model, tmp_path / TINY, _fixture_card(TINY))
    monkeypatch.setenv(hub.HOME_ENV, str(tmp_path))
    return tmp_path, model


def test_list_models_and_entries():
    assert TINY not in relzoo.list_models()
    assert TINY in relzoo.list_models(include_test=True)
    for name in relzoo.list_models(include_test=True):
        entry = presets.get(name)
        json.dumps(entry.to_dict())  # entries are data


@pytest.mark.parametrize("name", presets.list_models(include_test=True))
def test_every_preset_builds_and_its_answers_fit_its_output(name):
    preset = presets.get(name)
    model = relzoo.load(name, weights=None)
    specs = preset.specs()
    assert specs == presets.model_specs(model)  # read off the built model
    json.dumps(specs)
    assert sorted(specs["inputs"]) == sorted(t.name for t in model.inputs)
    if preset.answer_vocab is not None:
        assert [len(preset.answer_vocab)] == specs["outputs"]["answer_logits"]["shape"]


def test_import_relzoo_loads_no_data_generator_and_no_keras():
    code = ("import sys, relzoo; relzoo.list_models(); relzoo.presets.get('rn_clevr'); "
            "print(sorted(m for m in sys.modules if m.startswith('relzoo.datasets') or m in ('keras', 'tensorflow')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_unknown_name_lists_known_and_closest():
    with pytest.raises(relzoo.UnknownModelError) as err:
        relzoo.load("rn_tiny_tset")
    msg = str(err.value)
    assert "Did you mean 'rn_tiny_test'" in msg and "Known models:" in msg
    with pytest.raises(relzoo.UnknownModelError, match="Known models"):
        relzoo.model_card("nothing_like_it")


def test_build_save_card_load_same_outputs(tiny_home):
    home, model = tiny_home
    x = _tiny_inputs()
    loaded = relzoo.load(TINY)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    card = relzoo.model_card(TINY)
    assert card["artifact_dir"] == str(home / TINY)
    assert card["inputs"] == {"objects": {"shape": [4, 3], "dtype": "float32"},
                              "question": {"shape": [2], "dtype": "float32"}}
    assert card["outputs"] == {"answer_logits": {"shape": [3], "dtype": "float32"}}
    assert "inputs" not in relzoo.model_card(TINY, specs=False)
    c = card["card"]
    for key in artifacts.REQUIRED_CARD_KEYS:
        assert key in c
    assert c["sha256"] == artifacts.sha256_file(home / TINY / "model.keras")
    assert c["params"] == model.count_params()
    assert c["versions"]["keras"] == keras.__version__
    # the untrained architecture has the same structure, different weights
    fresh = relzoo.load(TINY, weights=None)
    assert fresh.count_params() == model.count_params()
    # weights= a path, checked against the card beside it
    again = relzoo.load(TINY, weights=home / TINY / "model.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def test_loaded_model_fine_tunes(tiny_home):
    model = relzoo.load(TINY)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = _tiny_inputs()
    hist = model.fit(x, np.array([0, 1, 2, 0, 1]), epochs=2, verbose=0)
    assert np.isfinite(hist.history["loss"][-1])


def test_tampered_artifact_is_refused(tiny_home):
    home, _ = tiny_home
    path = home / TINY / "model.keras"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(relzoo.ArtifactIntegrityError) as err:
        relzoo.load(TINY)
    assert str(path) in str(err.value) and "sha256" in str(err.value)
    with pytest.raises(relzoo.ArtifactIntegrityError):
        relzoo.load(TINY, weights=path)


def test_truncated_artifact_is_refused(tiny_home):
    home, _ = tiny_home
    path = home / TINY / "model.keras"
    data = path.read_bytes()
    path.write_bytes(data[:1000])
    with pytest.raises(relzoo.ArtifactIntegrityError) as err:
        relzoo.load(TINY)
    msg = str(err.value)
    assert str(path) in msg and "1000 bytes" in msg and f"{len(data)} bytes" in msg and "truncated" in msg


def test_missing_weights_and_card(tiny_home):
    home, _ = tiny_home
    (home / TINY / "model.keras").unlink()
    with pytest.raises(relzoo.ArtifactNotFoundError, match="model.keras is missing"):
        relzoo.load(TINY)
    (home / TINY / "card.json").unlink()
    # no card anywhere: not found, naming where it looked and how to get one
    with pytest.raises(relzoo.ArtifactNotFoundError) as err:
        relzoo.load(TINY)
    assert str(home / TINY) in str(err.value) and "weights=None" in str(err.value)


def test_malformed_card(tiny_home):
    home, _ = tiny_home
    (home / TINY / "card.json").write_text("{not json")
    with pytest.raises(relzoo.ArtifactError, match="not valid JSON"):
        relzoo.load(TINY)
    (home / TINY / "card.json").write_text(json.dumps({"name": TINY}))
    with pytest.raises(relzoo.ArtifactError, match="lacks the keys"):
        relzoo.load(TINY)


def test_wrong_model_for_entry_is_refused(tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "other.keras"
    other.save(path)
    with pytest.raises(relzoo.ArtifactError, match="is not a rn_tiny_test model"):
        relzoo.load(TINY, weights=path)
    with pytest.raises(relzoo.ArtifactError, match="not a .keras file"):
        (tmp_path / "w.h5").write_bytes(b"x")
        relzoo.load(TINY, weights=tmp_path / "w.h5")
    with pytest.raises(relzoo.ArtifactNotFoundError):
        relzoo.load(TINY, weights=tmp_path / "nope.keras")
    with pytest.raises(TypeError):
        relzoo.load(TINY, weights=3)


def test_lambda_models_are_refused_by_safe_mode(tmp_path, monkeypatch):
    """Zoo artifacts load with safe_mode=True: a Lambda layer (arbitrary code) is refused."""
    inp = keras.Input((4, 3), name="objects")
    q = keras.Input((2,), name="question")
    x = keras.layers.Lambda(lambda t: t * 2.0)(keras.layers.Flatten()(inp))
    out = keras.layers.Dense(3)(keras.layers.Concatenate()([x, q]))
    model = keras.Model({"objects": inp, "question": q}, out)
    card = _fixture_card(TINY)
    artifacts.write_artifact(model, tmp_path / TINY, card)
    monkeypatch.setenv(hub.HOME_ENV, str(tmp_path))
    with pytest.raises(relzoo.ArtifactError, match="safe_mode"):
        relzoo.load(TINY)


def test_no_lambda_layers_in_relzoo():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "relzoo").rglob("*.py")
        if "layers.Lambda" in p.read_text() and p.name != "testing.py"
    ]
    assert not offenders


def test_hardware_description_names_the_gpus_nvidia_smi_lists(monkeypatch):
    """A card trained on a GPU says which; no nvidia-smi (or a failing one) adds nothing."""
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="NVIDIA H200, 143771 MiB\nNVIDIA H200, 143771 MiB\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    text = artifacts.hardware_description()
    assert calls and calls[0][0] == "nvidia-smi"
    assert text.endswith("; GPU: NVIDIA H200 (143771 MiB), NVIDIA H200 (143771 MiB)")

    def missing(cmd, **kwargs):
        raise FileNotFoundError(cmd[0])

    monkeypatch.setattr(subprocess, "run", missing)
    assert "GPU" not in artifacts.hardware_description()
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 9, stdout="", stderr="x"))
    assert artifacts.gpu_names() == []


def test_artifacts_are_saved_without_optimizer_state(tmp_path):
    model = relzoo.load(TINY, weights=None)
    model.compile(optimizer="adam", loss="mse")
    model.fit(_tiny_inputs(), np.zeros((5, 3), "float32"), verbose=0)
    card = artifacts.write_artifact(model, tmp_path / "a", _fixture_card(TINY))
    plain = relzoo.load(TINY, weights=None)
    artifacts.write_artifact(plain, tmp_path / "b", _fixture_card(TINY))
    assert card["size_bytes"] == (tmp_path / "b" / "model.keras").stat().st_size
    assert model.optimizer is not None and model.compiled  # the caller's model is left as it was


@pytest.mark.parametrize("name", hub.shipped_models())
def test_published_artifacts_load_and_match_their_cards(name, monkeypatch):
    monkeypatch.delenv(hub.HOME_ENV, raising=False)
    card = artifacts.read_card(ROOT / "saved_models" / name)
    model = relzoo.load(name)
    assert model.count_params() == card["params"]
    for record in card["metrics"]:
        assert record["split"] and record["command"] and record["values"]
    # the card's test numbers are what the evaluation code measures on this artifact
    from relzoo.evaluate import evaluate_model

    entry = presets.get(name)
    recorded = [r for r in card["metrics"] if r["split"] == "test"]
    assert recorded, f"{name}: the card records no test metrics"
    assert recorded[0]["command"] == f"relzoo evaluate {name} --split test"
    measured = evaluate_model(model, entry.dataset, "test")
    assert measured["values"] == recorded[0]["values"]
    assert measured["num_examples"] == recorded[0]["num_examples"]


def _relzoo_cli(*args, env_home=None):
    env = dict(os.environ)
    env.pop(hub.HOME_ENV, None)
    if env_home is not None:
        env[hub.HOME_ENV] = str(env_home)
    return subprocess.run([sys.executable, "-m", "relzoo.cli", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow
def test_cli_list_card_verify(tiny_home):
    home, _ = tiny_home
    out = _relzoo_cli("list", "--all", env_home=home)
    assert out.returncode == 0, out.stderr
    assert TINY in out.stdout and "ok" in out.stdout
    out = _relzoo_cli("card", TINY, env_home=home)
    assert out.returncode == 0 and json.loads(out.stdout)["card"]["name"] == TINY
    assert "inputs" not in json.loads(out.stdout)  # the specs come with --specs (they start Keras)
    out = _relzoo_cli("verify", TINY, env_home=home)
    assert out.returncode == 0 and f"{TINY}: ok" in out.stdout
    path = home / TINY / "model.keras"
    path.write_bytes(path.read_bytes()[:-10])
    out = _relzoo_cli("verify", TINY, env_home=home)
    assert out.returncode == 1 and "BROKEN" in out.stdout
    out = _relzoo_cli("card", "rn_tiny_tst")
    assert out.returncode == 2 and "Did you mean 'rn_tiny_test'" in out.stderr


@pytest.mark.slow
def test_cli_evaluate_check_reproduces_a_card_and_catches_a_wrong_one(tmp_path):
    """The command each card records, as a user runs it: it agrees with the published card, and
    refuses a card whose number the model does not reproduce."""
    name = "rn_nearest_object"
    out = _relzoo_cli("evaluate", name, "--split", "test", "--check")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "generating the test split of nearest_object (test_size 5000, seed 0)" in out.stderr
    card = artifacts.read_card(ROOT / "saved_models" / name)
    assert f"{card['metrics'][0]['values']['accuracy']:.4f}" in out.stdout and "matches the card" in out.stdout
    home = tmp_path / "home"
    shutil.copytree(ROOT / "saved_models" / name, home / name)
    wrong = json.loads((home / name / "card.json").read_text())
    wrong["metrics"][0]["values"]["accuracy"] = round(wrong["metrics"][0]["values"]["accuracy"] - 0.01, 6)
    (home / name / "card.json").write_text(json.dumps(wrong))
    out = _relzoo_cli("evaluate", name, "--split", "test", "--check", env_home=home)
    assert out.returncode == 1 and "differ from the card" in out.stderr, out.stderr[-3000:]


@pytest.mark.slow
def test_cli_evaluate_record_rewrites_the_card_with_what_it_measures(tmp_path):
    """--record replaces a split's record with the measured one (saying where it was measured),
    keeps the replaced one, and --check then agrees; it refuses to run with --check."""
    name = "rn_nearest_object"
    home = tmp_path / "home"
    shutil.copytree(ROOT / "saved_models" / name, home / name)
    card = json.loads((home / name / "card.json").read_text())
    published = card["metrics"][0]["values"]["accuracy"]
    card["metrics"][0]["values"]["accuracy"] = round(published - 0.01, 6)  # as if measured elsewhere
    (home / name / "card.json").write_text(json.dumps(card))
    out = _relzoo_cli("evaluate", name, "--split", "test", "--record", "--check", env_home=home)
    assert out.returncode == 1 and "use one of them" in out.stderr
    out = _relzoo_cli("evaluate", name, "--split", "test", "--record", env_home=home)
    assert out.returncode == 0, out.stderr[-3000:]
    rewritten = json.loads((home / name / "card.json").read_text())
    test = [r for r in rewritten["metrics"] if r["split"] == "test"]
    assert len(test) == 1 and test[0]["values"]["accuracy"] == published
    assert test[0]["command"] == f"relzoo evaluate {name} --split test" and test[0]["measured"]["hardware"]
    assert [r["values"]["accuracy"] for r in rewritten["superseded_metrics"]] == [round(published - 0.01, 6)]
    assert [r["split"] for r in rewritten["metrics"]] == [r["split"] for r in card["metrics"]]
    out = _relzoo_cli("evaluate", name, "--split", "test", "--check", env_home=home)
    assert out.returncode == 0 and "matches the card" in out.stdout, out.stderr[-3000:]


def test_register_a_user_entry():
    entry = presets.get(TINY)
    mine = dataclasses.replace(entry, name="my_rn", test_only=False)
    relzoo.register(mine)
    try:
        assert "my_rn" in relzoo.list_models()
        with pytest.raises(ValueError, match="already registered"):
            relzoo.register(mine)
    finally:
        presets.PRESETS.pop("my_rn")


def test_cli_stops_quietly_when_its_reader_goes_away():
    # `relzoo card NAME | head`: the reader closes the pipe before the card is written. The
    # command must end without a traceback (it used to print BrokenPipeError's).
    env = dict(os.environ)
    env.pop(hub.HOME_ENV, None)
    proc = subprocess.Popen([sys.executable, "-m", "relzoo.cli", "card", "rn_clevr"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # before the child has written anything: its first write meets a closed pipe
    _, err = proc.communicate(timeout=120)
    err = err.decode()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 1

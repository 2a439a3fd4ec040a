"""relzoo.hub: artifacts found, downloaded from a hub URL into the cache, checked, and loaded offline.

The hub is a local HTTP server over copies of the published artifacts; the last test installs
relzoo as a wheel in a fresh virtual environment and runs it outside the source tree.
"""

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import relzoo
from relzoo import artifacts, hub

ROOT = Path(__file__).resolve().parent.parent
NAME = "rn_nearest_object"  # the smallest published artifact (80 kB)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _CutsOff(_Quiet):
    """Announces the whole weights file, sends half of it and hangs up."""

    def do_GET(self):
        if not self.path.endswith(".keras"):
            return super().do_GET()
        data = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def serve():
    """`serve(folder, handler=_Quiet) -> url`: an HTTP server over `folder` until the test ends."""
    servers = []

    def start(folder, handler=_Quiet):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hub_copy(tmp_path):
    """A hub folder holding a copy of the published NAME artifact."""
    folder = tmp_path / "hub"
    shutil.copytree(ROOT / "saved_models" / NAME, folder / NAME)
    return folder


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(hub.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(hub.HOME_ENV, raising=False)
    return tmp_path / "cache"


def test_download_checks_caches_and_then_loads_offline(hub_copy, cache, serve, monkeypatch):
    url = serve(hub_copy)
    monkeypatch.setenv(hub.HUB_ENV, url + "/")
    assert hub.artifact_dir(NAME) is None  # nothing local yet: a URL hub is not read in place
    model = relzoo.load(NAME)
    assert (cache / NAME / "model.keras").read_bytes() == (hub_copy / NAME / "model.keras").read_bytes()
    assert hub.artifact_dir(NAME) == cache / NAME
    assert sorted(p.name for p in cache.iterdir()) == [NAME]  # no partial folder left behind
    # offline: the hub is gone, the cache answers
    monkeypatch.setenv(hub.HUB_ENV, "http://127.0.0.1:9")  # nothing listens on the discard port
    again = relzoo.load(NAME)
    x = {"objects": np.random.default_rng(0).random((3, 6, 8), np.float32),
         "question": np.eye(6, dtype=np.float32)[:3]}
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(relzoo.ArtifactError, match="Could not download"):
        hub.download(NAME, force=True, progress=False)
    assert hub.artifact_dir(NAME) == cache / NAME  # a failed refresh keeps the cached copy


def test_a_tampered_download_is_refused_and_not_cached(hub_copy, cache, serve, monkeypatch):
    weights = hub_copy / NAME / "model.keras"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.setenv(hub.HUB_ENV, serve(hub_copy))
    with pytest.raises(relzoo.ArtifactIntegrityError, match="model.keras has sha256 .* its card expects .*nothing was"):
        relzoo.load(NAME)
    assert not cache.exists() or not any(cache.iterdir())


def test_a_truncated_download_is_refused_and_not_cached(hub_copy, cache, serve, monkeypatch):
    weights = hub_copy / NAME / "model.keras"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[:1000])  # the hub's file itself is short
    monkeypatch.setenv(hub.HUB_ENV, serve(hub_copy))
    with pytest.raises(relzoo.ArtifactIntegrityError, match=f"is 1000 bytes, its card expects {size} .truncated"):
        relzoo.load(NAME)
    assert not cache.exists() or not any(cache.iterdir())


def test_a_download_cut_off_midway_is_refused_and_not_cached(hub_copy, cache, serve, monkeypatch):
    monkeypatch.setenv(hub.HUB_ENV, serve(hub_copy, _CutsOff))
    with pytest.raises(relzoo.ArtifactIntegrityError, match="broke off|truncated"):
        relzoo.load(NAME)
    assert not cache.exists() or not any(cache.iterdir())


def test_a_card_cannot_name_a_file_outside_its_folder(hub_copy, cache, serve, monkeypatch):
    card = artifacts.read_card(hub_copy / NAME)
    card["weights_file"] = "../../escaped.keras"
    artifacts.write_card(hub_copy / NAME, card)
    monkeypatch.setenv(hub.HUB_ENV, serve(hub_copy))
    with pytest.raises(relzoo.ArtifactError, match="expected a plain file name"):
        hub.download(NAME, progress=False)
    assert not cache.exists() or not any(cache.iterdir())


def test_the_order_of_places_and_a_folder_hub(hub_copy, cache, tmp_path, monkeypatch):
    monkeypatch.setenv(hub.HUB_ENV, str(hub_copy))  # a folder hub is read in place
    assert hub.artifact_dir(NAME) == hub_copy / NAME
    assert relzoo.load(NAME).count_params() == artifacts.read_card(hub_copy / NAME)["params"]
    assert not cache.exists()  # nothing was copied
    home = tmp_path / "home"
    shutil.copytree(hub_copy / NAME, home / NAME)
    monkeypatch.setenv(hub.HOME_ENV, str(home))
    assert hub.search_dirs(NAME) == [home / NAME, hub_copy / NAME, cache / NAME]
    assert hub.artifact_dir(NAME) == home / NAME
    monkeypatch.setenv(hub.HUB_ENV, "ftp://example.org/zoo")
    with pytest.raises(relzoo.ArtifactError, match="expected an http"):
        hub.hub()
    monkeypatch.delenv(hub.HUB_ENV)
    monkeypatch.delenv(hub.HOME_ENV)
    assert hub.hub() == ROOT / "saved_models"  # the default in a source checkout


def test_without_a_hub_the_error_says_how_to_get_the_weights(cache, tmp_path, monkeypatch):
    monkeypatch.setenv(hub.HUB_ENV, str(tmp_path / "empty"))
    with pytest.raises(relzoo.ArtifactNotFoundError, match="set RELZOO_HUB.*training/recipes/rn_nearest_object.toml"):
        relzoo.load(NAME)


# ------------------------------------------------------------- a wheel in a fresh environment
LOAD_SCRIPT = """
import json, sys
from pathlib import Path
import relzoo
from relzoo import hub
model = relzoo.load("rn_clevr")
image = (Path(sys.argv[1]) / "image.npy")
import numpy as np
answer = relzoo.ask("rn_clevr", "How many cubes are there?", image=np.load(image), model=model)
print(json.dumps({"relzoo": relzoo.__file__, "version": relzoo.__version__, "source_tree": hub.SOURCE_SAVED_MODELS.is_dir(),
                  "from": str(hub.artifact_dir("rn_clevr")), "params": model.count_params(), "answer": answer}))
"""


def _fresh_env(tmp_path):
    """A virtual environment with relzoo installed from a wheel built now, its dependencies seen
    through a .pth file (this environment's site-packages: nothing is downloaded)."""
    import sysconfig

    src = tmp_path / "src"
    src.mkdir()
    for part in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / part, src / part)
    shutil.copytree(ROOT / "relzoo", src / "relzoo", ignore=shutil.ignore_patterns("__pycache__"))
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=600)
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
                 str(src)])
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("relzoo-*.whl"))
    venv = tmp_path / "venv"
    assert run([sys.executable, "-m", "venv", "--without-pip", str(venv)]).returncode == 0
    python = venv / "bin" / "python"
    purelib = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (purelib / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                     str(wheel)])
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    return venv, wheel


@pytest.mark.slow
def test_a_wheel_loads_rn_clevr_through_the_hub_and_then_offline(tmp_path, serve):
    venv, wheel = _fresh_env(tmp_path)
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "relzoo/vocabularies/clevr.json" in names and not any(n.endswith(".keras") for n in names)
    work = tmp_path / "elsewhere"  # outside the source tree
    work.mkdir()
    from relzoo.datasets.clevr import dataset

    np.save(work / "image.npy", dataset.generate_examples(1, seed=0, split="test", representation="pixels")
            .scenes["image"][0])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", hub.HOME_ENV)}
    env.update({hub.CACHE_ENV: str(tmp_path / "cache"), hub.HUB_ENV: serve(ROOT / "saved_models"),
                "TF_CPP_MIN_LOG_LEVEL": "3"})
    python = str(venv / "bin" / "python")
    first = subprocess.run([python, "-c", LOAD_SCRIPT, str(work)], cwd=work, env=env, capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    import json

    got = json.loads(first.stdout.strip().splitlines()[-1])
    assert got["relzoo"].startswith(str(venv)) and not got["source_tree"] and got["version"] == relzoo.__version__
    assert got["from"] == str(tmp_path / "cache" / "rn_clevr")
    card = artifacts.read_card(ROOT / "saved_models" / "rn_clevr")
    assert got["params"] == card["params"] and got["answer"] in card["answer_vocab"]
    for record in ("model.keras", "vocab.json", "card.json"):
        assert (tmp_path / "cache" / "rn_clevr" / record).is_file()
    # offline: no hub answers, the cache does
    env[hub.HUB_ENV] = "http://127.0.0.1:9"
    second = subprocess.run([python, "-c", LOAD_SCRIPT, str(work)], cwd=work, env=env, capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert json.loads(second.stdout.strip().splitlines()[-1]) == got
    # the installed command: a tampered hub file is refused, and nothing more is cached
    tampered = tmp_path / "tampered"
    shutil.copytree(ROOT / "saved_models" / NAME, tampered / NAME)
    data = bytearray((tampered / NAME / "model.keras").read_bytes())
    data[-100] ^= 0xFF
    (tampered / NAME / "model.keras").write_bytes(bytes(data))
    env[hub.HUB_ENV] = serve(tampered)
    refused = subprocess.run([str(venv / "bin" / "relzoo"), "download", NAME], cwd=work, env=env, capture_output=True,
                             text=True, timeout=600)
    assert refused.returncode == 2 and "sha256" in refused.stderr and "nothing was cached" in refused.stderr
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["rn_clevr"]

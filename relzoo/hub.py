"""Where the weights come from: `relzoo.load(name)` and the artifacts it finds, downloads and checks.

An artifact is a folder `<name>/` with `card.json`, the weights (`model.keras`) and, for models
that read token ids, `vocab.json`; the card records each file's sha256 and size. `load(name)`
takes the first of:

1. `$RELZOO_HOME/<name>/` (artifacts you trained or copied yourself);
2. the hub, when it is a folder: `$RELZOO_HUB`, or by default the source tree's `saved_models/`
   when relzoo runs from a source checkout (read in place, nothing is copied);
3. the local cache, `$RELZOO_CACHE/<name>/` (default `~/.cache/relzoo`, or under
   `$XDG_CACHE_HOME`), which holds what was downloaded;
4. the hub, when it is a URL (`RELZOO_HUB=https://host/path`): `<url>/<name>/card.json` first,
   then every file the card names, each checked against the card's size and sha256 before the
   folder enters the cache. A truncated or altered download raises `ArtifactIntegrityError` and
   leaves nothing in the cache; a cached artifact then loads offline.

Every load checks the weights against the card again, and Keras reads them with
`safe_mode=True`; a mismatch is an error that names the file, never a silent rebuild.
"""

import http.client
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from relzoo import artifacts, presets
from relzoo.artifacts import ArtifactError, ArtifactIntegrityError, ArtifactNotFoundError

HOME_ENV = "RELZOO_HOME"
HUB_ENV = "RELZOO_HUB"
CACHE_ENV = "RELZOO_CACHE"
SOURCE_SAVED_MODELS = Path(__file__).resolve().parent.parent / "saved_models"  # a source checkout's artifacts
TIMEOUT_S = 60


# ----------------------------------------------------------------------------- where to look
def hub():
    """The hub: `$RELZOO_HUB` (a URL or a folder), else the source tree's `saved_models/` when it
    exists, else None. A folder (or a `file://` URL) is returned as a `Path`, a URL as a string."""
    value = os.environ.get(HUB_ENV, "").strip()
    if not value:
        return SOURCE_SAVED_MODELS if SOURCE_SAVED_MODELS.is_dir() else None
    parsed = urllib.parse.urlparse(value)
    if parsed.scheme in ("http", "https"):
        return value.rstrip("/")
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # (a one-letter scheme is a Windows drive)
        raise ArtifactError(f"{HUB_ENV}={value!r}: expected an http(s):// or file:// URL or a folder.")
    return Path(value).expanduser()


def cache_dir():
    """The folder downloaded artifacts are kept in."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "relzoo"


def search_dirs(name):
    """The local folders where `name`'s artifact is looked for, in order (no network)."""
    dirs = []
    if os.environ.get(HOME_ENV):
        dirs.append(Path(os.environ[HOME_ENV]).expanduser() / name)
    where = hub()
    if isinstance(where, Path):
        dirs.append(where / name)
    dirs.append(cache_dir() / name)
    return dirs


def artifact_dir(name):
    """The first local folder holding `name`'s card, or None (nothing is downloaded)."""
    for d in search_dirs(name):
        if (d / artifacts.CARD_FILE).is_file():
            return d
    return None


def shipped_models():
    """Names with a published artifact in the source tree's `saved_models/`, sorted ([] outside a checkout)."""
    return sorted(p.parent.name for p in SOURCE_SAVED_MODELS.glob(f"*/{artifacts.CARD_FILE}"))


def resolve(name, progress=True):
    """The folder of `name`'s artifact: a local one (`artifact_dir`), else downloaded from a URL hub."""
    d = artifact_dir(name)
    if d is not None:
        return d
    if isinstance(hub(), str):
        return download(name, progress=progress)
    searched = ", ".join(str(p) for p in search_dirs(name))
    preset = presets.get(name)
    how = f" Train it with `python -m training.train {preset.recipe} --publish`." if preset.recipe else ""
    raise ArtifactNotFoundError(
        f"No published artifact for {name!r}: no {artifacts.CARD_FILE} in {searched}, and no hub URL to download "
        f"it from (set {HUB_ENV}).{how} Set {HOME_ENV} to a folder holding {name}/ to use your own, or pass "
        "weights=None for the untrained architecture.")


# ----------------------------------------------------------------------------- downloads
def _fetch(url, target, expected_size=None, progress=False):
    """Streams `url` into the file `target`; returns the bytes written."""
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        raise ArtifactNotFoundError(f"The hub has no {url} (HTTP {err.code}).") from err
    except (urllib.error.URLError, OSError) as err:
        raise ArtifactError(f"Could not download {url}: {getattr(err, 'reason', err)}. Check {HUB_ENV}, or use an "
                            f"artifact already in the cache ({cache_dir()}) or in {HOME_ENV}.") from err
    from tqdm import tqdm

    written = 0
    with response, open(target, "wb") as out, tqdm(total=expected_size, unit="B", unit_scale=True,
                                                    desc=f"relzoo: {Path(target).name}", file=sys.stderr,
                                                    disable=not progress, leave=False) as bar:
        while True:
            try:
                block = response.read(1 << 20)
            except (OSError, ValueError, http.client.HTTPException) as err:  # e.g. IncompleteRead
                raise ArtifactIntegrityError(f"The download of {url} broke off after {written} bytes ({err}); "
                                             "nothing was cached.") from err
            if not block:
                break
            out.write(block)
            written += len(block)
            bar.update(len(block))
    return written


def _plain_file_name(card, key, value):
    if not isinstance(value, str) or not value or Path(value).name != value or value in (".", ".."):
        raise ArtifactError(f"The hub's card lists {key} = {value!r}; expected a plain file name.")
    return value


def _card_files(card):
    """`[(file name, sha256, size)]` of the weights and every extra file the card records."""
    files = [(_plain_file_name(card, "weights_file", card["weights_file"]), card["sha256"], card.get("size_bytes"))]
    for key in artifacts.EXTRA_FILE_KEYS:
        record = card.get(key)
        if record is not None:
            files.append((_plain_file_name(card, key, record.get("file")), record["sha256"], record.get("size_bytes")))
    return files


def download(name, force=False, progress=True):
    """Downloads `name`'s artifact from the URL hub into the cache; returns its folder.

    The card comes first; every file it names is then downloaded into a private folder and
    checked against the card's size and sha256; only a complete, checked artifact replaces the
    cache's folder, in one rename. With `force`, a cached copy is downloaded again.
    """
    presets.get(name)
    base = hub()
    if not isinstance(base, str):
        raise ArtifactError(f"No hub URL to download {name!r} from: {HUB_ENV} is "
                            f"{os.environ.get(HUB_ENV) or 'not set'} (a folder hub is read in place).")
    target = cache_dir() / name
    if not force and (target / artifacts.CARD_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir()
    try:
        url = f"{base}/{urllib.parse.quote(name)}"
        _fetch(f"{url}/{artifacts.CARD_FILE}", staging / artifacts.CARD_FILE)
        card = artifacts.read_card(staging)
        if card.get("name") != name:
            raise ArtifactError(f"{url}/{artifacts.CARD_FILE} is the card of {card.get('name')!r}, not {name!r}.")
        for file, sha256, size in _card_files(card):
            _check_download(f"{url}/{urllib.parse.quote(file)}", staging / file, sha256, size, progress)
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _check_download(url, path, sha256, size, progress):
    """Downloads `url` to `path` and checks it against the card's size and sha256."""
    written = _fetch(url, path, size, progress)
    if size is not None and written != size:
        how = "truncated" if written < size else "larger than the card says"
        raise ArtifactIntegrityError(f"The download of {url} is {written} bytes, its card expects {size} ({how}); "
                                     "nothing was cached.")
    got = artifacts.sha256_file(path)
    if got != sha256:
        raise ArtifactIntegrityError(f"The download of {url} has sha256 {got}, its card expects {sha256}: the hub's "
                                     "file was altered or replaced; nothing was cached.")


def _swap_in(staging, target):
    """Replaces the folder `target` with `staging` (a reader sees the old folder or the new one)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------- loading
def load_keras_file(path):
    """A `.keras` file as a Keras model, with `safe_mode=True` and relzoo's layers registered."""
    import keras

    import relzoo.layers  # noqa: F401  registers the custom layers

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as err:  # Keras raises many types for a bad file
        raise ArtifactError(f"Keras could not load {path} as a .keras model (safe_mode=True): {err}") from err


def _check_signature(model, preset, path):
    """The loaded model must have the preset's inputs and output shapes."""
    specs = preset.specs()
    names, want = sorted(t.name for t in model.inputs), sorted(specs["inputs"])
    if names != want:
        raise ArtifactError(f"{path} is not a {preset.name} model: its inputs are {names}, the preset's {want}.")
    shapes = sorted(tuple(o.shape[1:]) for o in model.outputs)
    want_shapes = sorted(tuple(o["shape"]) for o in specs["outputs"].values())
    if shapes != want_shapes:
        raise ArtifactError(f"{path} is not a {preset.name} model: its outputs have shapes {shapes}, the preset's "
                            f"{want_shapes}.")


def weights_path(preset, weights):
    """The checked `.keras` file that `load(name, weights)` reads (see `load`)."""
    if isinstance(weights, str) and weights == "pretrained":
        directory = resolve(preset.name)
        card = artifacts.verify_artifact(directory)
        return directory / card["weights_file"]
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights must be 'pretrained', None or a path to a .keras file; got {weights!r}.")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ArtifactNotFoundError(f"No weights file at {path} (weights= takes 'pretrained', None or a .keras path).")
    if path.suffix != ".keras":
        raise ArtifactError(f"{path} is not a .keras file; relzoo loads Keras 3 `.keras` files only.")
    if (path.parent / artifacts.CARD_FILE).is_file():
        card = artifacts.read_card(path.parent)
        if card.get("weights_file") == path.name:
            artifacts.verify_weights(path, card["sha256"], card.get("size_bytes"))
    return path


def load(name, weights="pretrained"):
    """Returns the zoo model `name` as a `keras.Model`.

    Args:
        name: a registered model name (`relzoo.list_models()`), or its `Preset`.
        weights: `"pretrained"` (the published artifact: `$RELZOO_HOME`, the hub folder, the
            cache, or downloaded from the hub URL; see this module's docstring), `None` (the
            untrained architecture), or a path to a `.keras` file (checked against a `card.json`
            beside it when there is one).

    The weights file's size and sha256 are checked against the card before loading, and the
    model is loaded with `safe_mode=True`. Any mismatch raises an `ArtifactError` naming the
    file: nothing is silently rebuilt or reloaded.
    """
    preset = presets.get(name)
    if weights is None:
        return preset.build()
    path = weights_path(preset, weights)
    model = load_keras_file(path)
    _check_signature(model, preset, path)
    return model


def model_card(name, specs=True):
    """The preset's data joined with its local artifact's card (`card` is None when there is none)
    and, with `specs`, its input and output specs (read off the built model: this imports Keras)."""
    preset = presets.get(name)
    info = preset.to_dict()
    if specs:
        info.update(preset.specs())
    d = artifact_dir(name)
    info["artifact_dir"] = None if d is None else str(d)
    info["card"] = None if d is None else artifacts.read_card(d)
    return info


__all__ = ["CACHE_ENV", "HOME_ENV", "HUB_ENV", "artifact_dir", "cache_dir", "download", "hub", "load",
           "load_keras_file", "model_card", "resolve", "search_dirs", "shipped_models", "weights_path"]

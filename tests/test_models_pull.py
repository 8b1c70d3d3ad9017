"""``models.pull`` and ``vidstream models pull``: the cache never shows half a model.

npm and the conversion are replaced by fakes (a ``npm`` script on PATH that hands out a tiny
tarball, a converter that writes the six entries of a converted model one at a time, slowly),
so these run in a second with no network and no TensorFlow, into a temporary
``VIDSTREAM_CACHE``. The real pull runs once per session in ``conftest.centernet``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import threading
import time
from pathlib import Path

import pytest

from vidstream import models
from vidstream.cli import main
from vidstream.models import registry

# What a converted model directory holds (files and folders), as convert_centernet writes it.
ENTRIES = {"assets", "centernet.tflite", "fingerprint.pb", "saved_model.pb", "variables",
           "vidstream.json"}


def fake_tarball(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for member in registry.REGISTRY["centernet"].files:
            data = b'{"fake": true}' if member.endswith(".json") else b"\0" * 16
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


class SlowConverter:
    """Writes a converted model entry by entry with a pause between them, and stamps each
    copy with the pull that made it; counts its calls."""

    def __init__(self, pause: float = 0.01):
        self.pause = pause
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, model_json, out_dir, spec):
        with self.lock:
            self.calls += 1
            stamp = f"pull {self.calls}"
        out_dir.mkdir(parents=True)
        for entry in sorted(ENTRIES):
            time.sleep(self.pause)
            if entry in ("assets", "variables"):
                (out_dir / entry).mkdir()
                (out_dir / entry / "part").write_bytes(b"x")
            elif entry == models.METADATA_FILE:
                (out_dir / entry).write_text(json.dumps(
                    {"name": spec.name, "format_version": models.FORMAT_VERSION,
                     "converted_with": stamp}))
            else:
                (out_dir / entry).write_bytes(b"x")


def slow_rmtree(path, *args, **kwargs):
    """shutil.rmtree, one entry at a time: a reader can catch a directory half removed."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        for child in sorted(path.iterdir()):
            time.sleep(0.01)
            _rmtree(child, *args, **kwargs) if child.is_dir() else child.unlink()
        path.rmdir()
    else:
        path.unlink()


_rmtree = shutil.rmtree


@pytest.fixture
def fake_pull(tmp_path, monkeypatch):
    """A temporary cache, a fake ``npm`` first on PATH, a slow fake converter, slow rmtree."""
    tgz = fake_tarball(tmp_path / "human.tgz")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text("#!/bin/sh\n"
                   "while [ $# -gt 0 ]; do\n"
                   f'  if [ "$1" = "--pack-destination" ]; then cp "{tgz}" "$2/human.tgz"; fi\n'
                   "  shift\n"
                   "done\n")
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("VIDSTREAM_CACHE", str(tmp_path / "cache"))
    converter = SlowConverter()
    monkeypatch.setattr(registry, "convert_centernet", converter)
    monkeypatch.setattr(shutil, "rmtree", slow_rmtree)
    return converter


class CacheWatcher:
    """Polls the model's cache directory from a thread and records every partial view."""

    def __init__(self, target: Path):
        self.target = target
        self.partial: list[set[str]] = []
        self.whole = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            try:
                seen = set(os.listdir(self.target))
            except FileNotFoundError:
                seen = None  # no model at all is allowed: it reads as "not pulled"
            if seen is not None:
                if seen == ENTRIES:
                    self.whole += 1
                else:
                    self.partial.append(seen)
            time.sleep(0.0005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def pull_concurrently(*forces: bool) -> list:
    results: list = [None] * len(forces)
    start = threading.Barrier(len(forces))

    def one(i, force):
        start.wait()
        try:
            results[i] = models.pull("centernet", force=force)
        except BaseException as e:  # reported by the test, not lost in the thread
            results[i] = e

    threads = [threading.Thread(target=one, args=(i, f)) for i, f in enumerate(forces)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name != target.name)


def test_two_pulls_at_once_never_show_a_partial_model(fake_pull):
    """Regression (issue 11, item 5): the second pull deleted the first one's copy in place
    before moving its own there; a reader saw 3 of the 6 entries."""
    target = models.model_dir("centernet")
    with CacheWatcher(target) as watcher:
        results = pull_concurrently(False, False)
    assert results == [target, target], results  # both succeed
    assert watcher.partial == []
    assert watcher.whole > 0  # the watcher did see the published model
    assert fake_pull.calls == 2
    assert models.is_cached("centernet")
    assert set(os.listdir(target)) == ENTRIES
    assert leftovers(target) == []  # no staging or replaced copies left behind


def test_forced_pulls_over_a_cached_model_never_show_a_partial_one(fake_pull):
    target = models.model_dir("centernet")
    models.pull("centernet")
    with CacheWatcher(target) as watcher:
        results = pull_concurrently(True, True, False)
    assert results == [target] * 3, results
    assert watcher.partial == []
    assert fake_pull.calls == 3  # the first pull, then the two forced ones (the third: cached)
    stamp = models.read_metadata(target)["converted_with"]
    assert stamp in ("pull 2", "pull 3")  # replaced by one of the forced pulls, whole
    assert set(os.listdir(target)) == ENTRIES
    assert leftovers(target) == []


def test_a_damaged_cached_copy_is_replaced_whole(fake_pull):
    target = models.model_dir("centernet")
    target.mkdir(parents=True)
    (target / "saved_model.pb").write_bytes(b"half")  # an old crash: no metadata
    assert not models.is_cached("centernet")
    assert models.pull("centernet") == target
    assert set(os.listdir(target)) == ENTRIES and models.is_cached("centernet")


def test_cli_models_pull_force_fetches_again(fake_pull, capsys):
    target = models.model_dir("centernet")
    assert main(["models", "pull", "centernet"]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    assert main(["models", "pull", "centernet"]) == 0  # cached: nothing fetched
    assert fake_pull.calls == 1
    assert "already cached" in capsys.readouterr().err
    assert main(["models", "pull", "centernet", "--force"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(target)
    assert "downloading @vladmandic/human@3.3.6 with npm pack" in err
    assert fake_pull.calls == 2
    assert models.read_metadata(target)["converted_with"] == "pull 2"


def test_cli_models_pull_without_npm_is_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIDSTREAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry.shutil, "which", lambda name: None)
    assert main(["models", "pull", "centernet", "--force"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vidstream: error: cannot fetch model 'centernet': npm was not found")
    assert not models.model_dir("centernet").exists()

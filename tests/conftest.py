from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "samples"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow") or os.environ.get("VIDSTREAM_RUNSLOW"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SavedModel with the OD API signature that finds pure red squares (exact boxes)."""
    from tinymodel import export_red_square_model

    return export_red_square_model(tmp_path_factory.mktemp("models") / "red_square")


@pytest.fixture(scope="session")
def centernet() -> Path:
    """The real default model, pulled with npm and converted on first use (cached)."""
    from vidstream import models

    return models.pull("centernet")


@pytest.fixture
def no_thread_leak():
    """Fails a test that leaves a vidstream thread running."""
    yield
    alive = [t.name for t in threading.enumerate() if t.name.startswith("vidstream-")]
    assert not alive, f"threads left running: {alive}"

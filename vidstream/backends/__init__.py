"""Predictor backends, chosen by what the model reference is.

Each entry of the registry says which references it loads (``matches``), how to build a
predictor on one (``factory``) and, optionally, when ``backend="auto"`` should prefer it
(``prefer``). :func:`resolve` takes the first entry that matches (earlier entries first) and,
under ``auto``, that it prefers: a converted default model's directory holds both a
SavedModel and a TF Lite network, and TF Lite is preferred when the model runs on the CPU.

>>> [entry.name for entry in entries()]
['tflite', 'tf', 'tf', 'tflite', 'triton', 'tfserving']
>>> backend_names()
('auto', 'tf', 'tflite', 'tfserving', 'triton')

Adding a backend is one module with a :class:`~vidstream.backends.base.ModelBackend`
subclass and one :func:`register` call (here, or in your own code)::

    # vidstream/backends/triton.py
    class TritonPredictor(ModelBackend):
        format = "triton"
        def __init__(self, ref, options): ...        # connect; set inputs, input_specs...
        def bind(self, input_names, output_names): ...
        def __call__(self, feed): ...

    register("triton", matches=lambda ref: ref.startswith("triton://"),
             factory=TritonPredictor, kind="a triton://host:port/model URI")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, ModelError, ModelNotFoundError
from .base import LoadOptions, ModelBackend, ModelRef, Predictor
from .tensorflow import (
    FrozenGraphPredictor,
    SavedModelPredictor,
    is_frozen_graph,
    is_saved_model_dir,
)
from .tflite import LitePredictor, is_tflite, runs_on_cpu

__all__ = [
    "Entry",
    "LoadOptions",
    "ModelBackend",
    "ModelRef",
    "Predictor",
    "backend_names",
    "check_backend",
    "entries",
    "register",
    "resolve",
    "unregister",
]

Factory = Callable[[str, LoadOptions], ModelBackend]


@dataclass(frozen=True)
class Entry:
    """One way to load models: a backend ``name`` for the references ``matches`` accepts."""

    name: str
    matches: Callable[[str], bool]
    factory: Factory
    kind: str  # what it loads, for people: "a SavedModel directory"
    prefer: Callable[[str, LoadOptions], bool] | None = None  # under "auto"; None: always


_ENTRIES: list[Entry] = []


def register(name: str, matches: Callable[[str], bool], factory: Factory, *, kind: str,
             prefer: Callable[[str, LoadOptions], bool] | None = None,
             first: bool = False) -> Entry:
    """Add a backend entry; ``first`` puts it before the others (it wins under ``auto``)."""
    if name == "auto":
        raise ConfigError("'auto' is not a backend name: it means 'choose one'")
    entry = Entry(name, matches, factory, kind, prefer)
    _ENTRIES.insert(0, entry) if first else _ENTRIES.append(entry)
    return entry


def unregister(entry: Entry) -> None:
    """Remove an entry :func:`register` returned (tests clean up with this)."""
    _ENTRIES.remove(entry)


def entries() -> list[Entry]:
    """The registry, in the order :func:`resolve` tries it."""
    return list(_ENTRIES)


def backend_names() -> tuple[str, ...]:
    """``auto`` and every registered backend name, each once, sorted."""
    return ("auto", *sorted({e.name for e in _ENTRIES}))


def check_backend(backend: str) -> None:
    """A :class:`ConfigError` listing the known backends when ``backend`` is none of them."""
    if backend not in backend_names():
        raise ConfigError(
            f"unknown backend {backend!r}; known backends: {', '.join(backend_names())}",
            param="backend",
        )


def resolve(model: ModelRef, *, backend: str = "auto", options: LoadOptions | None = None
            ) -> ModelBackend:
    """A loaded predictor on ``model`` from the first entry that fits ``backend``."""
    check_backend(backend)
    options = options or LoadOptions()
    ref = os.fspath(model)
    fits = [e for e in _ENTRIES if e.matches(ref)]
    if not fits:
        kinds = "; ".join(dict.fromkeys(f"{e.kind} ({e.name})" for e in _ENTRIES))
        if "://" not in ref and not Path(ref).exists():
            raise ModelNotFoundError(f"{ref}: no such model (expected {kinds})", param="model")
        raise ModelNotFoundError(f"{ref}: not a model any backend loads (expected {kinds})",
                                 param="model")
    if backend == "auto":
        chosen = next((e for e in fits if e.prefer is None or e.prefer(ref, options)), fits[0])
    else:
        named = [e for e in fits if e.name == backend]
        if not named:
            kinds = "; ".join(dict.fromkeys(e.kind for e in _ENTRIES if e.name == backend))
            raise ModelError(
                f"{ref}: the {backend} backend loads {kinds}, not this model; backends that "
                f"load it: {', '.join(dict.fromkeys(e.name for e in fits))}",
                param="backend",
            )
        chosen = named[0]
    return chosen.factory(ref, options)


# The built-in entries. Order matters under "auto": a converted default model's directory is
# both a TF Lite model and a SavedModel.
register("tflite", lambda ref: is_tflite(ref) and Path(ref).is_dir(), LitePredictor,
         kind="a converted model directory with a TF Lite network", prefer=runs_on_cpu)
register("tf", is_saved_model_dir, SavedModelPredictor, kind="a SavedModel directory")
register("tf", is_frozen_graph, FrozenGraphPredictor, kind="a frozen graph .pb file")
register("tflite", lambda ref: is_tflite(ref) and Path(ref).is_file(), LitePredictor,
         kind="a .tflite file converted by vidstream")

# Remote models: a URI names the server and the model; the client needs vidstream[remote].
from .remote import is_remote, set_local_loader  # noqa: E402
from .tfserving import TFServingPredictor  # noqa: E402
from .triton import TritonPredictor  # noqa: E402

register("triton", lambda ref: is_remote(ref) and ref.startswith("triton://"), TritonPredictor,
         kind="a triton://HOST:PORT/MODEL URI")
register("tfserving", lambda ref: is_remote(ref) and ref.startswith("tfserving://"),
         TFServingPredictor, kind="a tfserving://HOST:PORT/MODEL URI")


def _load_local(model: str, options: LoadOptions) -> ModelBackend:
    """A remote model's local fallback: a known model's name (pulled when missing) or a path."""
    from ..models import registry

    return resolve(registry.resolve(model), options=options)


set_local_loader(_load_local)

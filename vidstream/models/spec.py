"""What vidstream knows about a model it can fetch: :class:`ModelSpec`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """A known model: where its package comes from and how its graph is wired.

    >>> from vidstream.models import REGISTRY
    >>> REGISTRY["centernet"].input_size
    (512, 512)
    """

    name: str
    description: str
    package: str
    version: str
    files: tuple[str, ...]  # inside the package tarball; the first is model.json
    licence: str
    input_size: tuple[int, int]
    input_node: str
    heatmap_node: str
    sizes_node: str
    num_classes: int = 80
    stride: int = 4  # input pixels per heatmap cell
    max_detections: int = 100

"""Test clips made on the fly (nothing binary is committed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from make_clip import encode
from tinymodel import red_square_frames


def red_square_clip(path: Path, frames: int = 30, width: int = 320, height: int = 240,
                    rate: Fraction = Fraction(30000, 1001), audio: bool = False,
                    **kwargs) -> list[tuple[int, int, int, int]]:
    """A clip of a red square moving right; returns its box in every frame."""
    boxes = []

    def images():
        for image, box in red_square_frames(frames, width, height):
            boxes.append(box)
            yield image

    encode(path, images(), rate=rate, audio=audio, **kwargs)
    return boxes

"""Frames from numpy arrays: a source for tests, synthetic input and frames made elsewhere.

>>> import numpy as np
>>> src = ArraySource([np.zeros((4, 6, 3), np.uint8)] * 3, rate=25)
>>> info = src.open(); [f.index for f in src.frames()], info.width, info.height
([0, 1, 2], 6, 4)
>>> info.duration_s                              # a float, like every source's
0.12
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import EmptyInputError
from ..frames import Frame, StreamInfo
from ..stage import Source


class ArraySource(Source):
    """Frames from numpy arrays (``(H, W, 3)`` or ``(1, H, W, 3)`` RGB uint8), any iterable
    of them (a generator too: ``frames`` then states the count if known)."""

    name = "decode"

    def __init__(self, images: Iterable[Any], rate: float | Fraction = 30,
                 frames: int | None = None) -> None:
        self.images = images
        self.rate = Fraction(rate).limit_denominator(1001)
        self.time_base = 1 / self.rate
        self.count = frames if frames is not None else _len_or_none(images)
        self._iter: Iterator[Any] | None = None
        self._first: np.ndarray | None = None

    def open(self) -> StreamInfo:
        self._iter = iter(self.images)
        try:
            self._first = np.asarray(next(self._iter))
        except StopIteration:
            raise EmptyInputError("ArraySource: no images") from None
        shape = self._first.shape[-3:]
        return StreamInfo(
            uri="<arrays>",
            width=shape[1],
            height=shape[0],
            rate=self.rate,
            time_base=self.time_base,
            frames=self.count,
            # float like every source's: a Fraction here broke json.dumps of the summary
            duration_s=float(self.count / self.rate) if self.count else None,
        )

    def frames(self) -> Iterator[Frame]:
        assert self._iter is not None, "open() first"
        first, self._first = self._first, None
        images = [first] if first is not None else []
        for index, image in enumerate(itertools.chain(images, self._iter)):
            yield Frame.from_array(np.asarray(image), index, index, self.time_base)

    def close(self) -> None:
        self._iter = None

    def __enter__(self) -> ArraySource:
        self.open()
        return self


def _len_or_none(obj: Any) -> int | None:
    try:
        return len(obj)
    except TypeError:
        return None

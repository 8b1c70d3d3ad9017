"""The frame that travels through a pipeline.

A :class:`Frame` keeps the decoded picture as the decoder produced it (a PyAV ``VideoFrame``,
usually YUV 4:2:0) and converts only when asked: the detector asks for a small RGB image at the
model's input size, the video writer for the full-size picture. Conversions are cached, so each
is done at most once per frame whichever stage asks first.

>>> import numpy as np
>>> f = Frame.from_array(np.zeros((1, 1080, 1920, 3), np.uint8), index=0)
>>> f.image.shape, f.width, f.height
((1, 1080, 1920, 3), 1920, 1080)
>>> f.rgb(512, 512).shape
(1, 512, 512, 3)
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from .detections import Detections

if TYPE_CHECKING:
    import av

    from .tracking.counting import CountEvent


@dataclass(frozen=True, eq=False)
class Frame:
    """One video frame: its stream, its position (``index``, ``pts`` x ``time_base``) and its
    picture.

    ``image`` is the picture as uint8 RGB of shape ``(1, H, W, 3)``, the layout TensorFlow
    detectors take. ``detections`` is set by the detector stage. ``stream`` is the position of
    the frame's source in the pipeline (0 for a single-stream pipeline): frames of many
    streams share the stages between the merge and the split, and find their own sinks by it.
    ``events`` are what happened at this frame (a tracked object crossing a counting line,
    entering or leaving a zone), set by the tracker stage.
    """

    index: int
    pts: int | None
    time_base: Fraction | None
    picture: Any = field(repr=False)  # av.VideoFrame, or an RGB ndarray (1, H, W, 3)
    detections: Detections | None = None
    stream: int = 0
    events: tuple[CountEvent, ...] = field(default=(), repr=False)
    created: float = field(default_factory=time.perf_counter, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_array(
        cls,
        image: np.ndarray,
        index: int = 0,
        pts: int | None = None,
        time_base: Fraction | None = None,
        stream: int = 0,
    ) -> Frame:
        """A frame from an RGB uint8 array, ``(H, W, 3)`` or ``(1, H, W, 3)``."""
        image = np.asarray(image)
        if image.ndim == 3:
            image = image[None]
        if image.ndim != 4 or image.shape[0] != 1 or image.shape[3] != 3:
            raise ValueError(f"Frame.from_array: expected (1, H, W, 3) RGB, got {image.shape}")
        if image.dtype != np.uint8:
            raise ValueError(f"Frame.from_array: expected uint8, got {image.dtype}")
        return cls(index, pts, time_base, image, stream=stream)

    @classmethod
    def from_av(cls, picture: av.VideoFrame, index: int, stream: int = 0) -> Frame:
        tb = picture.time_base
        return cls(index, picture.pts, Fraction(tb) if tb is not None else None, picture,
                   stream=stream)

    def in_stream(self, stream: int) -> Frame:
        """The same frame tagged with ``stream`` (the engine tags each source's frames)."""
        return self if stream == self.stream else dataclasses.replace(self, stream=stream)

    @property
    def width(self) -> int:
        p = self.picture
        return p.shape[2] if isinstance(p, np.ndarray) else p.width

    @property
    def height(self) -> int:
        p = self.picture
        return p.shape[1] if isinstance(p, np.ndarray) else p.height

    @property
    def time(self) -> float | None:
        """Presentation time in seconds, when the frame has a timestamp."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

    @property
    def image(self) -> np.ndarray:
        """The full picture as uint8 RGB ``(1, H, W, 3)`` (converted once, then cached)."""
        return self.rgb()

    def rgb(self, width: int | None = None, height: int | None = None) -> np.ndarray:
        """RGB ``(1, h, w, 3)``, scaled to ``width`` x ``height`` when given.

        Decoded frames are converted and scaled by libswscale in one step, which costs a
        fraction of a full-size conversion followed by a resize.
        """
        w = width or self.width
        h = height or self.height
        key = ("rgb", w, h)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        p = self.picture
        if isinstance(p, np.ndarray):
            if (w, h) == (p.shape[2], p.shape[1]):
                out = p
            else:
                import cv2

                out = cv2.resize(p[0], (w, h), interpolation=cv2.INTER_LINEAR)[None]
        elif (w, h) == (p.width, p.height):
            out = p.to_ndarray(format="rgb24")[None]
        else:
            out = p.reformat(width=w, height=h, format="rgb24", interpolation="BILINEAR")
            out = out.to_ndarray()[None]
        self._cache[key] = out
        return out

    def with_detections(self, detections: Detections | None) -> Frame:
        """A copy carrying ``detections`` (conversions already made are shared)."""
        return dataclasses.replace(self, detections=detections)

    def with_events(self, events: tuple[CountEvent, ...]) -> Frame:
        """A copy carrying ``events`` (after those it had)."""
        return dataclasses.replace(self, events=self.events + tuple(events))

    def with_image(self, image: np.ndarray) -> Frame:
        """A copy showing ``image`` (RGB uint8, ``(H, W, 3)`` or ``(1, H, W, 3)``) instead of
        the picture; index, timestamps and detections stay. This is how a stage edits pixels:

        >>> import numpy as np
        >>> f = Frame.from_array(np.zeros((2, 2, 3), np.uint8), index=7, pts=7)
        >>> g = f.with_image(255 - f.image)
        >>> g.index, g.pts, int(g.image.min()), int(f.image.max())
        (7, 7, 255, 0)
        """
        new = Frame.from_array(np.ascontiguousarray(image), self.index, self.pts,
                               self.time_base, self.stream)
        return dataclasses.replace(new, detections=self.detections, events=self.events,
                                   created=self.created)


@dataclass(frozen=True)
class StreamInfo:
    """What a source knows about its stream once opened.

    ``frames`` is the container's frame count when it states one (None for live sources);
    ``rate`` is the exact rational frame rate (30000/1001 stays 30000/1001).
    """

    uri: str  # credentials masked
    width: int
    height: int
    rate: Fraction | None
    time_base: Fraction | None
    frames: int | None = None
    duration_s: float | None = None
    codec: str = ""
    live: bool = False
    path: str | None = None  # local file the source reads, for audio passthrough
    has_audio: bool = False

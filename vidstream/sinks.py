"""Sink stages: the annotated video, the detections as JSON lines, per-class counts.

>>> from vidstream import Detector, Pipeline, VideoSource
>>> writer, counter = VideoWriter("out.mp4", preset="veryfast"), ClassCounter()
>>> summary = Pipeline(VideoSource("clip.mp4"), [Detector()], [writer, counter]).run()
>>> writer.frames_written, counter.frames, "person" in counter.to_dict()["classes"]
(12, 12, True)

Alone, the video writer encodes frames you made (RGB arrays, with detections to draw or not):

>>> import numpy as np
>>> from vidstream import Detections
>>> person = Detections(boxes=[[8, 8, 40, 56]], scores=[0.9], class_ids=[1])
>>> with VideoWriter("made.mp4", rate=25) as writer:
...     for i in range(10):
...         writer.write(np.full((64, 96, 3), 20 * i, np.uint8), person)
>>> writer.frames_written
10

The video keeps the input's timestamps (so its exact frame rate and duration) and copies its
audio unchanged; closing finalizes the file whatever happened before, so a run that fails or
is interrupted still leaves a playable video of every frame processed.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from .annotate import Annotator
from .detections import Detections
from .errors import OutputError
from .frames import Frame, StreamInfo
from .stage import Sink

FRAGMENTED_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
FRAGMENT_S = 1.0  # a fragmented output is cut at least this often: what a hard kill can cost


def check_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse, before any work, an output that exists (without overwrite) or can't be written."""
    p = Path(path)
    if p.exists() and p.is_dir():
        raise OutputError(f"{p}: is a directory")
    if p.exists() and not overwrite:
        raise OutputError(f"{p}: already exists (use -y to overwrite)")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{p}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise OutputError(f"{p}: permission denied")
    _probe_writable(p)
    return p


def _probe_writable(p: Path) -> None:
    """Create (and remove) the file, or open it for appending: the only check that does not lie.

    ``os.access`` says yes to root everywhere, and to anyone on a read-only mount or in /proc.
    """
    try:
        if p.exists():
            with p.open("ab"):
                pass
        else:
            with p.open("xb"):
                pass
            p.unlink()
    except OSError as e:
        raise OutputError(f"{p}: cannot write: {e.strerror or e}") from None


class AudioCopier:
    """Copies the input's first audio stream into the output, packet for packet.

    It reads the input a second time, for audio only, and keeps pace with the video: before
    a video frame at time ``t`` is written, the audio up to ``t`` is. On close it copies up to
    the end of the last video frame, so a partial output stays in sync.
    """

    def __init__(self, input_path: str, output: Any) -> None:
        self._input = av.open(input_path, metadata_errors="replace")
        self._in_stream = self._input.streams.audio[0]
        self.stream = output.add_stream_from_template(self._in_stream)
        self._output = output
        self._packets = self._input.demux(self._in_stream)
        self._pending: Any = None
        self.copied = 0

    def copy_until(self, t: float | None) -> None:
        while True:
            packet = self._pending
            self._pending = None
            if packet is None:
                try:
                    packet = next(self._packets)
                except (StopIteration, av.FFmpegError, IndexError):
                    self._packets = iter(())
                    return
            if packet.dts is None or packet.size == 0:
                continue  # the demuxer's flush packet
            if t is not None and packet.pts is not None and packet.time_base is not None and (
                float(packet.pts * packet.time_base) >= t
            ):
                self._pending = packet
                return
            packet.stream = self.stream
            self._output.mux(packet)
            self.copied += 1

    def close(self) -> None:
        self._input.close()


class VideoWriter(Sink):
    """Encodes frames (annotated by default) to a video file with PyAV.

    Boxes are drawn straight onto the decoded picture's planes, so stages after the writer see
    them too; put pixel-reading sinks before it.

    ``fragmented=True`` writes fragmented MP4 whose fragments are flushed as they are made, so
    even a killed process leaves a file readable up to its last fragment. B-frames are turned
    off there: a fragmented MP4 has no edit list to hide their delay, which would shift every
    timestamp.

    In a pipeline the writer takes the source's size, exact rate and timestamps. Alone
    (``open()`` without a StreamInfo, or ``with``), the first frame gives the size and
    ``rate`` (default 30) the frame rate; frames that carry timestamps keep them.
    """

    name = "video"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        codec: str = "libx264",
        preset: str | None = "veryfast",
        crf: int | None = None,
        fragmented: bool = False,
        annotate: bool = True,
        audio: bool = True,
        threads: int = 0,
        options: dict[str, str] | None = None,
        annotator: Annotator | None = None,
        rate: float | Fraction | None = None,
    ) -> None:
        self.path = Path(path)
        self.rate = rate
        self.codec = codec
        self.preset = preset
        self.crf = crf
        self.fragmented = fragmented
        self.annotate = annotate
        self.audio = audio
        self.threads = threads
        self.options = dict(options or {})
        self.annotator = annotator or Annotator()
        self.frames_written = 0
        self.last_end: float | None = None
        self._container: Any = None
        self._stream: Any = None
        self._audio: AudioCopier | None = None
        self._size: tuple[int, int] = (0, 0)
        self._closed = False

    def open(self, info: StreamInfo | None = None) -> None:
        check_output(self.path, overwrite=True)
        if info is not None:  # else the first frame gives the size (used alone)
            self._start(info)

    def _start(self, info: StreamInfo) -> None:
        container_options = {}
        if self.fragmented:
            container_options = {"movflags": FRAGMENTED_MOVFLAGS, "flush_packets": "1",
                                 "frag_duration": str(int(FRAGMENT_S * 1_000_000))}
        try:
            self._container = av.open(str(self.path), "w", options=container_options)
        except (av.FFmpegError, OSError, ValueError) as e:
            raise OutputError(f"{self.path}: cannot create output: {e}") from e
        try:
            self._setup(info)
        except BaseException:
            self._container.close()
            self._container = None
            raise

    def _setup(self, info: StreamInfo) -> None:
        rate = info.rate or Fraction(30)
        try:
            stream = self._container.add_stream(self.codec, rate=rate)
        except (av.FFmpegError, ValueError) as e:
            raise OutputError(f"{self.path}: encoder {self.codec!r} unavailable: {e}") from e
        # libx264 and most encoders want even dimensions in 4:2:0
        self._size = (info.width - info.width % 2, info.height - info.height % 2)
        stream.width, stream.height = self._size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = info.time_base or 1 / rate
        if self.threads:
            stream.codec_context.thread_count = self.threads
        options = {}
        if self.codec.startswith("libx26"):
            if self.preset:
                options["preset"] = self.preset
            if self.crf is not None:
                options["crf"] = str(self.crf)
        if self.fragmented:
            options["bf"] = "0"
        options.update(self.options)
        stream.options = options
        self._stream = stream
        if self.audio and info.has_audio and info.path:
            try:
                self._audio = AudioCopier(info.path, self._container)
            except (av.FFmpegError, IndexError, ValueError):
                self._audio = None  # unreadable audio never costs the video

    def write(self, image: Frame | np.ndarray, detections: Detections | None = None) -> None:
        """Encode one frame: a :class:`Frame`, or an RGB uint8 image ``(H, W, 3)``; boxes are
        drawn for ``detections`` (or the frame's own) when ``annotate`` is on."""
        frame = image if isinstance(image, Frame) else Frame.from_array(
            image, index=self.frames_written)
        if detections is not None:
            frame = frame.with_detections(detections)
        self.process(frame)

    def process(self, frame: Frame) -> None:
        if self._stream is None:
            if self._closed:
                raise OutputError(f"{self.path}: the writer is closed")
            self._start(self._info_for(frame))
        picture = self._picture(frame)
        try:
            for packet in self._stream.encode(picture):
                self._mux_video(packet)
        except (av.FFmpegError, OSError) as e:  # e.g. the disk is full
            raise OutputError(f"{self.path}: cannot write: {e}") from e
        self.frames_written += 1
        if frame.time is not None and frame.time_base is not None:
            self.last_end = frame.time + float(1 / (self._stream.average_rate or 30))

    def _info_for(self, frame: Frame) -> StreamInfo:
        rate = Fraction(self.rate or 30).limit_denominator(1001)
        return StreamInfo(uri="<frames>", width=frame.width, height=frame.height, rate=rate,
                          time_base=frame.time_base or 1 / rate)

    def _picture(self, frame: Frame) -> Any:
        src = frame.picture
        dets = frame.detections if self.annotate else None
        if isinstance(src, av.VideoFrame):
            picture = src
            if (picture.width, picture.height) != self._size or picture.format.name != "yuv420p":
                picture = picture.reformat(width=self._size[0], height=self._size[1],
                                           format="yuv420p")
            if dets is not None and len(dets):
                # Draw on the decoded planes themselves: no RGB round trip, no copy unless
                # the decoder still references the buffer (make_writable copies then).
                picture.make_writable()
                self.annotator.annotate_yuv420(*_planes(picture), dets)
        else:
            image = src[0]
            if dets is not None and len(dets):
                image = self.annotator.annotate(image[:, :, ::-1].copy(), dets)  # OpenCV: BGR
                picture = av.VideoFrame.from_ndarray(image, format="bgr24")
            else:
                picture = av.VideoFrame.from_ndarray(image, format="rgb24")
            if (picture.width, picture.height) != self._size:
                picture = picture.reformat(width=self._size[0], height=self._size[1])
        picture.pts = frame.pts if frame.pts is not None else self.frames_written
        picture.time_base = frame.time_base or self._stream.codec_context.time_base
        return picture

    def _mux_video(self, packet: Any) -> None:
        # None would copy all the rest of the audio: only a known time paces it
        if self._audio is not None and packet.dts is not None and packet.time_base:
            self._audio.copy_until(float(packet.dts * packet.time_base))
        self._container.mux(packet)

    def close(self) -> None:
        self._closed = True
        if self._container is None:
            return
        try:
            if self._stream is not None:
                for packet in self._stream.encode(None):
                    self._mux_video(packet)
            if self._audio is not None:
                self._audio.copy_until(self.last_end)
        finally:
            if self._audio is not None:
                self._audio.close()
            container, self._container = self._container, None
            self._stream = None
            container.close()
            if self.frames_written == 0:
                # Not one frame: leave no file that looks like a video but is not one.
                self.path.unlink(missing_ok=True)

    def describe(self) -> dict:
        return {"output": str(self.path), "encoder": self.codec, "preset": self.preset}


def _planes(picture: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Writable numpy views of a yuv420p frame's Y, U and V planes (rows padded to line size)."""
    views = []
    for plane in picture.planes:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        views.append(rows[:, : plane.width])
    return views[0], views[1], views[2]


class DetectionsWriter(Sink):
    """One JSON object per frame: ``{"index", "time", "detections": [...]}`` (boxes in pixels)."""

    name = "detections"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fh: Any = None
        self._closed = False
        self.lines = 0

    def open(self, info: StreamInfo | None = None) -> None:
        check_output(self.path, overwrite=True)
        try:
            self._fh = self.path.open("w", encoding="utf-8")
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write: {e.strerror or e}") from e

    def process(self, frame: Frame) -> None:
        if self._fh is None:
            if self._closed:
                raise OutputError(f"{self.path}: the writer is closed")
            self.open()
        record = {
            "index": frame.index,
            "time": None if frame.time is None else round(frame.time, 6),
            "detections": frame.detections.to_json() if frame.detections is not None else [],
        }
        # a line per frame, flushed: an interrupted run keeps every frame it wrote
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._fh.flush()
        self.lines += 1

    def close(self) -> None:
        self._closed = True
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class ClassCounter(Sink):
    """Per-class totals over the run, written as JSON on close.

    ``{"frames": 250, "classes": {"car": {"detections": 812, "frames": 247, "max_in_frame": 5}}}``
    """

    name = "counts"

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.frames = 0
        self.classes: dict[str, dict[str, int]] = {}

    def open(self, info: StreamInfo | None = None) -> None:
        if self.path is not None:
            check_output(self.path, overwrite=True)

    def process(self, frame: Frame) -> None:
        self.frames += 1
        if frame.detections is None:
            return
        for label, n in frame.detections.count_by_label().items():
            c = self.classes.setdefault(label, {"detections": 0, "frames": 0, "max_in_frame": 0})
            c["detections"] += n
            c["frames"] += 1
            c["max_in_frame"] = max(c["max_in_frame"], n)

    def to_dict(self) -> dict:
        return {"frames": self.frames, "classes": dict(sorted(self.classes.items()))}

    def close(self) -> None:
        if self.path is not None:
            self.path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

"""The annotated video: frames encoded by PyAV with their own timestamps, audio copied.

The video keeps the input's timestamps (so its exact frame rate and duration) and copies its
audio unchanged; closing finalizes the file whatever happened before, so a run that fails or
is interrupted still leaves a playable video of every frame processed.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..annotate import Annotator
from ..detections import Detections
from ..errors import OutputError
from ..frames import Frame, StreamInfo
from ..settings import DEFAULTS
from ..stage import Sink
from .audio import AudioCopier
from .output import OutputFile, check_output, describe_output

#: The smallest frame the 4:2:0 encoders take (libx264 needs at least 2x2 pixels).
MIN_SIZE = (2, 2)

#: MP4 written as self-contained fragments: readable up to the last one after a hard kill.
FRAGMENTED_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"


class VideoWriter(Sink):
    """Encodes frames (annotated by default) to a video file with PyAV.

    Boxes are drawn straight onto the decoded picture's planes, so stages after the writer see
    them too; put pixel-reading sinks before it.

    ``fragmented=True`` writes fragmented MP4 whose fragments are flushed as they are made
    (at least every ``DEFAULTS.fragment_s``), so even a killed process leaves a file readable
    up to its last fragment. B-frames are turned off there: a fragmented MP4 has no edit list
    to hide their delay, which would shift every timestamp.

    In a pipeline the writer takes the source's size, exact rate and timestamps. Alone
    (``open()`` without a StreamInfo, or ``with``), the first frame gives the size and
    ``rate`` (default 30) the frame rate; frames that carry timestamps keep them.

    ``audio=True`` copies the input file's audio; if that fails, the video goes on without
    it, a warning says why, and :meth:`describe` counts it.

    The file appears whole or not at all: it is written under a hidden temporary name beside
    ``path`` and renamed into place when closed, so a reader never sees a half-written video
    and a run that cannot finalize it (a full disk) leaves ``path`` absent (or, with
    ``overwrite``, unchanged). Without ``overwrite`` an existing ``path`` is refused and the
    path is locked for the run: a second run aiming at it is refused. A fragmented video is
    meant to be read while it grows and after a kill, so it is written at ``path`` itself,
    locked whatever ``overwrite`` says. :attr:`frames_written` counts the frames in the file.
    """

    name = "video"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        codec: str = DEFAULTS.codec,
        preset: str | None = DEFAULTS.preset,
        crf: int | None = None,
        fragmented: bool = False,
        annotate: bool = True,
        audio: bool = True,
        threads: int = 0,
        options: dict[str, str] | None = None,
        annotator: Annotator | None = None,
        rate: float | Fraction | None = None,
        overwrite: bool = True,
    ) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
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
        self.frames_written = 0  # frames in the file: video packets muxed
        self.frames_encoded = 0  # frames given to the encoder
        self.error: str | None = None  # the first write failure, in words
        self.finalized = False  # the file is whole and in place
        self.last_end: float | None = None
        self._out: OutputFile | None = None
        self._container: Any = None
        self._stream: Any = None
        self._audio: AudioCopier | None = None
        self._size: tuple[int, int] = (0, 0)
        self._closed = False

    def open(self, info: StreamInfo | None = None) -> None:
        check_output(self.path, overwrite=self.overwrite)
        if info is not None:  # else the first frame gives the size (used alone)
            self._start(info)

    def write(self, image: Frame | np.ndarray, detections: Detections | None = None) -> None:
        """Encode one frame: a :class:`Frame`, or an RGB uint8 image ``(H, W, 3)``; boxes are
        drawn for ``detections`` (or the frame's own) when ``annotate`` is on."""
        frame = image if isinstance(image, Frame) else Frame.from_array(
            image, index=self.frames_encoded)
        if detections is not None:
            frame = frame.with_detections(detections)
        self.process(frame)

    def process(self, frame: Frame) -> None:
        if self._stream is None:
            if self._closed:
                raise OutputError(f"{self.path}: the writer is closed")
            self._start(self._info_for(frame))
        if self.error is not None:
            raise OutputError(f"{self.path}: cannot write: {self.error}")
        picture = self._picture(frame)
        try:
            for packet in self._stream.encode(picture):
                self._mux_video(packet)
        except (av.FFmpegError, OSError) as e:  # e.g. the disk is full
            raise self._failed(e) from e
        self.frames_encoded += 1
        if frame.time is not None and frame.time_base is not None:
            self.last_end = frame.time + float(1 / (self._stream.average_rate or 30))

    def close(self) -> None:
        """Flush the encoder, finalize the file and put it in place.

        Raises :class:`~vidstream.errors.OutputError` when the file cannot be finalized (it
        is then removed: a video without its index is no video) or put in place.
        """
        self._closed = True
        if self._container is None:
            if self._out is not None:
                self._out.release()
            return
        try:
            if self._stream is not None and self.error is None:
                try:
                    for packet in self._stream.encode(None):
                        self._mux_video(packet)
                except (av.FFmpegError, OSError) as e:
                    self._failed(e)
            if self._audio is not None and self.error is None:
                self._audio.copy_until(self.last_end)
        finally:
            if self._audio is not None:
                self._audio.close()
            container, self._container = self._container, None
            self._stream = None
            try:
                container.close()  # writes the index: the step a full disk breaks
            except (av.FFmpegError, OSError) as e:
                self._failed(e, finalizing=True)
            self._finish()
        if self.error is not None:
            raise OutputError(f"{self.path}: {self._outcome()}")

    def _finish(self) -> None:
        out = self._out
        assert out is not None
        if self.frames_written and self.error is not None:
            # Only what reads back counts: the muxer may have taken packets the disk did not.
            self.frames_written = _readable_frames(out.temp)
        if not self.frames_written:
            # Not one frame: leave no file that looks like a video but is not one.
            out.discard()
            return
        try:
            out.commit()
        except OutputError as e:
            self.frames_written = 0
            self.error = self.error or e.message
            raise
        self.finalized = True

    def _failed(self, e: BaseException, finalizing: bool = False) -> OutputError:
        """Record the first write failure; the error to raise for it."""
        text = getattr(e, "strerror", None) or str(e)
        if finalizing and self.error is None:
            self.error = f"cannot finalize: {text}"
        elif self.error is None:
            self.error = text
        return OutputError(f"{self.path}: cannot write: {text}")

    def _outcome(self) -> str:
        if self.frames_written:
            return (f"incomplete ({self.error}): it holds the first {self.frames_written} "
                    "frames")
        return f"not written ({self.error}); no video was left"

    def describe(self) -> dict[str, Any]:
        """The output, its encoder and, when the input's audio is copied, the audio's
        counters: ``{"packets": N, "errors": K, "error": "the first failure" or None}``."""
        described: dict[str, Any] = {
            "output": str(self.path), "encoder": self.codec, "preset": self.preset,
            "video_file": describe_output(self.path, finalized=self.finalized, error=self.error,
                                          frames=self.frames_written),
        }
        if self._audio is not None:
            described["audio"] = self._audio.to_dict()
        return described

    # -- opening -----------------------------------------------------------------------------
    def _start(self, info: StreamInfo) -> None:
        container_options = {}
        if self.fragmented:
            container_options = {"movflags": FRAGMENTED_MOVFLAGS, "flush_packets": "1",
                                 "frag_duration": str(int(DEFAULTS.fragment_s * 1_000_000))}
        if info.width < MIN_SIZE[0] or info.height < MIN_SIZE[1]:
            raise OutputError(
                f"{self.path}: the frames are {info.width}x{info.height}; the {self.codec} "
                f"encoder needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]} pixels", param="video")
        self._out = OutputFile(self.path, overwrite=self.overwrite, in_place=self.fragmented)
        target = self._out.begin()
        try:
            self._container = av.open(str(target), "w", options=container_options)
        except (av.FFmpegError, OSError, ValueError) as e:
            self._out.discard()
            raise OutputError(f"{self.path}: cannot create output: {e}") from e
        try:
            self._setup(info)
        except BaseException:
            self._container.close()
            self._container = None
            self._out.discard()
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
            # Never raises for the input's sake: unreadable audio never costs the video.
            self._audio = AudioCopier(info.path, self._container)

    def _info_for(self, frame: Frame) -> StreamInfo:
        rate = Fraction(self.rate or 30).limit_denominator(1001)
        return StreamInfo(uri="<frames>", width=frame.width, height=frame.height, rate=rate,
                          time_base=frame.time_base or 1 / rate)

    # -- writing -----------------------------------------------------------------------------
    def _picture(self, frame: Frame) -> Any:
        src = frame.picture
        dets = frame.detections if self.annotate else None
        # counting lines and zones are drawn on every frame, detections or not
        draw = self.annotate and (bool(dets is not None and len(dets))
                                  or self.annotator.has_overlays)
        if isinstance(src, av.VideoFrame):
            picture = src
            if (picture.width, picture.height) != self._size or picture.format.name != "yuv420p":
                picture = picture.reformat(width=self._size[0], height=self._size[1],
                                           format="yuv420p")
            if draw:
                # Draw on the decoded planes themselves: no RGB round trip, no copy unless
                # the decoder still references the buffer (make_writable copies then).
                picture.make_writable()
                self.annotator.annotate_yuv420(*_planes(picture), dets, frame.events)
        else:
            image = src[0]
            if draw:
                image = self.annotator.annotate(image[:, :, ::-1].copy(), dets,  # OpenCV: BGR
                                                frame.events)
                picture = av.VideoFrame.from_ndarray(image, format="bgr24")
            else:
                picture = av.VideoFrame.from_ndarray(image, format="rgb24")
            if (picture.width, picture.height) != self._size:
                picture = picture.reformat(width=self._size[0], height=self._size[1])
        picture.pts = frame.pts if frame.pts is not None else self.frames_encoded
        picture.time_base = frame.time_base or self._stream.codec_context.time_base
        return picture

    def _mux_video(self, packet: Any) -> None:
        # None would copy all the rest of the audio: only a known time paces it
        if self._audio is not None and packet.dts is not None and packet.time_base:
            self._audio.copy_until(float(packet.dts * packet.time_base))
        self._container.mux(packet)
        self.frames_written += 1


def _readable_frames(path: Path) -> int:
    """Video packets that read back from ``path`` (0 when it does not open)."""
    try:
        with av.open(str(path)) as c:
            return sum(1 for p in c.demux(video=0) if p.size)
    except (av.FFmpegError, OSError, ValueError, IndexError, UnicodeDecodeError, EOFError):
        return 0


def _planes(picture: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Writable numpy views of a yuv420p frame's Y, U and V planes (rows padded to line size)."""
    views = []
    for plane in picture.planes:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        views.append(rows[:, : plane.width])
    return views[0], views[1], views[2]

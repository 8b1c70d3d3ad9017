"""Frames from a file, a network stream or a camera, decoded by PyAV.

:class:`VideoSource` opens, reads and decodes, and keeps the decode-error budget; it asks
:mod:`.live` what to do when a live stream stalls or drops, and :mod:`.forensics` whether a
file decoded to its end was complete. Library errors are translated here, at the boundary,
into one-line :mod:`vidstream.errors` that name the input and the cause.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..errors import (
    CorruptInputError,
    EmptyInputError,
    FrameTooLargeError,
    InputError,
    InputNotFoundError,
    NoVideoStreamError,
    SourceError,
    StallError,
    VidstreamError,
)
from ..frames import Frame, StreamInfo
from ..settings import DEFAULTS
from ..stage import Source
from .failures import READ_ERRORS, describe_error
from .forensics import incomplete
from .live import Pacer, Reconnector, StallWatchdog
from .uri import is_live, mask_credentials

_INT_MAX = 2**31 - 1  # FFmpeg's int options

# What ends a read: a broken input, or a lost live stream (frames() may reconnect).
_LOST: tuple[type[BaseException], ...] = (SourceError, *READ_ERRORS)


class VideoSource(Source):
    """Decodes a video file, URL or camera into :class:`~vidstream.frames.Frame` objects.

    Files are read to the end and nothing is dropped. Live sources (network URLs, ``/dev/video*``)
    are opened with read timeouts, reconnect up to ``reconnect`` times with backoff, and raise
    :class:`~vidstream.errors.StallError` when no frame arrives for ``stall_timeout`` seconds.
    ``realtime=True`` paces a file's frames to their timestamps, as a camera would send them.
    """

    name = "decode"

    def __init__(
        self,
        uri: str | os.PathLike[str],
        *,
        max_pixels: int = DEFAULTS.max_pixels,
        max_decode_errors: int = DEFAULTS.max_decode_errors,
        max_frames: int | None = None,
        threads: int = DEFAULTS.decoder_threads,
        live: bool | None = None,
        format: str | None = None,
        options: dict[str, str] | None = None,
        open_timeout: float = DEFAULTS.open_timeout,
        stall_timeout: float = DEFAULTS.stall_timeout,
        reconnect: int = DEFAULTS.reconnect,
        reconnect_delay: float = DEFAULTS.reconnect_delay,
        realtime: bool = False,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        self.uri = str(uri)
        self.display = mask_credentials(self.uri)
        self.live = is_live(self.uri) if live is None else live
        self.max_pixels = max_pixels
        self.max_decode_errors = max_decode_errors
        self.max_frames = max_frames
        self.threads = threads
        self.format = format or ("v4l2" if self.uri.startswith("/dev/video") else None)
        self.options = dict(options or {})
        self.open_timeout = open_timeout
        self.stall_timeout = stall_timeout
        self.realtime = realtime
        self._stop = threading.Event()
        # Waits (backoff, real-time pacing) end at once when the source is stopped.
        self._sleep: Callable[[float], Any] = sleep or self._stop.wait
        self._reconnector = Reconnector(
            self.display, attempts=reconnect, delay=reconnect_delay,
            stall_timeout=stall_timeout, stopped=self._stop, sleep=self._sleep,
        )
        self._watchdog = StallWatchdog(self.display, stall_timeout)
        self.decode_errors = 0
        self.wait_s = 0.0  # waiting for a live sender or for real-time pacing: not work
        self.corrupt_frames = 0
        self.frames_decoded = 0
        self.ended_early: str | None = None
        self.info: StreamInfo | None = None
        self._container: Any = None
        self._stream: Any = None
        self._first: Any = None  # first decoded picture, read in open() to fail fast
        self._packets: Iterator[Any] | None = None
        self._format = ""
        self._finite = not self.live
        self.rotation = 0  # degrees counter-clockwise the display matrix asks for

    @property
    def reconnect(self) -> int:
        """Reconnect attempts allowed after the stream is lost."""
        return self._reconnector.attempts

    @property
    def reconnects(self) -> int:
        """Reconnect attempts made so far."""
        return self._reconnector.reconnects

    @property
    def reconnecting(self) -> bool:
        return self._reconnector.lost

    @property
    def gap_s(self) -> float:
        """Seconds without frames because the stream was lost, summed over reconnects."""
        return self._reconnector.gap_s

    # -- the Source contract ---------------------------------------------------------------
    def open(self) -> StreamInfo:
        if not self.live:
            self._check_file()
        self._connect()
        assert self.info is not None  # _connect() sets it or raises
        return self.info

    def frames(self) -> Iterator[Frame]:
        index = 0
        last_pts: int | None = None
        pts_offset = 0
        step = self._pts_step()
        while True:
            try:
                for picture in self._pictures():
                    if self.max_frames is not None and index >= self.max_frames:
                        return
                    if picture.is_corrupt:
                        self.corrupt_frames += 1
                    pts = picture.pts
                    if pts is None:
                        pts = (last_pts + step) if last_pts is not None else 0
                    pts += pts_offset
                    if last_pts is not None and pts <= last_pts:
                        if not self.live:
                            pts = last_pts + step  # keep the writer's timestamps increasing
                        else:  # a reconnect restarted the clock: continue after the last one
                            pts_offset += last_pts + step - pts
                            pts = last_pts + step
                    picture.pts = pts
                    last_pts = pts
                    if self.rotation:
                        picture = upright(picture, self.rotation)
                    self._reconnector.got_frame()
                    index += 1
                    self.frames_decoded = index
                    yield Frame.from_av(picture, index - 1)
                if (self.live and not self._finite and not self._stop.is_set()
                        and self._reconnector.attempts):
                    # A live stream has no end: the server hung up, so connect again; with
                    # no attempt left, the stream is lost for good (an error, not an end).
                    raise SourceError(f"{self.display}: the stream ended", source=self.display)
                break
            except _LOST as e:
                if self._stop.is_set():
                    return  # stopped: a read cut short by the stop is no error
                if isinstance(e, InputError):
                    raise  # e.g. past the decode-error budget
                if not self.live:
                    if index == 0:
                        raise CorruptInputError(
                            f"{self.display}: not a readable video: {describe_error(e)}",
                            source=self.display,
                        ) from e
                    # The file cannot be read past here: it ends early, keep what was decoded.
                    self.ended_early = f"unreadable after frame {index - 1}: {describe_error(e)}"
                    return
                if self._reconnector.exhausted:
                    if isinstance(e, SourceError) and self.reconnects:
                        raise type(e)(
                            f"{self.display}: stream lost after {self.reconnects} reconnect "
                            f"attempts: {self._reconnector.cause(e)}",
                            source=self.display, param=e.param) from e
                    if isinstance(e, SourceError):
                        raise
                    raise SourceError(
                        f"{self.display}: stream lost: {describe_error(e)}", source=self.display
                    ) from e
                if not self._reconnector.reconnect(e, self._release, self._connect):
                    return  # stopped while waiting to reconnect
        if index == 0:
            raise EmptyInputError(
                f"{self.display}: no frame could be decoded"
                + (f" ({self.decode_errors} decode errors)" if self.decode_errors else ""),
                source=self.display,
            )
        self._check_complete(index)

    def stop(self) -> None:
        """Stop reading soon (safe from any thread): waits end, reconnects are not tried."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        self._release()

    def __enter__(self) -> VideoSource:
        self.open()
        return self

    def describe(self) -> dict[str, Any]:
        return {
            "source": {
                "frames_decoded": self.frames_decoded,
                "decode_errors": self.decode_errors,
                "corrupt_frames": self.corrupt_frames,
                "reconnects": self.reconnects,
                "reconnect_gap_s": round(self.gap_s, 3),
                "ended_early": self.ended_early,
            }
        }

    # -- opening ---------------------------------------------------------------------------
    def _check_file(self) -> None:
        path = Path(self.uri)
        if not path.exists():
            raise InputNotFoundError(f"{self.display}: no such file", source=self.display)
        if path.is_dir():
            raise InputError(f"{self.display}: is a directory, not a video", source=self.display)
        if path.stat().st_size == 0:
            raise EmptyInputError(f"{self.display}: file is empty", source=self.display)
        if not os.access(path, os.R_OK):
            raise InputError(f"{self.display}: permission denied", source=self.display)

    def _connect(self) -> None:
        kwargs: dict[str, Any] = {"metadata_errors": "replace"}
        options = dict(self.options)
        # FFmpeg's own cap, applied by the decoder that probes the stream while the file
        # opens: without it a header claiming 16000x16000 costs a gigabyte before
        # _check_size can refuse it. (A decoder that meets a frame over the cap fails it.)
        options.setdefault("max_pixels", str(min(self.max_pixels, _INT_MAX)))
        if self.live:
            # Without a read timeout a stalled server blocks the thread, and Ctrl-C with it.
            kwargs["timeout"] = (self.open_timeout, self.stall_timeout)
            if self.uri.startswith("rtsp"):
                options.setdefault("rtsp_transport", "tcp")
                options.setdefault("timeout", str(int(self.stall_timeout * 1_000_000)))
        if self.format:
            kwargs["format"] = self.format
        if options:
            kwargs["options"] = options
        try:
            container = av.open(self.uri, **kwargs)
        except READ_ERRORS as e:
            if self.live and isinstance(e, av.ExitError):  # the open timeout fired
                raise StallError(
                    f"{self.display}: cannot open: no answer within {self.open_timeout:g} s",
                    source=self.display,
                ) from e
            raise self._unreadable(e) from e
        try:
            self._setup(container)
        except VidstreamError:
            container.close()
            raise
        except READ_ERRORS as e:  # the first packets could not be read
            container.close()
            raise self._unreadable(e) from e
        except BaseException:
            container.close()
            raise

    def _unreadable(self, e: BaseException) -> VidstreamError:
        if self.live:
            return SourceError(f"{self.display}: cannot open: {describe_error(e)}",
                               source=self.display)
        return CorruptInputError(f"{self.display}: not a readable video: {describe_error(e)}",
                                 source=self.display)

    def _setup(self, container: Any) -> None:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise NoVideoStreamError(
                f"{self.display}: no video stream (streams: {', '.join(kinds)})",
                source=self.display,
            )
        stream = container.streams.video[0]
        if stream.codec_context is None:  # a damaged or unknown codec description
            raise CorruptInputError(
                f"{self.display}: not a readable video: the video stream's codec is unknown "
                "or its description is damaged",
                source=self.display,
            )
        stream.thread_type = "AUTO"
        if self.threads:
            stream.codec_context.thread_count = self.threads
        # Before decoding anything: a hostile header must not make us allocate gigabytes.
        self._check_size(stream.codec_context.width, stream.codec_context.height)
        self._container, self._stream = container, stream
        self._format = container.format.name or ""
        # A resource of known size (a file, also one served over HTTP) ends when it ends.
        self._finite = (getattr(container, "size", -1) or -1) > 0
        self._packets = None
        self._first = None
        try:
            self._first = next(self._decode_pictures())
        except StopIteration:
            self._first = None
        if self._first is None:
            self._release()
            if self.live:  # connected, but the stream ended at once: worth another attempt
                raise SourceError(f"{self.display}: the stream ended before its first frame",
                                  source=self.display)
            raise EmptyInputError(
                f"{self.display}: no frame could be decoded"
                + (f" ({self.decode_errors} decode errors)" if self.decode_errors else "")
                + "; the file may be truncated or damaged",
                source=self.display,
            )
        self._check_size(self._first.width, self._first.height)
        if self.info is None:
            # Phones store portrait video as landscape pictures plus a display matrix: the
            # frames are turned upright here, so the model sees people standing and the
            # output (which carries no matrix) plays as the input does.
            self.rotation = _quarter_turns(self._first) * 90
            self.info = self._stream_info(container, stream, self._first)

    def _check_size(self, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise FrameTooLargeError(
                f"{self.display}: frame size {width}x{height} exceeds the limit of "
                f"{self.max_pixels} pixels",
                source=self.display, param="max_pixels",
            )

    def _stream_info(self, container: Any, stream: Any, first: Any) -> StreamInfo:
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        tb = stream.time_base or first.time_base
        duration = None
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        frames = stream.frames or None
        if frames is None and duration and rate and not self.live:
            frames = round(duration * rate)
        if self.max_frames is not None and frames is not None:
            frames = min(frames, self.max_frames)
        width, height = first.width, first.height
        if self.rotation % 180:
            width, height = height, width
        return StreamInfo(
            uri=self.display,
            width=width,
            height=height,
            rate=Fraction(rate) if rate else None,
            time_base=Fraction(tb) if tb else None,
            frames=frames if not self.live else None,
            duration_s=duration if not self.live else None,
            codec=stream.codec_context.name,
            live=self.live,
            path=None if self.live else self.uri,
            has_audio=bool(container.streams.audio),
        )

    # -- reading ---------------------------------------------------------------------------
    def _pictures(self) -> Iterator[Any]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._decode_pictures()

    def _decode_pictures(self) -> Iterator[Any]:
        """Decoded pictures; isolated bad packets are counted and skipped."""
        stream = self._stream
        failures_in_a_row = 0
        watchdog = self._watchdog
        watchdog.restart()
        pacer = Pacer(self._sleep) if self.realtime else None
        while True:
            if self._packets is None:
                self._packets = iter(self._container.demux(stream))
            t_read = time.perf_counter()
            try:
                packet = next(self._packets)
            except StopIteration:
                return
            except av.ExitError as e:  # FFmpeg's read timeout fired
                raise watchdog.read_timed_out() from e
            except (av.FFmpegError, IndexError) as e:
                if self.live:
                    raise  # frames() reconnects
                self._count_error(e)
                failures_in_a_row += 1
                if failures_in_a_row >= 3:
                    return  # the input ends inside a damaged region
                self._packets = None  # demuxing resumes after the damaged region
                continue
            finally:
                if self.live:  # a live stream's reads wait for the sender, not for us
                    self.wait_s += time.perf_counter() - t_read
            failures_in_a_row = 0
            try:
                pictures = packet.decode()
            except (av.FFmpegError, ValueError) as e:
                self._count_error(e)
                pictures = []
            now = time.monotonic()
            if not pictures:
                if self.live:
                    watchdog.check(now)
                continue
            watchdog.got_picture(now)
            for picture in pictures:
                if pacer is not None:
                    self.wait_s += pacer.wait(picture.time)
                yield picture

    def _count_error(self, e: BaseException) -> None:
        self.decode_errors += 1
        if self.decode_errors > self.max_decode_errors:
            raise CorruptInputError(
                f"{self.display}: more than {self.max_decode_errors} decode errors "
                f"(last: {describe_error(e)})",
                source=self.display, param="max_decode_errors",
            ) from e

    def _pts_step(self) -> int:
        info = self.info
        if info and info.rate and info.time_base:
            return max(1, round(1 / (info.rate * info.time_base)))
        return 1

    def _check_complete(self, decoded: int) -> None:
        info = self.info
        if self.ended_early:
            return
        if self.live:
            # A stream states no length: only damage it delivered can tell (a TCP or HTTP
            # stream cut inside a packet is not seen: FFmpeg drops the partial packet).
            if self.decode_errors:
                self.ended_early = f"{self.decode_errors} packets could not be decoded"
            elif self.corrupt_frames:
                self.ended_early = (f"{self.corrupt_frames} frames are damaged (concealed by "
                                    "the decoder)")
            return
        if self.max_frames is not None and decoded >= self.max_frames:
            return  # stopped on purpose before the end: nothing to tell
        self.ended_early = incomplete(
            self.uri, self._format, stated_frames=info.frames if info else None,
            decoded=decoded, decode_errors=self.decode_errors,
            corrupt_frames=self.corrupt_frames,
        )

    def _release(self) -> None:
        container, self._container = self._container, None
        self._packets = None
        self._first = None
        if container is not None:
            try:
                container.close()
            except Exception:
                pass  # closing a broken connection may fail too; it is released either way


def _quarter_turns(picture: Any) -> int:
    """The display matrix's rotation as counter-clockwise quarter turns (0-3).

    Angles that are not a multiple of 90 degrees are rounded to the nearest quarter turn;
    mirroring in the matrix is not applied.
    """
    try:
        angle = picture.rotation or 0
    except (AttributeError, ValueError, TypeError):
        return 0
    return round(angle / 90) % 4


def upright(picture: Any, degrees: int) -> Any:
    """``picture`` turned ``degrees`` (a multiple of 90) counter-clockwise, with its timing.

    4:2:0 pictures are turned plane by plane (no colour conversion); others through RGB.
    """
    turns = (degrees // 90) % 4
    if not turns:
        return picture
    w, h = picture.width, picture.height
    if picture.format.name == "yuv420p" and w % 2 == 0 and h % 2 == 0:
        packed = picture.to_ndarray()  # Y rows, then U and V, each (h/2, w/2), flattened
        y = packed[:h]
        chroma = packed[h:].reshape(2, h // 2, w // 2)
        planes = [np.rot90(y, turns), np.rot90(chroma[0], turns), np.rot90(chroma[1], turns)]
        nw, nh = planes[0].shape[1], planes[0].shape[0]
        data = np.concatenate([p.ravel() for p in planes]).reshape(nh * 3 // 2, nw)
        turned = av.VideoFrame.from_ndarray(data, format="yuv420p")
    else:
        rgb = np.rot90(picture.to_ndarray(format="rgb24"), turns)
        turned = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    turned.pts = picture.pts
    turned.time_base = picture.time_base
    return turned

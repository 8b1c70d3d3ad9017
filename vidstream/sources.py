"""Decoder stage: frames from a file, a network stream or a camera, decoded by PyAV.

>>> with VideoSource("clip.mp4") as src:              # open() now, close() on exit
...     print(src.info.width, src.info.height, src.info.rate)
...     times = [frame.time for frame in src.frames()]
640 360 30000/1001
>>> len(times), round(times[1], 4)
(12, 0.0334)

Library errors are translated here, at the boundary, into one-line :mod:`vidstream.errors`
that name the input and the cause. PyAV raises more than ``av.FFmpegError`` on bad input
(``UnicodeDecodeError`` from metadata, ``IndexError`` from a corrupt MPEG-TS demux), so those
are caught too.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from .errors import (
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
from .frames import Frame, StreamInfo
from .stage import Source

LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")
DEFAULT_MAX_PIXELS = 8192 * 4320  # 8K; a hostile header cannot make us allocate more
DEFAULT_MAX_DECODE_ERRORS = 100

log = logging.getLogger("vidstream")

# Errors PyAV raises on broken input besides its own FFmpegError family.
_READ_ERRORS = (av.FFmpegError, OSError, UnicodeDecodeError, IndexError, ValueError, EOFError)

_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<cred>[^/@\s]+)@")


def mask_credentials(uri: str) -> str:
    """``rtsp://user:secret@host/x`` -> ``rtsp://***@host/x``; anything else unchanged.

    >>> mask_credentials("rtsp://admin:hunter2@10.0.0.5/stream")
    'rtsp://***@10.0.0.5/stream'
    """
    return _CREDENTIALS.sub(r"\g<scheme>***@", str(uri))


def is_live(uri: str) -> bool:
    """True for network URLs and capture devices, which never end and must not fall behind."""
    uri = str(uri)
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    return scheme in LIVE_SCHEMES or uri.startswith("/dev/video")


def _describe(e: BaseException) -> str:
    text = " ".join(str(e).split())
    # FFmpeg messages repeat the path: "[Errno 1094995529] Invalid data ...: 'x.mp4'"
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    text = re.sub(r":\s*'[^']*'$", "", text)
    if isinstance(e, UnicodeDecodeError):
        return "corrupt metadata"
    if isinstance(e, IndexError):
        return "corrupt container"
    return text or type(e).__name__


class VideoSource(Source):
    """Decodes a video file, URL or camera into :class:`~vidstream.frames.Frame` objects.

    Files are read to the end and nothing is dropped. Live sources (network URLs, ``/dev/video*``)
    are opened with read timeouts, reconnect up to ``reconnect`` times with backoff, and raise
    :class:`~vidstream.errors.StallError` when no frame arrives for ``stall_timeout`` seconds.
    """

    name = "decode"

    def __init__(
        self,
        uri: str | os.PathLike,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_decode_errors: int = DEFAULT_MAX_DECODE_ERRORS,
        max_frames: int | None = None,
        threads: int = 0,
        live: bool | None = None,
        format: str | None = None,
        options: dict[str, str] | None = None,
        open_timeout: float = 10.0,
        stall_timeout: float = 10.0,
        reconnect: int = 0,
        reconnect_delay: float = 1.0,
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
        self.reconnect = reconnect
        self.reconnect_delay = reconnect_delay
        self.realtime = realtime
        self._stop = threading.Event()
        # Waits (backoff, real-time pacing) end at once when the source is stopped.
        self._sleep = sleep or self._stop.wait
        self.decode_errors = 0
        self.wait_s = 0.0  # waiting for a live sender or for --realtime pacing: not work
        self.corrupt_frames = 0
        self.frames_decoded = 0
        self.reconnects = 0
        self.gap_s = 0.0
        self.ended_early: str | None = None
        self.info: StreamInfo | None = None
        self._container: Any = None
        self._stream: Any = None
        self._first: Any = None  # first decoded picture, read in open() to fail fast
        self._packets: Iterator[Any] | None = None
        self._format = ""
        self._finite = not self.live
        self._last_frame_at: float | None = None
        self._lost_at: float | None = None

    # -- stage interface -------------------------------------------------------------------
    def open(self) -> StreamInfo:
        if not self.live:
            self._check_file()
        self._connect()
        return self.info  # type: ignore[return-value]

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
                    self._got_frame()
                    index += 1
                    self.frames_decoded = index
                    yield Frame.from_av(picture, index - 1)
                if (self.live and not self._finite and self.reconnects < self.reconnect
                        and not self._stop.is_set()):
                    # A live stream has no end: the server hung up, so connect again.
                    raise SourceError(f"{self.display}: the stream ended", source=self.display)
                break
            except (SourceError, *_READ_ERRORS) as e:
                if self._stop.is_set():
                    return  # stopped: a read cut short by the stop is no error
                if isinstance(e, InputError):
                    raise  # e.g. past the decode-error budget
                if not self.live:
                    if index == 0:
                        raise CorruptInputError(
                            f"{self.display}: not a readable video: {_describe(e)}",
                            source=self.display,
                        ) from e
                    # The file cannot be read past here: it ends early, keep what was decoded.
                    self.ended_early = f"unreadable after frame {index - 1}: {_describe(e)}"
                    return
                if self.reconnects >= self.reconnect:
                    if isinstance(e, SourceError):
                        raise
                    raise SourceError(
                        f"{self.display}: stream lost: {_describe(e)}", source=self.display
                    ) from e
                if not self._reconnect(e):
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

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> dict:
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
        if self.live:
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
        except _READ_ERRORS as e:
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
        except _READ_ERRORS as e:  # the first packets could not be read
            container.close()
            raise self._unreadable(e) from e
        except BaseException:
            container.close()
            raise

    def _unreadable(self, e: BaseException) -> VidstreamError:
        if self.live:
            return SourceError(f"{self.display}: cannot open: {_describe(e)}",
                               source=self.display)
        return CorruptInputError(f"{self.display}: not a readable video: {_describe(e)}",
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
            self.info = self._stream_info(container, stream, self._first)

    def _check_size(self, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise FrameTooLargeError(
                f"{self.display}: frame size {width}x{height} exceeds the limit of "
                f"{self.max_pixels} pixels (see --max-pixels)",
                source=self.display,
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
        return StreamInfo(
            uri=self.display,
            width=first.width,
            height=first.height,
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
        t_picture = time.monotonic()
        t_start: float | None = None
        pts0 = 0.0
        while True:
            if self._packets is None:
                self._packets = iter(self._container.demux(stream))
            t_read = time.perf_counter()
            try:
                packet = next(self._packets)
            except StopIteration:
                return
            except av.ExitError as e:  # FFmpeg's read timeout fired
                raise StallError(
                    f"{self.display}: no frame for {self.stall_timeout:g} s (--stall-timeout)",
                    source=self.display,
                ) from e
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
                if self.live and self.stall_timeout and now - t_picture > self.stall_timeout:
                    raise StallError(
                        f"{self.display}: no decodable frame for {self.stall_timeout:g} s "
                        "(--stall-timeout)",
                        source=self.display,
                    )
                continue
            t_picture = now
            for picture in pictures:
                if self.realtime and picture.time is not None:
                    if t_start is None:
                        t_start, pts0 = time.monotonic(), picture.time
                    ahead = (picture.time - pts0) - (time.monotonic() - t_start)
                    if ahead > 0:
                        self._sleep(ahead)
                        self.wait_s += ahead
                yield picture

    def _count_error(self, e: BaseException) -> None:
        self.decode_errors += 1
        if self.decode_errors > self.max_decode_errors:
            raise CorruptInputError(
                f"{self.display}: more than {self.max_decode_errors} decode errors "
                f"(last: {_describe(e)}); see --max-decode-errors",
                source=self.display,
            ) from e

    def _pts_step(self) -> int:
        info = self.info
        if info and info.rate and info.time_base:
            return max(1, round(1 / (info.rate * info.time_base)))
        return 1

    def _check_complete(self, decoded: int) -> None:
        info = self.info
        if self.ended_early or self.live:
            return
        if self.max_frames is not None and decoded >= self.max_frames:
            return
        # Transport streams and fragmented MP4 state no frame count; a cut file is told by
        # its last packet or box running past the end of the file.
        truncated = _truncated(Path(self.uri), self._format)
        if truncated:
            self.ended_early = truncated
        elif info and info.frames and decoded < info.frames:
            self.ended_early = f"the input states {info.frames} frames; {decoded} were decoded"
        elif self.decode_errors:
            self.ended_early = f"{self.decode_errors} packets could not be decoded"
        elif self.corrupt_frames:
            self.ended_early = (
                f"{self.corrupt_frames} frames are damaged (concealed by the decoder)"
            )

    # -- live ------------------------------------------------------------------------------
    def _reconnect(self, cause: BaseException) -> bool:
        """Connect again with backoff; False if stopped meanwhile, raises when attempts run out."""
        if self._lost_at is None:
            # A stall is noticed stall_timeout after the last data came in (frames the demuxer
            # held back come out only then); a drop is noticed when it happens.
            stalled = self.stall_timeout if isinstance(cause, StallError) else 0.0
            self._lost_at = time.monotonic() - stalled
        while self.reconnects < self.reconnect and not self._stop.is_set():
            self.reconnects += 1
            delay = self.reconnect_delay * (2 ** (self.reconnects - 1))
            delay = min(delay, 30.0) * random.uniform(0.8, 1.2)  # jitter: cameras reboot together
            log.warning("%s: %s; reconnecting in %.1f s (attempt %d of %d)", self.display,
                        self._cause(cause), delay, self.reconnects, self.reconnect)
            self._release()
            self._sleep(delay)
            if self._stop.is_set():
                break
            try:
                self._connect()
                return True
            except SourceError as e:
                cause = e
        if self._stop.is_set():
            return False
        raise SourceError(
            f"{self.display}: stream lost after {self.reconnects} reconnect attempts: "
            f"{self._cause(cause)}",
            source=self.display,
        ) from cause

    def _cause(self, e: BaseException) -> str:
        """``e`` in words, without the source name our own errors start with."""
        text = _describe(e)
        prefix = f"{self.display}: "
        return text[len(prefix):] if text.startswith(prefix) else text

    def _got_frame(self) -> None:
        now = time.monotonic()
        if self._lost_at is not None:  # the first frame after a reconnect closes the gap
            gap = now - self._lost_at
            self.gap_s += gap
            self._lost_at = None
            log.warning("%s: reconnected; no frames for %.1f s", self.display, gap)
        self._last_frame_at = now

    def _release(self) -> None:
        container, self._container = self._container, None
        self._packets = None
        self._first = None
        if container is not None:
            try:
                container.close()
            except Exception:
                pass


def _truncated(path: Path, format_name: str) -> str | None:
    """How a file is cut short or broken (``"the file is truncated: it ends inside a 'moof'
    box"``), or None when its structure ends cleanly at its last byte."""
    formats = set(format_name.split(","))
    try:
        with path.open("rb") as fh:
            if "mpegts" in formats:
                return _ts_truncated(fh, path.stat().st_size)
            if "mp4" in formats or "mov" in formats:
                return _mp4_truncated(fh, path.stat().st_size)
    except OSError:
        pass
    return None


def _ts_truncated(fh: Any, size: int) -> str | None:
    head = fh.read(3 * 204 + 4)
    # 188-byte packets; 192 (M2TS: a 4-byte timestamp first); 204 (with Reed-Solomon bytes)
    for packet, sync in ((188, 0), (192, 4), (204, 0)):
        if all(len(head) > sync + k * packet and head[sync + k * packet] == 0x47
               for k in range(3)):
            if size % packet:
                return "the file is truncated: it ends inside a transport-stream packet"
            return None
    return None


def _mp4_truncated(fh: Any, size: int) -> str | None:
    offset = 0
    while offset < size:  # top-level boxes: 32-bit size + type, or size 1 + 64-bit size
        fh.seek(offset)
        header = fh.read(16)
        if len(header) < 8:
            return "the file is truncated: it ends inside a box header"
        box_size, kind = int.from_bytes(header[:4], "big"), header[4:8]
        if not all(32 <= c < 127 for c in kind):  # a box type is four printable characters
            return None  # damaged, not cut: the frame count and decode errors will tell
        name = kind.decode("ascii")
        if box_size == 1:
            if len(header) < 16:
                return f"the file is truncated: it ends inside the header of a {name!r} box"
            box_size = int.from_bytes(header[8:16], "big")
        elif box_size == 0:
            return None  # the last box runs to the end of the file by definition
        if box_size < 8:
            return None
        if offset + box_size > size:
            return f"the file is truncated: it ends inside a {name!r} box"
        offset += box_size
    return None


class ArraySource(Source):
    """Frames from numpy arrays (``(H, W, 3)`` or ``(1, H, W, 3)`` RGB uint8).

    >>> import numpy as np
    >>> src = ArraySource([np.zeros((4, 6, 3), np.uint8)] * 3, rate=25)
    >>> info = src.open(); [f.index for f in src.frames()], info.width, info.height
    ([0, 1, 2], 6, 4)
    """

    name = "decode"

    def __init__(self, images: Any, rate: float | Fraction = 30, frames: int | None = None):
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
            duration_s=self.count / self.rate if self.count else None,
        )

    def frames(self) -> Iterator[Frame]:
        assert self._iter is not None, "open() first"
        first, self._first = self._first, None
        images = [first] if first is not None else []
        for index, image in enumerate(_chain(images, self._iter)):
            yield Frame.from_array(np.asarray(image), index, index, self.time_base)

    def close(self) -> None:
        self._iter = None

    def __enter__(self) -> ArraySource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _len_or_none(obj: Any) -> int | None:
    try:
        return len(obj)
    except TypeError:
        return None


def _chain(first: list, rest: Iterator[Any]) -> Iterator[Any]:
    yield from first
    yield from rest

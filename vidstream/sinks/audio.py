"""The input's audio, copied into the output packet for packet (a remux, no re-encode).

Audio never costs the video: an input whose audio cannot be read, or a packet that cannot be
written, is a warning on the ``vidstream`` logger (once per copier: the first cause) and a
count in :meth:`AudioCopier.to_dict`, and the video goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import av

from ..sources.failures import READ_ERRORS, describe_error

log = logging.getLogger("vidstream")

# What muxing a packet raises when it cannot be written (bad timestamps, a full disk).
_WRITE_ERRORS = (av.FFmpegError, OSError, ValueError)


class AudioCopier:
    """Copies the input's first audio stream into ``output``, packet for packet.

    It reads the input a second time, for audio only, and keeps pace with the video: before
    a video frame at time ``t`` is written, the audio up to ``t`` is. On close it copies up to
    the end of the last video frame, so a partial output stays in sync.

    Made before the output's first packet (its stream must be in the header). It never
    raises for the input's sake: ``packets`` counts what was copied, ``errors`` what failed,
    ``error`` says the first failure in words.
    """

    def __init__(self, input_path: str, output: Any) -> None:
        self.input_path = str(input_path)
        self.packets = 0
        self.errors = 0
        self.error: str | None = None
        self.stream: Any = None
        self._output = output
        self._input: Any = None
        self._packets: Iterator[Any] = iter(())
        self._pending: Any = None
        try:
            self._input = av.open(self.input_path, metadata_errors="replace")
            in_stream = self._input.streams.audio[0]
            self.stream = output.add_stream_from_template(in_stream)
            self._packets = iter(self._input.demux(in_stream))
        except READ_ERRORS as e:
            self._packets = iter(())
            self.close()
            self._failed(e, "cannot read the input's audio", "the output has no audio")

    def copy_until(self, t: float | None) -> None:
        """Copy the packets that start before ``t`` seconds (None: all the rest)."""
        while True:
            packet = self._pending
            self._pending = None
            if packet is None:
                try:
                    packet = next(self._packets)
                except StopIteration:
                    self._packets = iter(())
                    return
                except READ_ERRORS as e:
                    # The demuxer cannot be trusted past a failure: the audio ends here.
                    self._packets = iter(())
                    self._failed(e, f"the audio is unreadable after {self.packets} packets",
                                 "the output's audio ends there")
                    return
            if packet.dts is None or packet.size == 0:
                continue  # the demuxer's flush packet
            if t is not None and packet.pts is not None and packet.time_base is not None and (
                float(packet.pts * packet.time_base) >= t
            ):
                self._pending = packet
                return
            packet.stream = self.stream
            try:
                self._output.mux(packet)
            except _WRITE_ERRORS as e:
                # One bad packet (damaged timestamps) is skipped; the audio goes on.
                self._failed(e, "an audio packet could not be written",
                             "it is skipped, and later failures are only counted")
                continue
            self.packets += 1

    def to_dict(self) -> dict[str, Any]:
        """The counters, for the run summary."""
        return {"packets": self.packets, "errors": self.errors, "error": self.error}

    def close(self) -> None:
        container, self._input = self._input, None
        self._pending = None
        if container is not None:
            container.close()

    def _failed(self, e: BaseException, what: str, consequence: str) -> None:
        self.errors += 1
        if self.error is None:  # warn once: a broken stream would repeat the same cause
            self.error = f"{what}: {describe_error(e)}"
            log.warning("%s: %s; %s", self.input_path, self.error, consequence)

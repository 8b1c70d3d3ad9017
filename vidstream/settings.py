"""Every default of vidstream, in one place.

The API's signatures, the pipeline files and the command line's flags (and their ``--help``)
all take their defaults from :data:`DEFAULTS`, so changing one here changes it everywhere:

>>> DEFAULTS.threshold, DEFAULTS.queue_size, DEFAULTS.preset
(0.4, 8, 'veryfast')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """The defaults of a run: model, detector, input, output, engine and display."""

    # model and detector
    model: str = "centernet"
    threshold: float = 0.4
    batch_size: int = 1
    batch_wait_ms: float = 10.0  # batch > 1: after a batch's first frame, wait this long for more
    device: str = "auto"
    backend: str = "auto"
    # input
    max_pixels: int = 8192 * 4320  # 8K; a hostile header cannot make us allocate more
    max_decode_errors: int = 100
    decoder_threads: int = 0  # 0: FFmpeg's choice
    reconnect: int = 0
    reconnect_delay: float = 1.0  # seconds; doubles on each attempt, with jitter
    reconnect_delay_max: float = 30.0
    stall_timeout: float = 10.0  # seconds without a frame before a live source is lost
    open_timeout: float = 10.0
    # video output
    codec: str = "libx264"
    preset: str = "veryfast"  # measured: ~44 fps at 1080p on 2 cores (ultrafast ~96, medium ~19)
    fragment_s: float = 1.0  # a fragmented output is cut at least this often
    # engine
    queue_size: int = 8
    shutdown_timeout: float = 5.0  # how long abort() waits for a stage stuck in a call
    source_grace_s: float = 1.0  # after stop(): how long to wait for a source stuck in a read
    # display
    progress_interval: float = 5.0
    # metrics (Prometheus): loopback only unless asked, the endpoint has no authentication
    metrics_host: str = "127.0.0.1"


DEFAULTS = Settings()

#: The choices of the settings that take one of a few words.
DEVICES = ("auto", "cpu", "gpu")
BACKENDS = ("auto", "tf", "tflite")

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
    # A queue holds whole frames (a 1080p RGB frame is 6 MB): 256 of them are about 1.5 GiB
    # per queue, more than any real pipeline needs; a larger setting is refused, not obeyed.
    max_queue_size: int = 256
    shutdown_timeout: float = 5.0  # how long abort() waits for a stage stuck in a call
    source_grace_s: float = 1.0  # after stop(): how long to wait for a source stuck in a read
    # clusters
    retries: int = 1  # times a video whose worker was lost runs again
    cpus_per_task: float = 1.0  # what each video's task reserves on the cluster
    gpus_per_task: float = 0.0
    # live inputs share a task: one multi-stream process (a Ray actor) per this many cameras,
    # so they share one loaded model and form batches together
    streams_per_task: int = 8
    group_stop_s: float = 15.0  # Ctrl-C: how long a camera group may take to finalize its outputs
    # display
    progress_interval: float = 5.0
    # tracking (ByteTrack, fitted to the default detector: see vidstream.tracking)
    track_floor: float = 0.1  # lowest score a tracker sees (its second association)
    track_activation: float | None = None  # None: the detector's threshold
    track_buffer_s: float = 1.0  # how long a lost track may be found again (stream time)
    track_min_iou: float = 0.2  # least IoU to match a track's prediction and a detection
    track_min_frames: int = 3  # consecutive matched frames before a track gets an id
    # counting (lines and zones)
    count_anchor: str = "center"  # the point of a box that crosses: center or bottom
    count_margin: float = 0.15  # hysteresis: how far past a line, in box sizes across it
    # cost: a run with neither --instance nor --price-per-hour is priced at this catalog
    # instance's rate (a current 2-vCPU compute-optimised type, the size of the machine the
    # project is built on), and says so
    reference_instance: str = "c7i.large"
    # metrics (Prometheus): loopback only unless asked, the endpoint has no authentication
    metrics_host: str = "127.0.0.1"
    # remote inference (triton:// and tfserving:// models; vidstream serve)
    remote_timeout: float = 10.0  # seconds per call, retries on an unavailable server included
    remote_inflight: int = 4  # requests one client keeps in flight, so the server can batch
    remote_probe_s: float = 1.0  # with a fallback: how often a down server is tried again
    # a client of a shared server pays its share of the accelerator instance: "auto" is its
    # fraction of the server's inferences over the run, or a fixed fraction such as "0.25"
    accelerator_share: str = "auto"
    serve_host: str = "127.0.0.1"  # anything else is reachable by others: no authentication
    serve_grpc_port: int = 8001
    serve_http_port: int = 8000
    serve_metrics_port: int = 8002
    serve_max_batch: int = 32
    serve_max_queue_delay_ms: float = 5.0
    serve_instances: int = 1
    serve_backend: str = "auto"  # TF Lite where the model has it and the server has no GPU


DEFAULTS = Settings()

#: The choices of the settings that take one of a few words.
DEVICES = ("auto", "cpu", "gpu")
BACKENDS = ("auto", "tf", "tflite")
ANCHORS = ("center", "bottom")

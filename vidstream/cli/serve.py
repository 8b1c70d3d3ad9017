"""``vidstream serve``: host a model on Triton for other vidstream processes to share.

    vidstream serve                                  # centernet on 127.0.0.1:8001
    vidstream detect clip.mp4 --model triton://127.0.0.1:8001/centernet

The first run creates the server's own environment (once, a few minutes) under the cache.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from ..serve._server import SERVE_BACKENDS
from ..settings import DEFAULTS
from .common import EXIT_ERROR, EXIT_INTERRUPTED, Formatter, flag_names, positive_int


def add_commands(sub: Any) -> None:
    """Register ``serve``."""
    d = DEFAULTS
    p = sub.add_parser(
        "serve", help="host a model on a Triton server that many clients share",
        formatter_class=Formatter,
        description=(
            "Start a Triton Inference Server hosting MODEL with dynamic batching: requests "
            "from every client arriving within --max-queue-delay-ms run as one batch. "
            "Clients use the printed endpoint as their model: --model triton://HOST:PORT/NAME."
            " The server runs in its own environment under the vidstream cache, created on "
            "first use. Stop it with Ctrl-C or SIGTERM."),
    )
    p.add_argument("--model", default=d.model, metavar="NAME|PATH",
                   help="a known model or a SavedModel directory (Object Detection API "
                   "signature). Models are code: serve only ones you trust")
    p.add_argument("--name", help="the name clients use (default: the model's)")
    p.add_argument("--host", default=d.serve_host,
                   help="address to listen on. Anything but loopback lets other machines "
                   "in: the server has no authentication")
    p.add_argument("--port", type=positive_int, default=d.serve_grpc_port,
                   help="gRPC port (the endpoint clients use)")
    p.add_argument("--http-port", type=positive_int, default=d.serve_http_port,
                   help="HTTP port (/v2/health/ready)")
    p.add_argument("--metrics-port", type=positive_int, default=d.serve_metrics_port,
                   help="Prometheus metrics port (/metrics)")
    p.add_argument("--max-batch", type=positive_int, default=d.serve_max_batch,
                   help="largest batch the server forms")
    p.add_argument("--max-queue-delay-ms", type=float, default=d.serve_max_queue_delay_ms,
                   help="how long a request may wait for others to join its batch")
    p.add_argument("--instances", type=positive_int, default=d.serve_instances,
                   help="model instances executing batches at once")
    p.add_argument("--backend", choices=SERVE_BACKENDS, default=DEFAULTS.serve_backend,
                   help="what runs the model: tf (TensorFlow), tflite (the TF Lite network a "
                   "converted default model has, XNNPACK on the CPU: much faster there), or "
                   "auto: tflite when the model has one and the server sees no GPU")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="TF Lite threads per instance (default: the server's CPU count)")
    p.add_argument("--startup-timeout", type=float, default=300.0,
                   help="seconds to wait for the server to be ready")
    p.set_defaults(func=cmd_serve, flags=flag_names(
        p, grpc_port="--port", max_queue_delay_ms="--max-queue-delay-ms"))


def cmd_serve(args: argparse.Namespace) -> int:
    from ..serve import ServeConfig, Server, describe, model_for_serving

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    path, name = model_for_serving(args.model, progress=say)
    config = ServeConfig(
        model=path, name=args.name or name, host=args.host, grpc_port=args.port,
        http_port=args.http_port, metrics_port=args.metrics_port, max_batch=args.max_batch,
        max_queue_delay_ms=args.max_queue_delay_ms, instances=args.instances,
        backend=args.backend, threads=args.threads)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    server = Server(config, progress=say)
    try:
        server.start(timeout=args.startup_timeout)
        info = describe(server)
        say(f"serve: ready in {server.start_s:.1f} s; health {info['ready']}, "
            f"metrics {info['metrics']}")
        say(f"serve: backend {info['backend']} ({info['backend_detail']})")
        print(info["endpoint"], flush=True)  # stdout: the one thing a script needs
        say(f"serve: clients: vidstream detect INPUT --model {info['endpoint']}")
        say("serve: Ctrl-C or SIGTERM stops the server")
        code = server.wait()
        say(f"serve: the server exited with code {code}:\n{server.log_tail()}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        say("serve: stopping")
        server.stop()
        say("serve: stopped")
        return EXIT_INTERRUPTED
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)

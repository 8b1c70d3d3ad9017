"""Remote inference on one machine: the network's overhead, and clients sharing a server.

    python benchmarks/bench_remote.py [--frames 40] [--clients 2,3] [--server-backend tflite]
                                      [--json out.json]

1. Loopback overhead per 512x512 frame: the client's round trip for one letterboxed frame
   minus the server's own time for it (Triton's ``nv_inference_request_duration_us``, queue
   and compute, averaged over the same requests), one request at a time.
2. A local run (one process, the default backend) and N clients (N processes running
   ``vidstream detect --model triton://...`` at once) on one Triton server hosting the same
   model: detections compared with the local run's (same class, IoU >= 0.9), the server's
   mean batch from its metrics, and frames per second, all processes together.
3. The write-up's table redone: the local run priced as one machine (``--client``), each
   client priced as ``--client`` plus its share of ``--accelerator`` (``auto``: its fraction
   of the server's inferences), compared by ``vidstream report``.

Everything runs on this machine, server included: on a CPU-only machine the clients and the
server compete for the same cores, so this measures the mechanism, not a GPU server's gain.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vidstream import EIPredictor, box_iou, models  # noqa: E402
from vidstream.serve import (  # noqa: E402
    SERVE_BACKENDS,
    ServeConfig,
    Server,
    model_for_serving,
)


def detect(clip: Path, model: str, out: Path, batch: int, *price: str
           ) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "vidstream", "detect", str(clip), "--no-video", "--quiet",
         "--model", model, "--batch-size", str(batch), "--detections", str(out.with_suffix(
             ".jsonl")), "--summary", str(out.with_suffix(".json")), *price],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def boxes(path: Path) -> list[list[tuple[int, list[float]]]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [[(d["class_id"], d["box"]) for d in r["detections"]] for r in rows
            if "detections" in r]


def matched(local: list, remote: list) -> tuple[int, int]:
    """(local boxes with a remote box of the same class at IoU >= 0.9, local boxes)."""
    hit = total = 0
    for a, b in zip(local, remote, strict=True):
        for cls, box in a:
            total += 1
            hit += any(c == cls and box_iou(box, other) >= 0.9 for c, other in b)
    return hit, total


def overhead(server: Server, frames: int) -> dict[str, float]:
    """Per request: the client's round trip minus the server's request duration for that
    same request (Triton's cumulative metric read before and after each one)."""
    p = EIPredictor(server.endpoint, warmup=True)
    img = np.random.default_rng(0).integers(0, 255, (1, 512, 512, 3), dtype=np.uint8)
    rt, srv = [], []
    for _ in range(frames):
        before = server.metrics()["nv_inference_request_duration_us"]
        p({"input_tensor": img})
        rt.append(p.backend.stats.last_request_s * 1000)
        srv.append((server.metrics()["nv_inference_request_duration_us"] - before) / 1000)
    over = np.array(rt) - np.array(srv)
    return {"requests": frames, "round_trip_p50_ms": float(np.median(rt)),
            "server_p50_ms": float(np.median(srv)),
            "overhead_p50_ms": float(np.median(over)),
            "overhead_p90_ms": float(np.percentile(over, 90))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--clients", default="2,3")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--port", type=int, default=18201)
    ap.add_argument("--client", default="c7i.large",
                    help="instance each client (and the one local machine) is priced as")
    ap.add_argument("--accelerator", default="g5.xlarge",
                    help="instance the shared server is priced as")
    ap.add_argument("--server-backend", default="auto", choices=SERVE_BACKENDS,
                    help="what runs the model on the server (vidstream serve --backend)")
    ap.add_argument("--json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    clip = work / "traffic.mp4"
    subprocess.run([sys.executable, str(ROOT / "samples/make_clip.py"), str(clip), "--scene",
                    "traffic", "--frames", str(args.frames)], check=True,
                   stdout=subprocess.DEVNULL)
    path, name = model_for_serving("centernet")
    config = ServeConfig(model=path, name=name, grpc_port=args.port,
                         http_port=args.port + 1, metrics_port=args.port + 2,
                         backend=args.server_backend)
    results: dict = {"frames": args.frames, "batch_size": args.batch_size}
    t0 = time.perf_counter()
    local = detect(clip, str(models.path("centernet")), work / "local", args.batch_size,
                   "--instance", args.client)
    assert local.wait() == 0, local.stderr.read() if local.stderr else ""
    local_s = time.perf_counter() - t0
    results["local"] = {"fps": args.frames / local_s, "wall_s": local_s}
    print(f"local, one process: {args.frames / local_s:.1f} fps (wall, load included)")
    ref = boxes(work / "local.jsonl")
    with Server(config, progress=print) as server:
        print(f"server ready in {server.start_s:.1f} s at {server.endpoint}, backend "
              f"{' '.join(server.backend or ('unknown', ''))}")
        results["server_backend"] = server.backend
        results["overhead"] = o = overhead(server, 30)
        print(f"loopback: round trip p50 {o['round_trip_p50_ms']:.1f} ms, server "
              f"{o['server_p50_ms']:.1f} ms per request -> overhead p50 "
              f"{o['overhead_p50_ms']:.1f} ms (p90 {o['overhead_p90_ms']:.1f})")
        for n in [int(c) for c in args.clients.split(",")]:
            before = server.metrics()
            t0 = time.perf_counter()
            procs = [detect(clip, server.endpoint, work / f"remote{n}_{k}", args.batch_size,
                            "--instance", args.client, "--accelerator-instance",
                            args.accelerator) for k in range(n)]
            for proc in procs:
                assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
            wall = time.perf_counter() - t0
            after = server.metrics()
            count = after["nv_inference_count"] - before.get("nv_inference_count", 0)
            execs = after["nv_inference_exec_count"] - before.get("nv_inference_exec_count", 0)
            hit = total = 0
            for k in range(n):
                h, t = matched(ref, boxes(work / f"remote{n}_{k}.jsonl"))
                hit, total = hit + h, total + t
            row = {"clients": n, "aggregate_fps": n * args.frames / wall, "wall_s": wall,
                   "inferences": count, "executions": execs, "mean_batch": count / execs,
                   "boxes_matched": hit, "boxes": total,
                   "matched_share": hit / total if total else 1.0}
            results[f"clients_{n}"] = row
            print(f"{n} clients: {row['aggregate_fps']:.1f} fps together (wall, load "
                  f"included); server: {int(count)} inferences in {int(execs)} executions "
                  f"(mean batch {row['mean_batch']:.2f}); boxes matching the local run: "
                  f"{hit}/{total} ({100 * row['matched_share']:.1f}%)")
    summaries = [work / "local.json", *(work / f"remote{n}_0.json"
                                        for n in map(int, args.clients.split(",")))]
    print(f"\nthe write-up's table with today's parts (speeds measured on this machine, "
          f"server included; prices of {args.client} and {args.accelerator}, each client "
          "paying its share of the server's inferences):")
    subprocess.run([sys.executable, "-m", "vidstream", "report", "--format", "markdown",
                    *map(str, summaries)], check=True)
    results["report"] = [json.loads(p.read_text())["cost"] for p in summaries]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Many streams in one process: throughput, fairness, cross-stream batching, live streams, memory.

    python benchmarks/bench_streams.py                   # 1080p traffic clip, 3 rounds
    python benchmarks/bench_streams.py --only fair,batching --repeat 5

Each measurement runs in its own process (fresh TensorFlow, its own peak memory); rounds
alternate the contenders so drift in the machine's speed hits all of them alike; medians are
reported. What it prints:

  fair        1 stream against 4 copies of the clip at once (detect + annotated video each):
              aggregate fps / single-stream fps, and each stream's fps against the streams' mean
  batching    8 streams through a fast fake predictor with batch size 8: mean batch formed
  live        a live-paced stream (read at its frame rate, leaky queue) alone and beside a
              fast file, through the real model: frames the live stream dropped
  memory      peak RSS for 1, 4 and 8 streams (data only), and for 4 streams at two lengths
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "samples"))
sys.path.insert(0, str(ROOT / "tests"))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- workers: each runs in its own process and prints one JSON line ---------------------------
def w_streams(args: argparse.Namespace) -> dict:
    """N copies of the clip through one detector, each stream with its own outputs."""
    from vidstream import ClassCounter, Detector, Pipeline, VideoSource, VideoWriter

    with tempfile.TemporaryDirectory() as tmp:
        sources = [VideoSource(args.input, max_frames=args.frames) for _ in range(args.n)]

        def sinks(i: int) -> list:
            if args.data:
                return [ClassCounter()]
            return [VideoWriter(f"{tmp}/{i}.mp4")]

        summary = Pipeline(sources, [Detector(args.model, batch_size=args.batch)], sinks).run()
    return {"frames": summary.frames, "fps": summary.fps,
            "streams_fps": [s.fps for s in summary.streams],
            "batch_mean": summary.batching["mean"]}


def w_batching(args: argparse.Namespace) -> dict:
    """8 streams, a predictor that costs ~nothing: how full do the batches get?"""
    import numpy as np

    from vidstream import ClassCounter, Detector, Pipeline, VideoSource

    def fast(feed: dict) -> dict:
        n = len(feed["inputs"])
        return {"detection_boxes": np.zeros((n, 1, 4), np.float32),
                "detection_scores": np.zeros((n, 1), np.float32),
                "detection_classes": np.ones((n, 1), np.float32)}

    detector = Detector(fast, batch_size=8)
    detector.linger = args.batch_wait_ms / 1000
    sources = [VideoSource(args.input, max_frames=args.frames) for _ in range(8)]
    summary = Pipeline(sources, [detector], lambda i: [ClassCounter()]).run()
    return {"frames": summary.frames, "fps": summary.fps, "batch_mean": summary.batching["mean"],
            "histogram": summary.batching["histogram"]}


def w_live(args: argparse.Namespace) -> dict:
    """A live-paced stream, alone (n=1) or beside a file read as fast as it goes (n=2)."""
    from vidstream import ClassCounter, Detector, Pipeline, VideoSource

    sources = [VideoSource(args.input, max_frames=args.frames, realtime=True, live=True)]
    if args.n == 2:
        sources.append(VideoSource(args.input, max_frames=args.frames))
    summary = Pipeline(sources, [Detector(args.model)], lambda i: [ClassCounter()]).run()
    live = summary.streams[0]
    return {"fps": summary.fps, "live_frames": live.frames, "live_dropped": live.dropped,
            "live_frames_in": live.frames_in,
            "file_frames": summary.streams[1].frames if args.n == 2 else None}


WORKERS = {"streams": w_streams, "batching": w_batching, "live": w_live}


# -- driver ---------------------------------------------------------------------------------
def run_worker(args: argparse.Namespace, kind: str, n: int = 1, frames: int | None = None,
               data: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--input", args.input,
           "--frames", str(frames or args.frames), "--model", args.model, "--n", str(n),
           "--batch", str(args.batch), "--batch-wait-ms", str(args.batch_wait_ms)]
    if data:
        cmd.append("--data")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} n={n} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", help="clip to use (default: a 1080p traffic clip made here)")
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--model", default="centernet")
    p.add_argument("--batch", type=int, default=1, help="detector batch size for 'fair'")
    p.add_argument("--batch-wait-ms", type=float, default=5.0)
    p.add_argument("--only", default="fair,batching,live,memory")
    p.add_argument("--json", help="write all runs here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--data", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        result = WORKERS[args.worker](args)
        result["peak_rss_mb"] = round(peak_mb(), 1)
        print(json.dumps(result))
        return 0
    if not args.input:
        from make_clip import make_clip

        args.input = str(ROOT / "build" / f"bench-traffic-{args.frames}.mp4")
        if not Path(args.input).exists():
            Path(args.input).parent.mkdir(parents=True, exist_ok=True)
            make_clip(args.input, scene="traffic", count=args.frames,
                      rate=Fraction(30000, 1001))
    only = set(args.only.split(","))
    runs: dict[str, list[dict]] = {}

    def record(name: str, result: dict) -> dict:
        runs.setdefault(name, []).append(result)
        print(f"  {name:14s} {json.dumps({k: v for k, v in result.items() if k != 'histogram'})}",
              file=sys.stderr, flush=True)
        return result

    for r in range(args.repeat):
        print(f"round {r + 1}/{args.repeat}", file=sys.stderr, flush=True)
        if "fair" in only:
            record("single", run_worker(args, "streams", 1))
            record("four", run_worker(args, "streams", 4))
        if "batching" in only:
            record("batching", run_worker(args, "batching"))
        if "live" in only:
            record("live-alone", run_worker(args, "live", 1))
            record("live-beside", run_worker(args, "live", 2))
    if "memory" in only:
        for n in (1, 4, 8):
            record(f"memory-{n}", run_worker(args, "streams", n, data=True))
        record("memory-4-short", run_worker(args, "streams", 4, frames=args.frames // 2,
                                            data=True))

    def med(name: str, key: str) -> float:
        return statistics.median(x[key] for x in runs[name])

    print("\nmedians over", args.repeat, "rounds,", args.input)
    if "fair" in only:
        single, four = med("single", "fps"), med("four", "fps")
        print(f"  1 stream {single:.2f} fps; 4 streams {four:.2f} fps aggregate: "
              f"ratio {four / single:.3f} (goal >= 0.95)")
        spreads = []
        for x in runs["four"]:
            mean = statistics.mean(x["streams_fps"])
            spreads.append(max(abs(f - mean) / mean for f in x["streams_fps"]))
        print(f"  fairness: each stream within {100 * max(spreads):.1f}% of the streams' mean "
              "(worst round; goal 15%)")
    if "batching" in only:
        print(f"  batching: 8 streams, batch 8, wait {args.batch_wait_ms:g} ms: mean batch "
              f"{med('batching', 'batch_mean'):.2f} (goal >= 6); "
              f"histogram {runs['batching'][-1]['histogram']}")
    if "live" in only:
        alone, beside = med("live-alone", "live_dropped"), med("live-beside", "live_dropped")
        print(f"  live stream dropped {alone:.0f} frames alone, {beside:.0f} beside a fast file "
              f"(of {runs['live-alone'][0]['live_frames_in']}; goal: no more than alone); the "
              f"file kept all {runs['live-beside'][0]['file_frames']}")
    if "memory" in only:
        peaks = {n: runs[f"memory-{n}"][0]["peak_rss_mb"] for n in (1, 4, 8)}
        short = runs["memory-4-short"][0]["peak_rss_mb"]
        print(f"  peak RSS: 1 stream {peaks[1]:.0f} MB, 4 {peaks[4]:.0f} MB, 8 {peaks[8]:.0f} MB "
              f"(per added stream: {(peaks[8] - peaks[4]) / 4:.0f} MB); 4 streams at "
              f"{args.frames // 2} frames {short:.0f} MB against {peaks[4]:.0f} MB at "
              f"{args.frames}")
    if args.json:
        Path(args.json).write_text(json.dumps({"input": args.input, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

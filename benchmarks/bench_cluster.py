"""Ray against one process: the same clips through a local 2-CPU cluster and one after another.

    python benchmarks/bench_cluster.py                 # 6 clips of 30-90 frames, 640x360
    python benchmarks/bench_cluster.py --clips 8 --repeat 2

Each side runs in its own process (its own TensorFlow, its own peak memory). The Ray side's
time includes starting the cluster. Printed: wall times and their ratio (goal: Ray within
1.3x of the single process, start-up included), whether the outputs are identical (frame
counts and every detection), the driver's peak memory for half and all of the clips, and what
live progress costs (the Ray run again with a progress callback: board actor and reports).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "samples"))


def configs(clips: list[str], out: Path) -> list:
    from vidstream.config import RunConfig

    out.mkdir(parents=True, exist_ok=True)
    # overwrite: a second round (--repeat) or run writes the same outputs again
    return [RunConfig(input=c, video=str(out / f"{Path(c).stem}.mp4"),
                      detections=str(out / f"{Path(c).stem}.jsonl"), overwrite=True)
            for c in clips]


def w_sequential(args: argparse.Namespace) -> dict:
    from vidstream.config import build_pipeline

    t0 = time.perf_counter()
    frames = 0
    for cfg in configs(args.clip, Path(args.out)):
        with build_pipeline(cfg) as p:
            frames += p.run().frames
    return {"wall_s": time.perf_counter() - t0, "frames": frames}


def w_ray(args: argparse.Namespace, *, watched: bool = False) -> dict:
    from vidstream.cluster import run_on_ray

    seen = []
    t0 = time.perf_counter()
    # watched: a progress callback, so the tasks report to the progress board as the CLI's do
    result = run_on_ray(configs(args.clip, Path(args.out)), num_cpus=2,
                        progress=seen.append if watched else None, poll_s=0.25)
    wall = time.perf_counter() - t0
    last = seen[-1] if seen else None
    return {"wall_s": wall, "frames": result.summary()["frames"],
            "exit_code": result.exit_code, "snapshots": len(seen),
            "progress_frames": last.frames if last else None}


def w_ray_progress(args: argparse.Namespace) -> dict:
    return w_ray(args, watched=True)


WORKERS = {"sequential": w_sequential, "ray": w_ray, "ray-progress": w_ray_progress}


def run(kind: str, clips: list[str], out: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--out", str(out)]
    for c in clips:
        cmd += ["--clip", c]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def detections(out: Path) -> dict[str, list]:
    return {p.name: [json.loads(x)["detections"] for x in p.read_text().splitlines()]
            for p in sorted(out.glob("*.jsonl"))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--clip", action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        result = WORKERS[args.worker](args)
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(result))
        return 0
    from make_clip import make_clip

    build = ROOT / "build" / "cluster"
    clips = []
    for i in range(args.clips):
        n = 30 + (60 * i) // max(args.clips - 1, 1)  # mixed lengths, 30 to 90 frames
        path = build / f"clip{i}-{n}.mp4"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            make_clip(path, scene="photos", width=640, height=360, count=n,
                      rate=Fraction(30000, 1001))
        clips.append(str(path))
    runs: dict[str, list[dict]] = {"sequential": [], "ray": [], "ray-progress": []}
    for r in range(args.repeat):
        for kind in runs:
            res = run(kind, clips, build / f"out-{kind}")
            runs[kind].append(res)
            print(f"round {r + 1}  {kind:10s} {res['wall_s']:6.1f} s  {res['frames']} frames  "
                  f"driver peak {res['peak_rss_mb']} MB", file=sys.stderr, flush=True)
    half = run("ray", clips[: len(clips) // 2], build / "out-half")
    seq = statistics.median(x["wall_s"] for x in runs["sequential"])
    ray_wall = statistics.median(x["wall_s"] for x in runs["ray"])
    same = detections(build / "out-sequential") == detections(build / "out-ray")
    print(f"\n{len(clips)} clips, {runs['ray'][0]['frames']} frames: one process {seq:.1f} s, "
          f"local Ray (2 CPUs, start-up included) {ray_wall:.1f} s: ratio {ray_wall / seq:.2f} "
          f"(goal <= 1.3)")
    print(f"outputs identical (every detection of every frame): {same}")
    watched = statistics.median(x["wall_s"] for x in runs["ray-progress"])
    print(f"with live progress (a board actor, tasks reporting each second, the driver polling "
          f"every 0.25 s): {watched:.1f} s against {ray_wall:.1f} s without: "
          f"{watched - ray_wall:+.1f} s; {runs['ray-progress'][-1]['snapshots']} snapshots, "
          f"the last counting {runs['ray-progress'][-1]['progress_frames']} frames")
    print(f"driver peak memory: {half['peak_rss_mb']} MB for {len(clips) // 2} clips, "
          f"{runs['ray'][-1]['peak_rss_mb']} MB for {len(clips)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What the live dashboard costs: fps with and without it, alternating, on a terminal.

    python benchmarks/bench_dashboard.py [--input clip.mp4] [--repeat 5]

Both variants run `vidstream detect` under a pseudo-terminal (the live view only draws on
one), with the default model; fps comes from each run's --summary (model load excluded).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "samples"))
sys.path.insert(0, str(ROOT / "tests"))

import ptyrun  # noqa: E402 - found through the path above


def run_in_pty(args: list[str]) -> bytes:
    out, code = ptyrun.run_in_pty(args, columns=120, timeout=3600)
    if code != 0:
        raise SystemExit(out.decode(errors="replace")[-2000:])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input")
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    if not args.input:
        from make_clip import make_clip

        args.input = str(ROOT / "build" / f"bench-traffic-{args.frames}.mp4")
        if not Path(args.input).exists():
            Path(args.input).parent.mkdir(parents=True, exist_ok=True)
            make_clip(args.input, scene="traffic", count=args.frames)
    fps: dict[str, list[float]] = {"dashboard": [], "no-dashboard": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            for variant in fps:
                summary = Path(tmp) / f"{variant}-{r}.json"
                cmd = ["detect", args.input, "-o", f"{tmp}/o.mp4", "-y", "--summary",
                       str(summary), "--instance", "c5.4xlarge"]
                if variant == "no-dashboard":
                    cmd.append("--no-dashboard")
                run_in_pty(cmd)
                fps[variant].append(json.loads(summary.read_text())["fps"])
                print(f"round {r + 1} {variant:13s} {fps[variant][-1]:.2f} fps", file=sys.stderr)
    a, b = statistics.median(fps["dashboard"]), statistics.median(fps["no-dashboard"])
    print(f"\nmedian fps with the live dashboard {a:.2f}, without {b:.2f}: "
          f"ratio {a / b:.3f} (goal >= 0.98)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

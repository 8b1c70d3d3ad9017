"""The live view under a pseudo-terminal, the plain progress lines off one, and the numbers."""

from __future__ import annotations

import re
import subprocess
import sys

import ptyrun
import pytest
from media import red_square_clip

from vidstream.cli.dashboard import (
    Dashboard,
    RateWindow,
    bottleneck_hint,
    eta_seconds,
    format_duration,
    plain_line,
    remote_line,
    remote_suffix,
    summary_table,
)
from vidstream.stats import LatencyHistogram, StageStats
from vidstream.summary import Summary

ESC = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def stage(name, busy, wall=10.0, items=100, starved=0.0, blocked=0.0, queue=(0, 0)):
    return StageStats(name, items, items, 0, 0, busy, starved, blocked, wall, *queue)


def test_rate_window_uses_only_recent_samples():
    r = RateWindow(window=2.0)
    for t in range(10):
        r.add(float(t), t * (10 if t < 5 else 30))  # 10 fps, then 30 fps
    assert r.rate() == pytest.approx(30.0)


def test_eta_and_durations():
    assert eta_seconds(50, 250, 20.0) == 10.0
    assert eta_seconds(50, None, 20.0) is None
    assert eta_seconds(50, 250, 0.0) is None
    assert format_duration(75) == "1:15" and format_duration(3700) == "1:01:40"
    assert format_duration(None) == "?"


def test_bottleneck_is_the_busiest_stage_with_a_hint():
    stats = [stage("decode", 1.0, blocked=9.0), stage("detect", 9.5), stage("sink", 3.0)]
    assert bottleneck_hint(stats, batch_size=1, device="GPU (NVIDIA T4)") == (
        "detect is the bottleneck (busy 95%): try a larger --batch-size")
    assert bottleneck_hint(stats, batch_size=1, device="CPU") == (
        "detect is the bottleneck (busy 95%): the model is the limit on this CPU: "
        "try a GPU (--device gpu) or more cores")
    stats = [stage("decode", 1.0), stage("detect", 2.0), stage("sink", 9.0)]
    assert bottleneck_hint(stats).startswith("sink is the bottleneck (busy 90%): try --preset")
    assert bottleneck_hint([stage("decode", 0.0)]) == "measuring..."


def test_plain_line():
    class Fake:
        info = type("I", (), {"frames": 250})()
        dropped = 0

        stages = ()  # nothing that counts

        def stats(self):
            return [stage("decode", 1.0, items=120), stage("detect", 9.0, items=120)]

        def streams(self):
            return []

        def details(self):
            return {}

    assert plain_line(Fake(), 15.0) == "frames 120/250  fps 15.0  eta 0:09  bottleneck detect"


@pytest.fixture(scope="module")
def paced_clip(media_dir):
    path = media_dir / "paced.mp4"
    red_square_clip(path, frames=75, width=320, height=240)
    return path


def run_in_pty(args) -> bytes:
    out, code = ptyrun.run_in_pty(args, timeout=120)
    assert code == 0, out.decode(errors="replace")[-2000:]
    return out


def test_live_view_on_a_terminal_shows_stages_rate_bottleneck_and_redraws(
        paced_clip, tiny_model, tmp_path):
    # --realtime paces the 75-frame clip at 30 fps: 2.5 s of live view
    raw = run_in_pty(["detect", paced_clip, "-o", tmp_path / "o.mp4", "--model", tiny_model,
                      "--realtime", "--instance", "c5.4xlarge"])
    text = ESC.sub(b"", raw).decode(errors="replace")
    live = text.split("vidstream summary")[0]
    for word in ("decode", "detect", "sink", "fps", "bottleneck", "eta", "latency p50",
                 "per 100k inferences at c5.4xlarge", "/75 frames"):
        assert word in live, word
    # redrawn several times: the progress count changes between frames of the view
    counts = {int(m) for m in re.findall(r"(\d+)/75 frames", live)}
    assert len(counts) >= 3, counts
    assert b"\x1b[" in raw  # it really is a terminal rendering
    assert "vidstream summary" in text  # and the final table follows


def test_off_a_terminal_prints_plain_progress_lines_without_escapes(paced_clip, tiny_model,
                                                                    tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "vidstream", "detect", str(paced_clip), "-o",
         str(tmp_path / "o.mp4"), "--model", str(tiny_model), "--realtime",
         "--progress-interval", "0.5"],
        capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stderr and "\x1b" not in r.stdout
    lines = [x for x in r.stderr.splitlines() if x.startswith("frames ")]
    assert len(lines) >= 3
    assert re.fullmatch(r"frames \d+/75  fps [\d.]+  eta [\d:?]+  bottleneck \w+", lines[-1])
    assert "vidstream summary" in r.stderr


def test_no_dashboard_and_quiet(paced_clip, tiny_model, tmp_path):
    base = [sys.executable, "-m", "vidstream", "detect", str(paced_clip), "--model",
            str(tiny_model), "--progress-interval", "0.2", "--max-frames", "20"]
    r = subprocess.run([*base, "-o", str(tmp_path / "a.mp4"), "--no-dashboard"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    assert "frames " not in r.stderr.replace("frames      20", "")  # summary only
    assert "vidstream summary" in r.stderr
    r = subprocess.run([*base, "-o", str(tmp_path / "b.mp4"), "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    assert r.stderr == "" and r.stdout == ""


def test_final_table_shows_a_reference_price_as_such_and_small_costs_unrounded():
    """Issue 11 items 11 and 13: a cheap, fast run is not "$0.00"; a default price says so."""
    import io

    from rich.console import Console

    from vidstream.cli.dashboard import summary_table
    from vidstream.cost import resolve_price
    from vidstream.stats import LatencyHistogram
    from vidstream.summary import Summary

    s = Summary(frames=5000, wall_s=1.0, fps=5000.0, model_load_s=0.1,
                latency=LatencyHistogram(), stages=[]).with_price(resolve_price())
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(summary_table(s))
    text = console.export_text()
    # $0.08925/h at 5000 inferences/s: $0.000496 per 100k
    assert "$0.00 per 100k" not in text and "$0.00050 per 100k" in text
    assert "priced at the reference rate of c7i.large ($0.08925/h); --instance to change" in text


# -- a model on a server -------------------------------------------------------------------------
REMOTE = {"endpoint": "triton://10.0.0.7:8001/centernet", "protocol": "triton", "requests": 30,
          "frames": 120, "in_flight": 3, "max_in_flight": 4,
          "round_trip_ms": {"p50": 12.4, "p95": 30.2}, "retries": 0, "mb_sent": 94.37,
          "fallback_model": "centernet", "fallback_frames": 0, "outages": 0,
          "server": {"inference_count": 240, "execution_count": 70, "mean_batch": 3.43,
                     "batch_sizes": {"1": 10, "4": 60}}}


def render(renderable) -> str:
    import io

    from rich.console import Console

    console = Console(width=400, record=True, file=io.StringIO())  # no wrapped lines
    console.print(renderable)
    return console.export_text()


def test_the_remote_line_says_round_trips_in_flight_server_batch_and_fallback():
    assert remote_line({"model": "m"}) is None and remote_suffix({}) is None
    assert remote_line({"remote": REMOTE}) == (
        "remote triton://10.0.0.7:8001/centernet  rtt p50 12 ms p95 30 ms  "
        "in flight 3 (max 4)  server batch 3.4  fallback 0 frames")
    assert remote_suffix({"remote": REMOTE}) == "rtt p95 30 ms  in flight 3"
    # TF Serving, nothing answered yet, no fallback; then a server that went down
    quiet = {**REMOTE, "protocol": "tfserving", "endpoint": "tfserving://h:8500/m",
             "round_trip_ms": None, "in_flight": 0, "max_in_flight": 0, "server": None,
             "fallback_model": None}
    assert remote_line({"remote": quiet}) == (
        "remote tfserving://h:8500/m  rtt -  in flight 0 (max 0)")
    down = {**REMOTE, "round_trip_ms": {"p50": 2.5, "p95": 8.25}, "retries": 2,
            "fallback_frames": 17, "outages": 1}
    assert remote_line({"remote": down}).endswith(
        "rtt p50 2.5 ms p95 8.2 ms  in flight 3 (max 4)  retries 2  server batch 3.4  "
        "fallback 17 frames (1 outages)")
    assert remote_suffix({"remote": down}) == "rtt p95 8.2 ms  in flight 3  fallback 17"


def test_the_live_view_the_plain_line_and_the_final_table_show_the_remote_model():
    class Fake:
        info = type("I", (), {"frames": 250, "live": False})()
        dropped = 0
        elapsed_s = 8.0
        latency = LatencyHistogram()
        stages = ()

        def stats(self):
            return [stage("decode", 1.0, items=120), stage("detect", 9.0, items=120)]

        def streams(self):
            return []

        def details(self):
            return {"model": "centernet", "device": "remote (triton server at 10.0.0.7:8001)",
                    "remote": REMOTE}

    live = render(Dashboard(Fake()))
    assert remote_line(Fake().details()) in live
    assert plain_line(Fake(), 15.0) == ("frames 120/250  fps 15.0  eta 0:09  bottleneck detect"
                                        "  rtt p95 30 ms  in flight 3")
    s = Summary(frames=120, wall_s=8.0, fps=15.0, model_load_s=0.1, latency=LatencyHistogram(),
                stages=[], details=Fake().details())
    row = next(line for line in render(summary_table(s)).splitlines()
               if line.lstrip().startswith("remote"))
    assert ("triton://10.0.0.7:8001/centernet: 30 requests, 120 frames, rtt p50 12 ms p95 30 ms"
            ", max in flight 4, 94.4 MB sent") in row
    assert "server (every client): 240 inferences in 70 runs, batch 3.4 (1: 10, 4: 60)" in row

"""Many streams from the command line, on real media: clips of different lengths, sizes and
rates beside a missing file, a file cut short, a camera nobody answers and a stream cut
mid-run. Healthy streams complete exactly; failing ones are reported with their state and
reason; every output is finalized; the exit code says how the streams ended (0/3/1/130)."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from fractions import Fraction
from pathlib import Path

import av
import pytest
from fakemodel import RedSquares
from loopback import LoopbackServer, Step
from media import clip_variant, count_frames, red_square_clip

from vidstream import Pipeline, load_pipeline_file
from vidstream.cli import main
from vidstream.config import RunConfig, input_stem, stream_configs
from vidstream.errors import ConfigError

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
NTSC = Fraction(30000, 1001)


@pytest.fixture(scope="module")
def clips(media_dir):
    """Two healthy clips (30 frames 320x240 at 30000/1001; 18 frames 160x120 at 25), a TS file
    cut short, and a TS clip for the loopback server."""
    a, b = media_dir / "ms-a.mp4", media_dir / "ms-b.mp4"
    red_square_clip(a, frames=30, width=320, height=240, rate=NTSC)
    red_square_clip(b, frames=18, width=160, height=120, rate=Fraction(25))
    whole = clip_variant(media_dir / "ms-whole.ts", "ts", frames=60)
    cut = media_dir / "ms-cut.ts"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2 + 100])  # mid-packet: the file was cut short
    live = clip_variant(media_dir / "ms-live.ts", "ts", frames=75, gop=15)
    return {"a": a, "b": b, "cut": cut, "live": live}


@pytest.fixture
def fake_model(monkeypatch):
    monkeypatch.setattr("vidstream.detector.load_predictor", lambda *a, **k: RedSquares())


def free_port() -> int:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe(path: Path) -> tuple[int, Fraction, list[float], tuple[int, int]]:
    """Frames, rate, each frame's time, size."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times = [float(f.pts * f.time_base) for f in c.decode(video=0)]
        return len(times), v.average_rate, times, (v.width, v.height)


def detect(*args: object) -> int:
    return main(["detect", *map(str, args), "--no-dashboard"])


# -- the command line --------------------------------------------------------------------------
def test_healthy_streams_complete_and_broken_ones_are_reported(clips, tmp_path, fake_model,
                                                               capsys):
    dead = f"tcp://127.0.0.1:{free_port()}"
    missing = tmp_path / "missing.mp4"
    inputs = [clips["a"], clips["b"], missing, clips["cut"], dead]
    code = detect(*inputs, "-o", tmp_path / "{index}-{stem}.mp4", "--batch-size", "4",
                  "--detections", tmp_path / "{index}-{stem}.jsonl",
                  "--summary", tmp_path / "run.json", "--stall-timeout", "2")
    err = capsys.readouterr().err
    assert code == 3, err
    run = json.loads((tmp_path / "run.json").read_text())
    streams = run["streams"]
    assert [s["stem"] for s in streams] == ["ms-a", "ms-b", "missing", "ms-cut",
                                            input_stem(dead)]
    assert [s["uri"] for s in streams] == [str(i) for i in inputs]
    a, b, gone, cut, unreachable = streams
    # healthy streams: every frame, at the input's exact rate and timestamps
    for s, clip, n, rate, size in ((a, clips["a"], 30, NTSC, (320, 240)),
                                   (b, clips["b"], 18, Fraction(25), (160, 120))):
        assert (s["state"], s["error"], s["frames"], s["frames_in"]) == ("ended", None, n, n)
        out = tmp_path / f"{s['index']}-{s['stem']}.mp4"
        frames, out_rate, times, out_size = probe(out)
        assert (frames, out_rate, out_size) == (n, rate, size)
        assert times == probe(clip)[2]
        lines = (tmp_path / f"{s['index']}-{s['stem']}.jsonl").read_text().splitlines()
        assert len(lines) == n
    # the broken ones, each with its state and its reason
    assert gone["state"] == "failed" and "no such file" in gone["error"]
    assert gone["frames"] == 0
    assert unreachable["state"] == "failed" and "cannot open" in unreachable["error"]
    assert cut["state"] == "ended" and cut["ended_early"] and 0 < cut["frames"] < 60
    assert count_frames(tmp_path / "3-ms-cut.mp4") == cut["frames"]  # finalized, playable
    # the whole run: the single-stream keys keep their meaning
    assert run["frames"] == sum(s["frames"] for s in streams) == 48 + cut["frames"]
    assert set(run) >= {"frames", "fps", "wall_s", "stages", "bottleneck", "cost",
                        "latency_ms", "streams", "batching"}
    assert run["batching"]["batches"] >= run["frames"] / 4
    assert sum(int(k) * v for k, v in run["batching"]["histogram"].items()) == run["frames"]
    assert "stream 2 (" in err and "missing.mp4: no such file" in err
    assert f"stream 4 ({dead}) failed after 0 frames" in err


def test_every_stream_completing_exits_0_and_inputs_come_from_a_file(clips, tmp_path,
                                                                     fake_model, capsys):
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"# two clips\n{clips['a']}\n\n{clips['b']}\n")
    code = detect("--inputs", listing, "-o", tmp_path / "{stem}.mp4",
                  "--summary", tmp_path / "{stem}.json", "--price-per-hour", "0.36")
    assert code == 0, capsys.readouterr().err
    for stem, n in (("ms-a", 30), ("ms-b", 18)):
        own = json.loads((tmp_path / f"{stem}.json").read_text())  # each stream's own summary
        assert (own["stem"], own["state"], own["frames"]) == (stem, "ended", n)
        assert own["run"]["frames"] == 48
        # cost per stream: the run's price split by its share of the inferences
        assert own["cost"]["share"] == pytest.approx(n / 48)
        assert own["cost"]["usd_total"] == pytest.approx(  # the run's is rounded to 1e-6
            own["run"]["cost"]["usd_total"] * n / 48, abs=1e-6)
        assert count_frames(tmp_path / f"{stem}.mp4") == n


def test_no_stream_producing_output_exits_1(tmp_path, fake_model, capsys):
    code = detect(tmp_path / "x.mp4", tmp_path / "y.mp4", "-o", tmp_path / "{stem}.mp4")
    assert code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("vidstream: error: ")
    assert not list(tmp_path.glob("*.mp4"))


def test_a_failing_detector_stops_every_stream_and_exits_1(clips, tmp_path, monkeypatch,
                                                           capsys):
    monkeypatch.setattr("vidstream.detector.load_predictor",
                        lambda *a, **k: RedSquares(fail_at=10))
    code = detect(clips["a"], clips["b"], "-o", tmp_path / "{stem}.mp4",
                  "--summary", tmp_path / "run.json")
    err = capsys.readouterr().err
    assert code == 1
    assert "the model exploded" in err.strip().splitlines()[-1]
    run = json.loads((tmp_path / "run.json").read_text())
    for s in run["streams"]:
        assert count_frames(tmp_path / f"{s['stem']}.mp4") == s["frames"]  # finalized


@pytest.mark.parametrize("output, expected", [
    ("o.mp4", "--output 'o.mp4': with several inputs, each writes its own file: use {stem}"),
    ("{stem}.mp4", "would both write"),
])
def test_outputs_must_be_templates_and_names_must_not_clash(clips, tmp_path, output, expected,
                                                            fake_model, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "sub" / clips["a"].name  # same name as the first input: stems clash
    other.parent.mkdir()
    other.write_bytes(clips["a"].read_bytes())
    code = detect(clips["a"], other, "-o", output)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert expected in err[0], err[0]
    if "clash" in err[0]:
        assert "{index}" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]  # refused before any work


def test_every_streams_outputs_are_checked_before_any_work(clips, tmp_path, fake_model, capsys):
    (tmp_path / "ms-b.mp4").write_bytes(b"precious")
    code = detect(clips["a"], clips["b"], "-o", tmp_path / "{stem}.mp4")
    assert code == 1
    assert "ms-b.mp4: already exists (use -y to overwrite)" in capsys.readouterr().err
    assert not (tmp_path / "ms-a.mp4").exists()
    assert (tmp_path / "ms-b.mp4").read_bytes() == b"precious"


def test_a_stream_cut_mid_run_fails_alone(clips, tmp_path, fake_model, capsys):
    with LoopbackServer(clips["live"].read_bytes(), 75 / float(NTSC),
                        [Step(1.0, "close")], protocol="http") as srv:
        code = detect(clips["a"], srv.url, "-o", tmp_path / "{index}.mp4",
                      "--summary", tmp_path / "run.json", "--realtime")
    err = capsys.readouterr().err
    assert code == 3, err
    a, cam = json.loads((tmp_path / "run.json").read_text())["streams"]
    assert (a["state"], a["frames"]) == ("ended", 30)
    assert cam["state"] == "failed" and cam["error"], cam
    assert 0 < cam["frames"] < 75
    assert cam["frames_in"] == cam["frames"] + cam["dropped"] + cam["decode_errors"]
    assert count_frames(tmp_path / "1.mp4") == cam["frames"]  # finalized: it plays
    assert count_frames(tmp_path / "0.mp4") == 30


def test_ctrl_c_finalizes_every_stream(clips, tmp_path):
    args = ["detect", str(clips["a"]), str(clips["b"]), "-o", str(tmp_path / "{stem}.mp4"),
            "--detections", str(tmp_path / "{stem}.jsonl"), "--summary", str(tmp_path / "s.json"),
            "--no-dashboard", "--realtime"]
    proc = subprocess.Popen([sys.executable, str(TESTS / "fakemodel.py"), "--delay", "0.02",
                             "--", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = [p for p in tmp_path.glob("*.jsonl") if p.read_text().count("\n") >= 3]
        if len(done) == 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["interrupted"]
    for s in summary["streams"]:
        assert 0 < s["frames"] < (30 if s["stem"] == "ms-a" else 18)
        assert count_frames(tmp_path / f"{s['stem']}.mp4") == s["frames"]
        assert len((tmp_path / f"{s['stem']}.jsonl").read_text().splitlines()) == s["frames"]


# -- metrics ----------------------------------------------------------------------------------
@pytest.mark.parametrize("streams", [1, 2])
def test_metrics_are_scraped_from_loopback_during_a_run(clips, tmp_path, streams):
    parser = pytest.importorskip("prometheus_client.parser")
    inputs = [str(clips["a"]), str(clips["b"])][:streams]
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "fakemodel.py"), "--delay", "0.05", "--", "detect", *inputs,
         "-o", str(tmp_path / "{stem}.mp4"), "--metrics-port", "0", "--no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        url = None
        for line in proc.stderr:
            m = re.search(r"metrics at (http://127\.0\.0\.1:\d+/metrics)", line)
            if m:
                url = m.group(1)
                break
        assert url, "no metrics line"
        families: dict = {}
        for _ in range(100):  # until a frame got through, mid-run
            text = urllib.request.urlopen(url, timeout=10).read().decode()
            families = {f.name: f.samples for f in parser.text_string_to_metric_families(text)}
            if any(s.value for s in families["vidstream_frames"]):
                break
            time.sleep(0.05)
        labels = {s.labels["stream"] for s in families["vidstream_stream_frames"]}
        assert labels == {str(i) for i in range(streams)}
        states = {s.labels["stream"]: s.labels["vidstream_stream_state"]
                  for s in families["vidstream_stream_state"] if s.value == 1}
        assert set(states.values()) <= {"running", "ended"}
        assert "detect" in {s.labels["stage"] for s in families["vidstream_stage_busy_seconds"]}
        assert "vidstream_batch_size" in families
        assert proc.wait(60) == 0
    finally:
        proc.kill()
        proc.wait()


def test_metrics_beyond_loopback_are_warned_about(clips, tmp_path, fake_model, capsys):
    pytest.importorskip("prometheus_client")
    code = detect(clips["b"], "-o", tmp_path / "o.mp4", "--metrics-port", "0",
                  "--metrics-host", "0.0.0.0")
    assert code == 0
    assert "no authentication" in capsys.readouterr().err


# -- the dashboard -----------------------------------------------------------------------------
def test_the_dashboard_has_a_row_per_stream_and_totals(clips):
    from rich.console import Console
    from test_engine import Collect, FakeSource

    from vidstream import Detector
    from vidstream.cli.dashboard import StreamsDashboard, plain_line

    p = Pipeline([FakeSource(6), FakeSource(4, fail_after=2), FakeSource(5)],
                 [Detector(RedSquares(), batch_size=2)], lambda i: [Collect()])
    p.run()
    console = Console(record=True, width=120)
    console.print(StreamsDashboard(p, title="vidstream  3 streams", max_rows=2,
                                   batch_size=2))
    text = console.export_text()
    rows = {r[0]: r for r in (line.split() for line in text.splitlines()) if r}
    assert rows["1"][2] == "failed"  # a failing stream always has its row
    assert "... 1 more streams (1 ended)" in text
    assert re.search(r"detect .* batch \d\.\d/2", text)
    assert "3 streams: 2 ended, 1 failed  frames 13" in text
    assert plain_line(p, 4.0) == "frames 13  fps 4.0  streams 2 ended, 1 failed  " \
        "bottleneck " + (p.summary().bottleneck.name)


# -- several inputs in a pipeline file ---------------------------------------------------------
MULTI = """
[[input]]
uri = "rtsp://cam.local/1/stream"
reconnect = 3

[[input]]
uri = "rtsp://user:pw@cam.local/2/stream"
queue = 2

[output]
video = "{stem}-{index}.mp4"
summary = "run.json"
"""


def test_input_tables_give_one_stream_each(tmp_path):
    (tmp_path / "m.toml").write_text(MULTI)
    cfg = load_pipeline_file(tmp_path / "m.toml")
    assert cfg.inputs == ["rtsp://cam.local/1/stream", "rtsp://user:pw@cam.local/2/stream"]
    assert cfg.queue_size == 2 and cfg.video == "{stem}-{index}.mp4"  # templates kept
    first, second = stream_configs(cfg)
    assert (first.video, first.reconnect) == ("stream-0.mp4", 3)
    assert (second.video, second.reconnect) == ("stream-1.mp4", RunConfig().reconnect)
    assert first.summary is None  # one summary for the whole run
    one = load_pipeline_file(tmp_path / "m.toml", {"input": "cam9.mp4"})
    assert (one.inputs, one.input, one.video) == ([], "cam9.mp4", "cam9-0.mp4")


@pytest.mark.parametrize("text, expected", [
    (MULTI.replace("queue = 2", "queue = 2\nleaky = true").replace("reconnect = 3",
                                                                     "leaky = false"),
     "input.leaky differs between [[input]] tables"),
    (MULTI.replace("reconnect = 3", "recnnect = 3"),
     "unknown key input.recnnect (in [[input]] number 1)"),
    (MULTI.replace("reconnect = 3", "reconnect = -1"), "input.reconnect = -1: expected"),
    (MULTI.replace('uri = "rtsp://cam.local/1/stream"', ""), "[[input]] number 1 has no uri"),
])
def test_a_mistake_in_input_tables_is_one_line(tmp_path, text, expected):
    (tmp_path / "m.toml").write_text(text)
    with pytest.raises(ConfigError) as e:
        load_pipeline_file(tmp_path / "m.toml")
    assert str(e.value).startswith(f"{tmp_path / 'm.toml'}: ")
    assert expected in str(e.value)


def test_clashing_stems_in_a_file_suggest_index(tmp_path):
    cfg = RunConfig("rtsp://a/stream", inputs=["rtsp://a/stream", "rtsp://u:p@b/stream"],
                    video="{stem}.mp4")
    with pytest.raises(ConfigError, match=r"rtsp://\*\*\*@b/stream would both write stream.mp4 "
                       r".*add \{index\} to the path, e.g. '\{stem\}-\{index\}.mp4'"):
        stream_configs(cfg)


def test_the_multi_camera_pipeline_runs_on_files(clips, tmp_path, fake_model, capsys,
                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("cams.txt").write_text(f"{clips['a']}\n{clips['b']}\n")
    code = main(["run", str(ROOT / "pipelines" / "multi-camera.toml"), "--inputs", "cams.txt",
                 "--no-dashboard"])
    assert code == 0, capsys.readouterr().err
    run = json.loads(Path("multi-camera-summary.json").read_text())
    assert [(s["stem"], s["frames"]) for s in run["streams"]] == [("ms-a", 30), ("ms-b", 18)]
    assert count_frames(Path("ms-a-0-live.mp4")) == 30
    assert count_frames(Path("ms-b-1-live.mp4")) == 18


# -- the real model ----------------------------------------------------------------------------
@pytest.mark.model
def test_two_streams_with_the_default_model(clips, tmp_path, centernet, capsys):
    code = detect(clips["a"], clips["b"], "-o", tmp_path / "{stem}.mp4", "--batch-size", "2",
                  "--summary", tmp_path / "run.json")
    assert code == 0, capsys.readouterr().err
    run = json.loads((tmp_path / "run.json").read_text())
    assert [s["frames"] for s in run["streams"]] == [30, 18]
    assert run["frames"] == 48 and run["batching"]["mean"] > 1
    for stem, n in (("ms-a", 30), ("ms-b", 18)):
        assert count_frames(tmp_path / f"{stem}.mp4") == n


def test_build_pipeline_runs_a_config_with_several_inputs(clips, tmp_path, fake_model):
    from vidstream import build_pipeline

    cfg = RunConfig(str(clips["a"]), inputs=[str(clips["a"]), str(clips["b"])],
                    video=str(tmp_path / "{stem}.mp4"), batch_size=2)
    with build_pipeline(cfg) as pipeline:
        summary = pipeline.run()
    assert [(s.state, s.frames) for s in summary.streams] == [("ended", 30), ("ended", 18)]
    assert pipeline.stages[0].linger == cfg.batch_wait_ms / 1000
    assert count_frames(tmp_path / "ms-b.mp4") == 18

"""The ready pipeline files: each runs on a generated clip, flags override it, and a mistake in
a file is one line naming the file, the key and what was expected."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import av
import pytest
from make_clip import make_clip

from vidstream import ConfigError, load_pipeline_file
from vidstream.cli import main
from vidstream.detections import box_iou

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = ROOT / "pipelines"
FRAMES = 20


def probe(path: Path) -> tuple[int, Fraction, list[str]]:
    with av.open(str(path)) as c:
        n = sum(1 for _ in c.decode(video=0))
        return n, c.streams.video[0].average_rate, [s.type for s in c.streams]




# -- every file is valid ----------------------------------------------------------------------
def test_the_ready_pipelines_are_there():
    # each one is run on a clip below: a new file needs its own run test here
    names = {p.name for p in PIPELINES.glob("*.toml")}
    assert names == {"detect-file.toml", "live-camera.toml", "batch-data.toml",
                     "multi-camera.toml",  # multi-camera runs in test_multistream.py
                     "count-line.toml",
                     "remote-client.toml"}  # runs against a server in test_remote_cost.py


@pytest.mark.parametrize("path", sorted(PIPELINES.glob("*.toml")), ids=lambda p: p.name)
def test_each_pipeline_file_loads_and_names_outputs_after_the_input(path):
    cfg = load_pipeline_file(path, {"input": "videos/cam1.mp4"})
    assert cfg.input == "videos/cam1.mp4"
    outputs = [o for o in (cfg.video, cfg.detections, cfg.summary, cfg.counts) if o]
    if path.stem == "multi-camera":  # one summary for the whole run, named after the file
        outputs.remove("multi-camera-summary.json")
    assert outputs and all(Path(o).name.startswith("cam1") for o in outputs), outputs
    assert all("/" not in o for o in outputs)  # written where the operator runs vidstream
    assert cfg.extra.get("name") == path.stem and cfg.extra.get("description")


@pytest.mark.parametrize("path", sorted(PIPELINES.glob("*.toml")), ids=lambda p: p.name)
def test_pipeline_files_leave_defaults_to_the_settings(path):
    # a key set to today's default would keep that value when the default changes
    import tomllib

    from vidstream import RunConfig
    from vidstream.config import FILE_KEYS

    data = tomllib.loads(path.read_text())
    default = RunConfig()
    for field, key in FILE_KEYS.items():
        section, name = key.split(".")
        if name in data.get(section, {}):
            assert data[section][name] != getattr(default, field), key


def test_what_each_pipeline_is_for():
    detect = load_pipeline_file(PIPELINES / "detect-file.toml", {"input": "a.mp4"})
    assert (detect.video, detect.detections, detect.summary) == (
        "a-detected.mp4", "a.jsonl", "a-summary.json")
    live = load_pipeline_file(PIPELINES / "live-camera.toml")
    assert live.input.startswith("rtsp://")
    assert live.leaky and live.reconnect >= 1 and live.fragmented and live.stall_timeout > 0
    data = load_pipeline_file(PIPELINES / "batch-data.toml", {"input": "a.mp4"})
    assert data.video is None and data.detections == "a.jsonl" and data.counts == "a-counts.json"


def test_flags_override_the_file():
    cfg = load_pipeline_file(PIPELINES / "live-camera.toml",
                             {"input": "rtsp://cam2/live", "video": "out/{stem}.mp4"})
    assert cfg.input == "rtsp://cam2/live" and cfg.video == "out/live.mp4"
    assert cfg.detections == "live-live.jsonl"


# -- mistakes ---------------------------------------------------------------------------------
GOOD = '[input]\nuri = "a.mp4"\n[output]\ndetections = "a.jsonl"\n'


@pytest.mark.parametrize("text, expected", [
    ('[input]\nuri = 5\n', "input.uri = 5: expected a file path, URL or /dev/videoN"),
    (GOOD + '[detector]\nthreshold = 1.5\n',
     "detector.threshold = 1.5: expected a number between 0 and 1"),
    (GOOD.replace('uri = "a.mp4"', 'uri = "a.mp4"\nqueue = 0'),
     "input.queue = 0: expected an integer >= 1"),
    # issue 11 items 7 and 10: nan and inf are valid TOML floats, and mean nothing here
    (GOOD.replace('uri = "a.mp4"', 'uri = "a.mp4"\nstall_timeout = nan'),
     "input.stall_timeout = nan: expected a finite number of seconds > 0"),
    (GOOD.replace('uri = "a.mp4"', 'uri = "a.mp4"\nstall_timeout = inf'),
     "input.stall_timeout = inf: expected a finite number of seconds > 0"),
    (GOOD.replace('uri = "a.mp4"', 'uri = "a.mp4"\nstall_timeout = -1'),
     "input.stall_timeout = -1: expected a finite number of seconds > 0"),
    (GOOD.replace('uri = "a.mp4"', 'uri = "a.mp4"\nreconnect_delay = nan'),
     "input.reconnect_delay = nan: expected a finite number of seconds > 0"),
    (GOOD.replace('uri = "a.mp4"', 'uri = "a.mp4"\nreconnect = -1'),
     "input.reconnect = -1: expected an integer >= 0"),
    (GOOD + '[detector]\nthreshold = nan\n',
     "detector.threshold = nan: expected a number between 0 and 1"),
    (GOOD + '[cost]\nprice_per_hour = inf\n',
     "cost.price_per_hour = inf: expected a finite number >= 0"),
    (GOOD.replace('uri = "a.mp4"', 'uri = "a.mp4"\nqueue = 1000000000'),
     "input.queue = 1000000000: expected at most 256"),
    (GOOD.replace('uri = "a.mp4"', 'uri = "a.mp4"\nreconnect = true'),
     "input.reconnect = True: expected an integer >= 0"),
    (GOOD + '[detector]\nbatch_size = 2.5\n', "detector.batch_size = 2.5: expected an integer"),
    (GOOD + '[detector]\nclasses = ["persn"]\n',
     "detector.classes: unknown class 'persn'; known classes: "),
    (GOOD.replace("detections =", "vdeo ="),
     "unknown key output.vdeo; expected one of: video, detections, summary, counts"),
    (GOOD + "[outputs]\n", "unknown section [outputs]; expected one of [pipeline], [input]"),
    (GOOD + '[pipeline]\nnam = "x"\n', "unknown key pipeline.nam; expected one of: name"),
    (GOOD.replace('"a.jsonl"', '"{name}.jsonl"'),
     "output.detections = '{name}.jsonl': unknown placeholder {name}; expected a file path"),
    ('[output]\nvideo = "o.mp4"\n', "no input: expected input.uri in the file (see --input)"),
    ('[input]\nuri = "a.mp4"\n', "nothing to write: expected at least one of output.video, "
     "output.detections, output.summary, output.counts"),
    ('[input]\nuri = "a.mp4\n', "invalid TOML: "),
])
def test_a_mistake_is_one_line_naming_file_key_and_expectation(text, expected, tmp_path,
                                                               capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mine.toml").write_text(text)
    assert main(["run", "mine.toml", "--no-dashboard"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("vidstream: error: mine.toml: "), err[0]
    assert expected in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.toml"]  # no work was done


def test_a_missing_file_and_a_traceback_free_subprocess(tmp_path):
    r = subprocess.run([sys.executable, "-m", "vidstream", "run", str(tmp_path / "nope.toml")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip() == f"vidstream: error: {tmp_path / 'nope.toml'}: no such pipeline file"


def test_load_errors_are_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[input]\nuri = "a.mp4"\nmax_frames = 0\n[output]\nvideo = "o.mp4"\n')
    with pytest.raises(ConfigError, match=r"bad.toml: input.max_frames = 0: expected an integer"):
        load_pipeline_file(bad)


# -- each pipeline runs on a generated clip --------------------------------------------------
@pytest.fixture(scope="module")
def clips(centernet, tmp_path_factory):
    d = tmp_path_factory.mktemp("pipelines")
    truth = make_clip(d / "photos.mp4", scene="photos", width=640, height=360, count=FRAMES,
                      rate=Fraction(10), audio=True)
    make_clip(d / "photos.ts", scene="photos", width=640, height=360, count=FRAMES,
              rate=Fraction(10))
    return d, truth


@pytest.mark.model
def test_detect_file_pipeline(clips, tmp_path, monkeypatch, capsys):
    d, truth = clips
    monkeypatch.chdir(tmp_path)
    (tmp_path / "annotated").mkdir()
    code = main(["run", str(PIPELINES / "detect-file.toml"), "--input", str(d / "photos.mp4"),
                 "--output", "annotated/{stem}-boxes.mp4", "--no-dashboard"])
    assert code == 0, capsys.readouterr().err
    # --output replaced output.video; the file's other outputs are named after the input
    assert not (tmp_path / "photos-detected.mp4").exists()
    frames, rate, streams = probe(tmp_path / "annotated" / "photos-boxes.mp4")
    assert (frames, rate) == (FRAMES, Fraction(10)) and "audio" in streams
    records = [json.loads(x) for x in (tmp_path / "photos.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(FRAMES))
    person = [next(o["box"] for o in t if o["label"] == "person") for t in truth]
    hits = sum(any(x["label"] == "person" and box_iou(x["box"], box) > 0.5 for x in r["detections"])
               for r, box in zip(records, person, strict=True))
    assert hits >= 0.75 * FRAMES
    summary = json.loads((tmp_path / "photos-summary.json").read_text())
    assert summary["frames"] == FRAMES and summary["dropped"] == 0
    assert summary["cost"]["instance"] == "c5.4xlarge"


@pytest.mark.model
def test_batch_data_pipeline_writes_data_only(clips, tmp_path, monkeypatch, capsys):
    d, _ = clips
    monkeypatch.chdir(tmp_path)
    code = main(["run", str(PIPELINES / "batch-data.toml"), "--input", str(d / "photos.mp4"),
                 "--no-dashboard"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "photos-counts.json", "photos-summary.json", "photos.jsonl"]
    assert len((tmp_path / "photos.jsonl").read_text().splitlines()) == FRAMES
    counts = json.loads((tmp_path / "photos-counts.json").read_text())
    assert counts["frames"] == FRAMES
    person = counts["classes"]["person"]
    assert person["frames"] >= 0.75 * FRAMES and person["max_in_frame"] == 1
    summary = json.loads((tmp_path / "photos-summary.json").read_text())
    assert summary["frames"] == FRAMES and "encoder" not in summary


def test_count_line_pipeline_counts_a_car_driving_down_across_the_road(tmp_path, monkeypatch,
                                                                      capsys):
    import numpy as np
    from fakemodel import RedSquares
    from make_clip import encode

    monkeypatch.setattr("vidstream.detector.load_predictor", lambda *a, **k: RedSquares())
    monkeypatch.chdir(tmp_path)

    def images():  # a red "car" (the fake model's class) driving down the frame
        for i in range(30):
            img = np.full((240, 320, 3), 128, np.uint8)
            y = 10 + i * 6
            img[y:y + 30, 140:180] = (255, 0, 0)
            yield img

    encode(tmp_path / "road.mp4", images())
    code = main(["run", str(PIPELINES / "count-line.toml"), "--input", "road.mp4",
                 "--no-dashboard", "-q"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "road-summary.json").read_text())
    road = summary["lines"]["road"]
    assert (road["in"], road["out"]) == (1, 0)  # the file's comment: "in" is downwards
    assert road["by_class"] == {"car": {"in": 1, "out": 0}}
    events = [e for x in (tmp_path / "road.jsonl").read_text().splitlines()
              for e in json.loads(x).get("events", [])]
    assert [(e["line"], e["direction"], e["label"]) for e in events] == [("road", "in", "car")]
    assert probe(tmp_path / "road-counted.mp4")[0] == 30


@pytest.fixture
def http_server(clips):
    """Serves the clips on 127.0.0.1 like a network camera would (stops by itself)."""
    d, _ = clips

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(d)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.model
def test_live_pipeline_on_a_network_stream(http_server, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    url = f"http://viewer:s3cret@{http_server}/photos.ts"
    code = main(["run", str(PIPELINES / "live-camera.toml"), "--input", url, "--no-dashboard"])
    err = capsys.readouterr().err
    assert code == 0, err
    summary = json.loads((tmp_path / "photos-live-summary.json").read_text())
    assert summary["input"]["live"] is True
    # the stream arrives faster than a CPU detector runs: the leaky queue drops the oldest
    # frames and counts them, so every frame decoded is either processed or counted as dropped
    assert summary["stages"]["decode"]["items"] == FRAMES
    assert summary["frames"] + summary["dropped"] == FRAMES and summary["frames"] >= 1
    frames, _, _ = probe(tmp_path / "photos-live.mp4")  # fragmented MP4, readable
    assert frames == summary["frames"]
    records = (tmp_path / "photos-live.jsonl").read_text().splitlines()
    assert len(records) == summary["frames"]
    # credentials never leave the URL
    assert "s3cret" not in err and "s3cret" not in json.dumps(summary)

"""The cost explorer: ``vidstream bench`` measures, ``vidstream report`` compares and advises.

The arithmetic is checked against the EIPredictor write-up's published table, the advice on
hand-made runs, and the commands on real runs of the pipeline.
"""

from __future__ import annotations

import csv
import io
import json
import struct
import subprocess
import sys
from fractions import Fraction

import pytest
from media import red_square_clip
from seed import SEED_ROWS as SEED

from vidstream import ConfigError, Run, load_runs, recommend
from vidstream.bench.report import cheapest, fastest, plot, rank, render
from vidstream.cli import main
from vidstream.cost import lookup
from vidstream.stats import LatencyHistogram
from vidstream.summary import Summary


def seed_summary(name: str, ms: float, frames: int = 100) -> dict:
    """What ``detect --summary`` would have written for one of the write-up's runs."""
    latency = LatencyHistogram()
    for _ in range(frames):
        latency.add(ms / 1000)
    wall = frames * ms / 1000
    s = Summary(frames=frames, wall_s=wall, fps=frames / wall, model_load_s=1.0,
                latency=latency, stages=[], details={"model": "faster_rcnn", "device": "CPU",
                                                     "batch_size": 1})
    return s.with_price(lookup(name)).to_dict()


@pytest.fixture(scope="module")
def seed_runs() -> list[Run]:
    return [Run.from_summary(seed_summary(name, ms)) for name, _, ms, _ in SEED]


def run(label: str, fps: float, usd_per_hour: float | None, p95: float = 100.0,
        batch: int = 1) -> Run:
    """A hand-made run priced the way bench prices it."""
    from vidstream.cost import usd_per_100k_inferences

    per_100k = None if usd_per_hour is None else usd_per_100k_inferences(usd_per_hour, fps)
    return Run(label=label, model="m", device="cpu", batch_size=batch, fps=fps,
               latency_ms={"p50": p95 / 2, "p95": p95}, usd_per_hour=usd_per_hour,
               usd_per_100k_inferences=per_100k)


# -- arithmetic against the write-up ----------------------------------------------------------
@pytest.mark.parametrize(("name", "price", "ms", "published"), SEED)
def test_seed_rows_cost_what_the_write_up_published(seed_runs, name, price, ms, published):
    r = next(r for r in seed_runs if r.label == name)
    assert r.usd_per_hour == price
    assert r.fps == pytest.approx(1000 / ms, rel=1e-3)
    assert r.p50_ms == pytest.approx(ms, rel=0.01)
    # the write-up rounded its inputs; its figures agree with the formula within 2%
    assert r.usd_per_100k_inferences == pytest.approx(published, rel=0.02)


def test_seed_table_sorts_as_published_and_marks_cheapest_and_fastest(seed_runs):
    assert [r.label for r in rank(seed_runs)] == [
        "m5.large+eia.large", "m5.large+eia.xlarge", "p2.xlarge", "p3.2xlarge-2019",
        "c5.4xlarge-2019", "m5.4xlarge-2019"]
    assert cheapest(seed_runs).label == "m5.large+eia.large"
    assert fastest(seed_runs).label == "p3.2xlarge-2019"
    md = render("markdown", seed_runs, recommend(seed_runs))
    rows = [ln for ln in md.splitlines() if ln.startswith("| m5.large+eia.large")]
    assert len(rows) == 1 and "$0.36" in rows[0] and "$2.2" in rows[0]
    assert "cheapest" in rows[0]
    assert "fastest" in next(ln for ln in md.splitlines() if ln.startswith("| p3.2xlarge-2019"))


def test_working_backwards_through_the_seed_table(seed_runs):
    # 5 fps: the eia.large (4.5 fps) is too small, the eia.xlarge is the cheapest that is not
    rec = recommend(seed_runs, target_fps=5)
    assert rec.pick.label == "m5.large+eia.xlarge"
    assert {r.label for r in rec.too_small} == {"m5.large+eia.large", "m5.4xlarge-2019",
                                                 "c5.4xlarge-2019"}
    assert rec.steps[0].startswith("p3.2xlarge-2019")  # the largest first
    assert "too small: 4.5 fps < 5 fps" in next(s for s in rec.steps if "eia.large:" in s)
    assert any(a.startswith("Pick m5.large+eia.xlarge") for a in rec.advice)
    # 10 fps: only the V100 keeps up
    assert recommend(seed_runs, target_fps=10).pick.label == "p3.2xlarge-2019"
    # 150 ms p95: the eia.xlarge (141 ms) is cheaper per hour than the p3
    assert recommend(seed_runs, max_latency_ms=150).pick.label == "m5.large+eia.xlarge"
    # nothing reaches 20 fps: the advice names the fastest and what to try
    none = recommend(seed_runs, target_fps=20)
    assert none.pick is None and not none.meets
    assert "None of the 6 configurations meets 20 fps" in none.advice[-1]
    assert "p3.2xlarge" in none.advice[-1] and "GPU" in none.advice[-1]


# -- the recommendation on hand-made runs -----------------------------------------------------
def test_cheapest_per_hour_wins_a_target_and_the_per_inference_alternative_is_named():
    small = run("small", fps=12, usd_per_hour=0.20)     # $0.46 per 100k
    big = run("big", fps=200, usd_per_hour=1.00)         # $0.14 per 100k
    rec = recommend([big, small], target_fps=10)
    assert rec.pick is small  # one 10 fps stream runs all hour on whichever machine
    assert any("big" in a and "costs less per inference" in a for a in rec.advice)
    # with no target the cheapest per inference is the one to mark
    assert cheapest([big, small]) is big
    # a stream rate the small one cannot sustain
    rec = recommend([big, small], target_fps=50)
    assert rec.pick is big and rec.too_small == [small]
    assert "room for 4 such streams" in " ".join(rec.advice)


def test_both_targets_must_hold():
    fast_laggy = run("laggy", fps=60, usd_per_hour=0.3, p95=900)
    slower_snappy = run("snappy", fps=20, usd_per_hour=0.5, p95=80)
    rec = recommend([fast_laggy, slower_snappy], target_fps=15, max_latency_ms=100)
    assert rec.pick is slower_snappy
    assert "p95 latency 900 ms > 100 ms" in " ".join(rec.steps)
    rec = recommend([fast_laggy, slower_snappy], max_latency_ms=50)
    assert rec.pick is None
    assert "the quickest, snappy" in rec.advice[-1] and "--queue-size" in rec.advice[-1]


def test_unpriced_runs_are_ranked_last_and_never_picked():
    priced = run("priced", fps=5, usd_per_hour=0.1)
    free = run("laptop", fps=50, usd_per_hour=None)
    assert rank([free, priced]) == [priced, free]
    rec = recommend([free, priced], target_fps=30)
    assert rec.pick is None and rec.meets == [free]
    assert "none is priced" in rec.advice[-1]
    assert "--price-per-hour" in " ".join(recommend([free]).advice)


def test_bad_targets_are_refused():
    with pytest.raises(ConfigError, match="target_fps must be a number > 0"):
        recommend([run("a", 1, 1)], target_fps=0)


def test_csv_and_json_reports_carry_every_row(seed_runs):
    rows = list(csv.DictReader(io.StringIO(render("csv", seed_runs))))
    assert [r["label"] for r in rows][:2] == ["m5.large+eia.large", "m5.large+eia.xlarge"]
    assert float(rows[0]["usd_per_100k_inferences"]) == pytest.approx(2.2, rel=0.02)
    data = json.loads(render("json", seed_runs, recommend(seed_runs, target_fps=5)))
    assert data["cheapest"] == "m5.large+eia.large: faster_rcnn cpu batch 1"
    assert data["recommendation"]["pick"] == "m5.large+eia.xlarge: faster_rcnn cpu batch 1"
    assert len(data["runs"]) == 6


def test_plot_is_a_png_with_both_charts(seed_runs, tmp_path):
    image = pytest.importorskip("matplotlib.image")
    out = plot(seed_runs, tmp_path / "cost.png", recommend(seed_runs, target_fps=5))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > height > 100  # two charts side by side
    pixels = image.imread(str(out))
    assert pixels.shape[:2] == (height, width)
    assert pixels.std() > 0.05  # something was drawn


def test_report_files_that_are_not_runs_get_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"runs": [{"label": "x", "model": "m", "batch_size": 1}]}))
    for path, expected in ((tmp_path / "missing.json", "missing.json: no such file"),
                           (bad, "bad.json: not valid JSON"),
                           (other, "other.json: neither a 'vidstream bench --save' file"),
                           (broken, "broken.json: run #1: missing 'fps'")):
        assert main(["report", str(path)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("vidstream: error: ") and expected in err[0]


# -- real runs ---------------------------------------------------------------------------------
def vidstream(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "vidstream", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def photos_clip(media_dir):
    from make_clip import make_clip

    path = media_dir / "bench-photos.mp4"
    make_clip(str(path), scene="photos", width=640, height=360, count=10,
              rate=Fraction(30000, 1001))
    return path


@pytest.fixture(scope="module")
def centernet_bench(photos_clip, centernet, tmp_path_factory):
    """A real bench: the default model, two batch sizes, 8 frames, priced as a c5.4xlarge."""
    out = tmp_path_factory.mktemp("bench") / "c5.json"
    r = vidstream("bench", photos_clip, "--batch-sizes", "1,2", "--frames", 8,
                  "--device", "cpu", "--instance", "c5.4xlarge", "--save", out)
    return r, out


@pytest.mark.model
def test_bench_measures_each_batch_size_with_the_real_pipeline(centernet_bench):
    r, out = centernet_bench
    assert r.returncode == 0, r.stderr
    assert "[1/2] centernet cpu batch 1" in r.stderr and "[2/2] centernet cpu batch 2" in r.stderr
    assert "vidstream bench as c5.4xlarge at $0.68/h" in r.stderr
    data = json.loads(out.read_text())
    assert [x["batch_size"] for x in data["runs"]] == [1, 2]
    for x in data["runs"]:
        s = x["summary"]
        assert x["frames"] == s["frames"] == 8
        assert x["model"] == "centernet" and x["device_used"].startswith("CPU")
        assert x["label"] == x["instance"] == "c5.4xlarge" and x["usd_per_hour"] == 0.68
        assert x["price_date"] == "2026-11" and "On-Demand" in x["price_source"]
        # the very numbers detect --summary writes, from the same Summary
        assert x["fps"] == s["fps"] > 0
        assert x["latency_ms"] == s["latency_ms"]
        assert 0 < x["latency_ms"]["p50"] <= x["latency_ms"]["p95"]
        assert x["usd_per_100k_inferences"] == s["cost"]["usd_per_100k_inferences"]
        # computed from the unrounded rate; fps is rounded to 3 decimals in the file
        assert x["usd_per_100k_inferences"] == pytest.approx(
            0.68 * 100_000 / (3600 * x["fps"]), rel=0.0005 / x["fps"] + 1e-12)
        assert x["model_load_s"] == s["model_load_s"] > 0
        assert x["warmup_s"] > 0 and x["startup_s"] > x["model_load_s"]
        assert set(x["busy_shares"]) == {"decode", "detect", "sink"}
        assert all(0 <= v <= 1.01 for v in x["busy_shares"].values())
        assert x["peak_memory_mib"] > 200  # TensorFlow and the model alone take more
        assert s["stages"]["sink"]["items"] == 8  # annotated video written, every frame
    machine = data["machine"]
    assert machine["cpus"] >= 1 and machine["tensorflow"] and machine["measured_at"]
    assert data["input"]["width"] == 640 and data["input"]["frames_measured"] == 8


@pytest.fixture(scope="module")
def tiny_bench(media_dir, tiny_model, tmp_path_factory):
    """A second machine: the red-square model, one thread, priced by hand, gpu asked for."""
    clip = media_dir / "bench-red.mp4"
    red_square_clip(clip, frames=12)
    out = tmp_path_factory.mktemp("bench") / "laptop.json"
    r = vidstream("bench", clip, "--model", tiny_model, "--device", "cpu,gpu",
                  "--threads", 1, "--batch-sizes", 2, "--no-video", "--price-per-hour", 0.05,
                  "--label", "laptop", "--save", out)
    return r, out


def test_bench_threads_price_and_missing_gpu(tiny_bench):
    r, out = tiny_bench
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    cpu = data["runs"][0]
    assert cpu["threads"] == 1 and cpu["batch_size"] == 2 and cpu["frames"] == 12
    assert cpu["label"] == "laptop" and cpu["instance"] is None
    assert cpu["usd_per_hour"] == 0.05 and cpu["price_source"] == "given on the command line"
    assert cpu["configuration"] == "laptop: red_square cpu batch 2 1 threads"
    assert set(cpu["busy_shares"]) == {"decode", "detect", "sink"}  # detections sink only
    if data["machine"]["tensorflow_gpus"]:
        assert data["runs"][1]["device_used"].startswith("GPU")
    else:
        assert data["skipped"] == [{"configuration": "red_square gpu batch 2 1 threads",
                                    "reason": "no GPU is visible to TensorFlow"}]
        assert "skipped: no GPU is visible to TensorFlow" in r.stderr


@pytest.mark.model
def test_report_merges_two_machines(centernet_bench, tiny_bench, tmp_path):
    files = [centernet_bench[1], tiny_bench[1]]
    runs = load_runs(files)
    assert len(runs) == 3
    r = vidstream("report", *files, "--target-fps", 1, "--plot", tmp_path / "c.png")
    assert r.returncode == 0, r.stderr
    table = r.stdout.split("latency p50 per frame")[0]
    rows = [ln.strip() for ln in table.splitlines() if "batch" in ln]
    assert len(rows) == 3
    assert rows[0].startswith("laptop: red_square")  # $0.05/h is cheapest per inference
    assert "cheapest" in rows[0] and "$0.05" in rows[0]
    assert all(ln.startswith("c5.4xlarge: centernet cpu batch") for ln in rows[1:])
    assert "Working backwards from the largest configuration:" in r.stdout
    assert "1. c5.4xlarge: centernet" in r.stdout  # the dearest first
    assert "Pick laptop: red_square" in r.stdout
    assert "cost per 100k inferences" in r.stdout and "█" in r.stdout
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    md = tmp_path / "r.md"
    assert vidstream("report", *files, "--format", "markdown", "-o", md).returncode == 0
    assert md.read_text().startswith("| configuration | $/hour | fps |")


def test_a_configuration_that_fails_is_named_and_the_exit_code_says_so(photos_clip,
                                                                         tmp_path):
    not_a_model = tmp_path / "empty-model"
    not_a_model.mkdir()
    out = tmp_path / "failed.json"
    r = vidstream("bench", photos_clip, "--model", not_a_model, "--frames", 2,
                  "--instance", "m5.large", "--save", out)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("vidstream: error: empty-model auto batch 1: ")  # bench: auto, as detect
    assert "holds no saved_model.pb" in last and "Traceback" not in r.stderr
    assert not out.exists()  # nothing measured, nothing saved


def test_report_reads_detect_summaries_with_the_same_numbers(media_dir, tiny_model, tmp_path):
    clip = media_dir / "bench-summary.mp4"
    red_square_clip(clip, frames=10)
    summary = tmp_path / "s.json"
    assert main(["detect", str(clip), "--no-video", "--summary", str(summary), "--model",
                 str(tiny_model), "--instance", "m5.large", "--no-dashboard", "-q"]) == 0
    s = json.loads(summary.read_text())
    (r,) = load_runs([summary])
    assert r.label == "m5.large" and r.frames == 10
    assert r.fps == s["fps"] and r.latency_ms == s["latency_ms"]
    assert r.usd_per_100k_inferences == s["cost"]["usd_per_100k_inferences"]
    assert r.usd_per_hour == 0.096 and r.model == "red_square"


def test_bench_refusals_come_before_any_work(tmp_path, photos_clip):
    missing = vidstream("bench", tmp_path / "none.mp4", "--instance", "c5.4xlarge")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == (
        f"vidstream: error: {tmp_path / 'none.mp4'}: no such file")
    saved = tmp_path / "exists.json"
    saved.write_text("precious")
    r = vidstream("bench", photos_clip, "--save", saved)
    assert r.returncode == 1 and "already exists (use -y to overwrite)" in r.stderr
    assert saved.read_text() == "precious"
    r = vidstream("bench", photos_clip, "--label", "box")
    assert r.returncode == 1 and "--label names a price" in r.stderr
    r = vidstream("bench", photos_clip, "--instance", "z9.huge")
    assert r.returncode == 1 and "unknown instance 'z9.huge'" in r.stderr
    r = vidstream("bench", photos_clip, "--model", tmp_path / "no-model")
    assert r.returncode == 1 and "no-model: no such model" in r.stderr.splitlines()[-1]
    r = vidstream("bench", "rtsp://user:secret@127.0.0.1:9/cam", "--instance", "m5.large")
    assert r.returncode == 1 and "not a live source" in r.stderr and "secret" not in r.stderr
    r = vidstream("bench", photos_clip, "--batch-sizes", "1,0")
    assert r.returncode == 2 and "expected integers >= 1" in r.stderr
    assert "Traceback" not in missing.stderr + r.stderr

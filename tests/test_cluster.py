"""Many videos on a local Ray cluster, for real: one task per video, a missing input among good
ones, a worker killed mid-video and retried, Ctrl-C, and the merged summary."""

from __future__ import annotations

import json
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest
from media import red_square_clip

from vidstream.config import RunConfig
from vidstream.cost import Price

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from vidstream.cluster import connect, run_on_ray  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster with 2 CPUs, on loopback, for this module."""
    yield connect(None, num_cpus=2)
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, tuple[Path, int]]:
    d = tmp_path_factory.mktemp("clips")
    out = {}
    for name, n in (("a", 12), ("b", 30), ("c", 21)):
        red_square_clip(d / f"{name}.mp4", frames=n, width=160, height=120,
                        rate=Fraction(25))
        out[name] = (d / f"{name}.mp4", n)
    red_square_clip(d / "long.mp4", frames=75, width=160, height=120, rate=Fraction(25))
    out["long"] = (d / "long.mp4", 75)
    return out


def frames_in(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def config(src: Path, out: Path, model: Path, **kw) -> RunConfig:
    stem = src.stem
    return RunConfig(input=str(src), video=str(out / f"{stem}.mp4"),
                     detections=str(out / f"{stem}.jsonl"), model=str(model), **kw)


def test_videos_run_as_tasks_and_a_missing_one_is_reported(cluster, clips, tiny_model,
                                                           tmp_path):
    configs = [config(clips[n][0], tmp_path, tiny_model) for n in ("a", "b", "c")]
    configs.insert(1, config(tmp_path / "missing.mp4", tmp_path, tiny_model))
    result = run_on_ray(configs, price=Price("c5.xlarge", 0.17))
    assert result.exit_code == 3  # some completed, one failed
    states = [t.state for t in result.tasks]
    assert states == ["ended", "failed", "ended", "ended"]
    assert "missing.mp4: no such file" in result.tasks[1].error
    summary = result.summary()
    for name, task in zip(("a", "b", "c"), [result.tasks[i] for i in (0, 2, 3)], strict=True):
        n = clips[name][1]
        assert task.summary["frames"] == n
        assert frames_in(tmp_path / f"{name}.mp4") == n
        assert len((tmp_path / f"{name}.jsonl").read_text().splitlines()) == n
    # the merged summary is the sum of its parts
    assert summary["frames"] == 12 + 30 + 21 == sum(s["frames"] for s in summary["streams"])
    assert summary["stages"]["detect"]["items"] == 63
    assert [s["state"] for s in summary["streams"]] == states
    assert summary["streams"][1]["frames"] == 0 and summary["cluster"]["failed"] == 1
    assert summary["cost"]["usd_total"] == pytest.approx(0.17 * result.wall_s / 3600)
    assert sum(s["cost"]["share"] for s in summary["streams"]) == pytest.approx(1.0)
    json.dumps(summary)  # plain data, as --summary writes it


def test_a_worker_killed_mid_video_is_retried_to_a_complete_output(cluster, clips,
                                                                    tiny_model, tmp_path):
    src, n = clips["long"]
    jsonl = tmp_path / "long.jsonl"
    killed: list[int] = []

    def kill_when_halfway() -> None:
        # the video is read at its own rate (3 s): kill its worker once frames are written
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 10:
                for p in psutil.process_iter(["cmdline"]):
                    if "ray::run_task" in " ".join(p.info["cmdline"] or []):
                        p.kill()
                        killed.append(p.pid)
                        return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_halfway, daemon=True)
    killer.start()
    result = run_on_ray([config(src, tmp_path, tiny_model, realtime=True)], retries=1)
    killer.join(5)
    assert killed, "the worker was never killed"
    assert result.exit_code == 0, result.tasks[0].error
    assert result.tasks[0].state == "ended" and result.tasks[0].summary["frames"] == n
    # the retry's outputs are whole: every frame once, nothing of the killed attempt
    assert frames_in(tmp_path / "long.mp4") == n
    indices = [json.loads(x)["index"] for x in jsonl.read_text().splitlines()]
    assert indices == list(range(n))


def test_a_task_lost_on_every_try_is_reported(cluster, clips, tiny_model, tmp_path):
    src, _ = clips["long"]
    stop = threading.Event()

    def kill_every_worker() -> None:
        while not stop.is_set():
            for p in psutil.process_iter(["cmdline"]):
                if "ray::run_task" in " ".join(p.info["cmdline"] or []):
                    p.kill()
            time.sleep(0.2)

    killer = threading.Thread(target=kill_every_worker, daemon=True)
    killer.start()
    try:
        result = run_on_ray([config(src, tmp_path, tiny_model, realtime=True)], retries=1)
    finally:
        stop.set()
        killer.join(5)
    assert result.exit_code == 1
    assert result.tasks[0].state == "failed"
    assert result.tasks[0].error.startswith("task lost:")


def test_ctrl_c_cancels_the_rest_and_keeps_what_finished(cluster, clips, tiny_model, tmp_path):
    first = config(clips["a"][0], tmp_path, tiny_model)
    slow = [config(clips["long"][0], tmp_path / f"s{i}", tiny_model, realtime=True)
            for i in range(2)]
    for i in range(2):
        (tmp_path / f"s{i}").mkdir()

    def interrupt_after_the_first(counts: dict[str, int], elapsed: float) -> None:
        if counts["done"] >= 1:
            raise KeyboardInterrupt

    result = run_on_ray([first, *slow], progress=interrupt_after_the_first, poll_s=0.1)
    assert result.exit_code == 130 and result.interrupted
    assert result.tasks[0].state == "ended"
    assert frames_in(tmp_path / "a.mp4") == clips["a"][1]  # finished outputs stay intact
    assert [t.state for t in result.tasks[1:]] == ["cancelled", "cancelled"]
    assert result.summary()["interrupted"] is True


def test_detect_on_the_cluster_from_the_command_line(cluster, clips, tiny_model, tmp_path,
                                                     capsys):
    from vidstream.cli import main

    a, b = clips["a"][0], clips["b"][0]
    code = main(["detect", str(a), str(b), "-o", str(tmp_path / "{stem}-out.mp4"),
                 "--model", str(tiny_model), "--cluster", "ray",
                 "--summary", str(tmp_path / "run.json")])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["frames"] == clips["a"][1] + clips["b"][1]
    assert [s["stem"] for s in summary["streams"]] == ["a", "b"]
    assert frames_in(tmp_path / "a-out.mp4") == clips["a"][1]
    assert frames_in(tmp_path / "b-out.mp4") == clips["b"][1]
    assert "fps across the cluster" in capsys.readouterr().err

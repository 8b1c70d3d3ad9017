"""The command line: help, refusals before work, one-line errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import av
import pytest
from media import red_square_clip

from vidstream.cli import main


@pytest.fixture(scope="module")
def clip(media_dir):
    path = media_dir / "cli.mp4"
    red_square_clip(path, frames=20, audio=True)
    return path


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "vidstream", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_help_explains_every_detect_option(capsys):
    with pytest.raises(SystemExit) as e:
        main(["detect", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for option in ("--output", "--overwrite", "--detections", "--summary", "--model",
                   "--threshold", "--batch-size", "--preset", "--instance", "--price-per-hour",
                   "--no-dashboard", "--fragmented", "--max-pixels", "--reconnect"):
        assert option in out


def test_detect_with_own_model_writes_everything(clip, tmp_path, tiny_model, capsys):
    out, jl, sj = tmp_path / "o.mp4", tmp_path / "d.jsonl", tmp_path / "s.json"
    code = main(["detect", str(clip), "-o", str(out), "--model", str(tiny_model),
                 "--detections", str(jl), "--summary", str(sj), "--instance", "c5.4xlarge",
                 "--no-dashboard"])
    assert code == 0
    summary = json.loads(sj.read_text())
    assert summary["frames"] == 20
    for key in ("wall_s", "fps", "model_load_s"):
        assert summary[key] > 0
    assert set(summary["latency_ms"]) >= {"p50", "p95"}
    assert set(summary["stages"]) == {"decode", "detect", "sink"}
    for stage in summary["stages"].values():
        assert {"items", "busy_s", "starved_s", "blocked_s", "fps"} <= set(stage)
        assert stage["items"] == 20
    cost = summary["cost"]
    assert cost["instance"] == "c5.4xlarge" and cost["usd_per_hour"] == 0.68
    assert cost["usd_per_100k_inferences"] == pytest.approx(
        0.68 * 100_000 / (3600 * summary["fps"]), rel=1e-3)
    assert cost["usd_total"] > 0
    assert len(jl.read_text().splitlines()) == 20
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 20
    text = capsys.readouterr().err
    assert "vidstream summary" in text and "per 100k inferences" in text


def test_existing_output_is_refused_before_any_work(clip, tmp_path, tiny_model):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"precious")
    r = run_cli("detect", clip, "-o", out, "--model", tiny_model, "--no-dashboard")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"vidstream: error: {out}: already exists (use -y to overwrite)")
    assert "Traceback" not in r.stderr
    assert out.read_bytes() == b"precious"


@pytest.mark.parametrize("case", ["missing", "text", "bad-model", "bad-dir", "no-npm"])
def test_errors_are_one_line_with_the_cause(case, clip, tmp_path, tiny_model, capsys,
                                            monkeypatch):
    out = tmp_path / "o.mp4"
    args = ["detect", str(clip), "-o", str(out), "--model", str(tiny_model), "--no-dashboard"]
    expected = ""
    if case == "missing":
        args[1] = str(tmp_path / "missing.mp4")
        expected = "missing.mp4: no such file"
    elif case == "text":
        txt = tmp_path / "readme.mp4"
        txt.write_text("hello\n" * 100)
        args[1] = str(txt)
        expected = "readme.mp4: not a readable video"
    elif case == "bad-model":
        args[5] = str(tmp_path / "no-model")
        expected = "no-model: no such model"
    elif case == "bad-dir":
        args[3] = str(tmp_path / "missing-dir" / "o.mp4")
        expected = "does not exist"
    elif case == "no-npm":
        monkeypatch.setenv("VIDSTREAM_CACHE", str(tmp_path / "cache"))
        monkeypatch.setenv("PATH", str(tmp_path))
        args[5] = "centernet"
        expected = "npm was not found"
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("vidstream: error: ")
    assert expected in err[-1]
    assert not out.exists()


def test_traceback_free_exit_code_from_a_subprocess(tmp_path):
    r = run_cli("detect", tmp_path / "none.mp4", "-o", tmp_path / "o.mp4", "--no-dashboard")
    assert r.returncode == 1
    assert r.stderr.strip() == f"vidstream: error: {tmp_path / 'none.mp4'}: no such file"


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["detect", "x.mp4", "--batch-size", "0"])
    assert e.value.code == 2
    assert "must be >= 1" in capsys.readouterr().err


def test_unknown_instance_lists_known_ones(clip, tmp_path, tiny_model, capsys):
    code = main(["detect", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_model),
                 "--instance", "z9.huge", "--no-dashboard"])
    assert code == 1
    err = capsys.readouterr().err
    assert "unknown instance 'z9.huge'" in err and "c5.4xlarge" in err


def test_waiting_for_a_paced_source_is_starving_not_work(clip, tmp_path, tiny_model):
    # --realtime reads at the clip's own rate, as a live sender would deliver it: the decoder
    # mostly waits, and must not be named the bottleneck for it.
    summary = tmp_path / "s.json"
    assert main(["detect", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_model),
                 "--realtime", "--summary", str(summary), "--no-dashboard", "-q"]) == 0
    s = json.loads(summary.read_text())
    decode = s["stages"]["decode"]
    assert decode["starved_s"] > 0.3  # 20 frames at 29.97 fps: about 0.6 s of waiting
    assert decode["busy_share"] < 0.5

"""Tracking and counting from the command line and from pipeline files (the numpy red-square
model stands in for the detector: the square crosses the middle of the frame once, left to
right)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakemodel import RedSquares
from media import red_square_clip

from vidstream.cli import main

LINE = "door:0.5,1,0.5,0"  # drawn upwards: left to right across it is "in"


@pytest.fixture
def clip(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr("vidstream.detector.load_predictor", lambda *a, **k: RedSquares())
    path = tmp_path / "square.mp4"
    red_square_clip(path, frames=30)
    return path


def check_counted(tmp_path: Path) -> None:
    summary = json.loads((tmp_path / "s.json").read_text())
    door = summary["lines"]["door"]
    assert (door["in"], door["out"]) == (1, 0)
    assert door["by_class"] == {"car": {"in": 1, "out": 0}}
    assert summary["tracking"]["tracks"] == 1
    records = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert len(records) == 30
    ids = {d["track"] for r in records for d in r["detections"]}
    assert ids == {1}
    events = [(e["line"], e["direction"], e["track"]) for r in records
              for e in r.get("events", [])]
    assert events == [("door", "in", 1)]


def test_detect_with_a_line_tracks_and_counts(clip, tmp_path):
    code = main(["detect", str(clip), "-o", str(tmp_path / "o.mp4"), "--line", LINE,
                 "--detections", str(tmp_path / "d.jsonl"), "--summary", str(tmp_path / "s.json"),
                 "-q"])
    assert code == 0
    check_counted(tmp_path)


def test_run_with_line_tables(clip, tmp_path):
    toml = tmp_path / "count.toml"
    toml.write_text(f'[output]\nvideo = "{tmp_path / "o.mp4"}"\n'
                    f'detections = "{tmp_path / "d.jsonl"}"\nsummary = "{tmp_path / "s.json"}"\n'
                    '[track]\nenabled = true\n[[line]]\nname = "door"\n'
                    'points = [0.5, 1, 0.5, 0]\n')
    code = main(["run", str(toml), "--input", str(clip), "--no-dashboard", "-q"])
    assert code == 0
    check_counted(tmp_path)


def test_track_alone_gives_ids_and_no_counts(clip, tmp_path):
    code = main(["detect", str(clip), "--no-video", "--track", "--detections",
                 str(tmp_path / "d.jsonl"), "-q"])
    assert code == 0
    records = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert {d["track"] for r in records for d in r["detections"]} == {1}
    assert not any("events" in r for r in records)


@pytest.mark.parametrize("args, words", [
    (["--line", "door:1,2,3"], "argument --line: line 'door:1,2,3': expected 4 numbers"),
    (["--zone", "z:0,0;1,1"], "argument --zone: zone 'z'"),
    (["--track-min-iou", "1.5"], "--track-min-iou"),
    (["--count-anchor", "top"], "--count-anchor"),
])
def test_bad_counting_options_are_usage_errors(clip, tmp_path, capsys, args, words):
    with pytest.raises(SystemExit) as exit_:
        main(["detect", str(clip), "-o", str(tmp_path / "o.mp4"), *args])
    assert exit_.value.code == 2
    assert words in capsys.readouterr().err


def test_a_bad_line_table_names_the_table(clip, tmp_path, capsys):
    toml = tmp_path / "bad.toml"
    toml.write_text(f'[output]\nvideo = "{tmp_path / "o.mp4"}"\n[[line]]\nname = "door"\n'
                    'points = [0, 1]\n')
    assert main(["run", str(toml), "--input", str(clip)]) == 1
    err = capsys.readouterr().err
    assert "[[line]] #1: points = [0, 1]: expected x1, y1, x2, y2" in err


def test_the_final_table_and_the_progress_lines_show_the_counts(clip, tmp_path, capsys):
    code = main(["detect", str(clip), "-o", str(tmp_path / "o.mp4"), "--line", LINE,
                 "--progress-interval", "0.05"])
    assert code == 0
    err = capsys.readouterr().err
    assert "line door" in err and "in 1, out 0  (car 1/0)" in err  # the final table
    assert "counts: door in " in err  # the plain progress lines (not a terminal here)

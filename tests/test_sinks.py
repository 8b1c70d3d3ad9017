"""Writers: the annotated video keeps rate, timestamps, frame count and audio; JSON lines."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import pytest
from media import red_square_clip

from vidstream import (
    DetectionsWriter,
    Detector,
    FunctionStage,
    OutputError,
    Pipeline,
    StageError,
    VideoSource,
    VideoWriter,
)
from vidstream.sinks import check_output


def probe(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        pts = [f.pts for f in c.decode(video=0)]
        audio = [s for s in c.streams if s.type == "audio"]
        return {
            "frames": len(pts), "pts": pts, "rate": v.average_rate, "tb": v.time_base,
            "size": (v.width, v.height), "audio": audio[0].codec_context.name if audio else None,
            "audio_s": float(audio[0].duration * audio[0].time_base) if audio and
            audio[0].duration else None,
        }


@pytest.mark.parametrize("rate", [Fraction(30000, 1001), Fraction(25), Fraction(24000, 1001)])
def test_output_keeps_rate_timestamps_and_frame_count(rate, tmp_path, tiny_model):
    src = tmp_path / "in.mp4"
    red_square_clip(src, frames=24, rate=rate, audio=True)
    out = tmp_path / "out.mp4"
    summary = Pipeline(VideoSource(src), [Detector(tiny_model)], [VideoWriter(out)]).run()
    a, b = probe(src), probe(out)
    assert summary.frames == a["frames"] == b["frames"] == 24
    assert b["rate"] == rate
    assert b["size"] == a["size"]
    # same presentation times, whatever time base the muxer chose
    assert [p * b["tb"] for p in b["pts"]] == [p * a["tb"] for p in a["pts"]]
    assert b["audio"] == "aac"
    assert b["audio_s"] == pytest.approx(a["audio_s"], abs=0.05)


def test_boxes_are_drawn_on_the_detected_object(tmp_path, tiny_model):
    src = tmp_path / "in.mp4"
    boxes = red_square_clip(src, frames=10, width=320, height=240)
    out = tmp_path / "out.mp4"
    Pipeline(VideoSource(src), [Detector(tiny_model)], [VideoWriter(out)]).run()
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    x1, y1, _, y2 = boxes[0]
    # the box outline sits on the square's edge; the gray background elsewhere is untouched
    edge = frame[y1 + 10 : y2 - 10, max(x1 - 1, 0)]
    assert abs(edge.astype(int) - 128).max() > 40
    assert abs(frame[5, 300].astype(int) - 128).max() < 12


def test_detections_jsonl_has_one_line_per_frame_with_pixel_boxes(tmp_path, tiny_model):
    src = tmp_path / "in.mp4"
    boxes = red_square_clip(src, frames=12)
    jl = tmp_path / "d.jsonl"
    Pipeline(VideoSource(src), [Detector(tiny_model)], [DetectionsWriter(jl)]).run()
    lines = [json.loads(line) for line in jl.read_text().splitlines()]
    assert [r["index"] for r in lines] == list(range(12))
    assert lines[3]["time"] == pytest.approx(3 * 1001 / 30000, abs=1e-6)
    for r, box in zip(lines, boxes, strict=True):
        (d,) = r["detections"]
        assert d["label"] == "car" and d["class_id"] == 3 and d["score"] == pytest.approx(0.9)
        assert d["box"] == pytest.approx(list(box), abs=3)  # H.264 blurs edges a little


def test_fragmented_output_starts_at_zero_and_is_readable(tmp_path, tiny_model):
    src = tmp_path / "in.mp4"
    red_square_clip(src, frames=20)
    out = tmp_path / "frag.mp4"
    Pipeline(VideoSource(src), [Detector(tiny_model)], [VideoWriter(out, fragmented=True)]).run()
    a, b = probe(src), probe(out)
    assert b["frames"] == 20
    assert [p * b["tb"] for p in b["pts"]] == [p * a["tb"] for p in a["pts"]]


def test_output_written_before_an_error_is_finalized_and_playable(tmp_path, tiny_model):
    src = tmp_path / "in.mp4"
    red_square_clip(src, frames=60)
    out = tmp_path / "partial.mp4"

    def explode(frame):
        if frame.index == 40:
            raise RuntimeError("model exploded")
        return frame

    p = Pipeline(VideoSource(src), [Detector(tiny_model), FunctionStage(explode, "explode")],
                 [VideoWriter(out)])
    with pytest.raises(StageError, match="explode.*frame 40.*model exploded"):
        p.run()
    assert probe(out)["frames"] == 40


def test_check_output_refuses_before_work(tmp_path):
    existing = tmp_path / "x.mp4"
    existing.touch()
    with pytest.raises(OutputError, match="already exists.*-y"):
        check_output(existing, overwrite=False)
    check_output(existing, overwrite=True)
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "no" / "dir" / "x.mp4", overwrite=False)
    with pytest.raises(OutputError, match="is a directory"):
        check_output(tmp_path, overwrite=True)

"""Writers: the annotated video keeps rate, timestamps, frame count and audio; JSON lines."""

from __future__ import annotations

import json
import logging
from fractions import Fraction

import av
import numpy as np
import pytest
from media import red_square_clip

from vidstream import (
    DetectionsWriter,
    Detector,
    Frame,
    FunctionStage,
    OutputError,
    Pipeline,
    StageError,
    VideoSource,
    VideoWriter,
)
from vidstream.frames import StreamInfo
from vidstream.sinks import AudioCopier, check_output


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
    with pytest.raises(OutputError, match=r"x\.mp4: already exists \(see overwrite\)$") as err:
        check_output(existing, overwrite=False)
    assert err.value.param == "overwrite"
    check_output(existing, overwrite=True)
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "no" / "dir" / "x.mp4", overwrite=False)
    with pytest.raises(OutputError, match="is a directory"):
        check_output(tmp_path, overwrite=True)


# -- audio: never silently lost, never costing the video -----------------------------------------
@pytest.fixture
def vidstream_warnings(caplog, monkeypatch):
    """Warnings on the ``vidstream`` logger, each once (the CLI may have turned its
    propagation off, so caplog's handler goes on the logger itself)."""
    logger = logging.getLogger("vidstream")
    monkeypatch.setattr(logger, "propagate", False)
    logger.addHandler(caplog.handler)
    with caplog.at_level(logging.WARNING, logger="vidstream"):
        yield caplog
    logger.removeHandler(caplog.handler)


def test_audio_copy_is_counted(tmp_path, vidstream_warnings):
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    red_square_clip(src, frames=12, audio=True)
    writer = VideoWriter(out)
    Pipeline(VideoSource(src), [], [writer]).run()
    audio = writer.describe()["audio"]
    assert audio["packets"] > 0 and (audio["errors"], audio["error"]) == (0, None)
    assert not vidstream_warnings.records
    # no audio in the input (or audio=False): no audio counters at all
    silent = VideoWriter(tmp_path / "silent.mp4", audio=False)
    Pipeline(VideoSource(src), [], [silent]).run()
    assert "audio" not in silent.describe()


def test_unreadable_input_audio_is_a_warning_not_silence(tmp_path, vidstream_warnings):
    """Regression: an input whose audio could not be opened gave a silent output, unsaid."""
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    info = StreamInfo(uri=str(broken), width=64, height=48, rate=Fraction(25),
                      time_base=Fraction(1, 25), path=str(broken), has_audio=True)
    out = tmp_path / "out.mp4"
    writer = VideoWriter(out)
    writer.open(info)
    for i in range(5):
        writer.write(Frame.from_array(np.full((48, 64, 3), 40 * i, np.uint8), i, i,
                                      Fraction(1, 25)))
    writer.close()
    cause = "cannot read the input's audio: Invalid data found when processing input"
    assert writer.describe()["audio"] == {"packets": 0, "errors": 1, "error": cause}
    assert [r.getMessage() for r in vidstream_warnings.records] == [
        f"{broken}: {cause}; the output has no audio"]
    assert probe(out)["frames"] == 5 and probe(out)["audio"] is None  # the video is whole


def test_audio_write_errors_are_counted_and_warned_once(tmp_path, monkeypatch,
                                                        vidstream_warnings):
    """Regression: an audio packet the muxer refused stopped the run (OutputError): audio
    cost the video. Now it is skipped, counted, and said once."""
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    red_square_clip(src, frames=24, audio=True)

    class Refusing:  # the output container, refusing audio packets 3 to 7
        def __init__(self, container):
            self.container, self.calls = container, 0

        def add_stream_from_template(self, stream):
            return self.container.add_stream_from_template(stream)

        def mux(self, packet):
            self.calls += 1
            if 3 <= self.calls <= 7:
                raise av.error.InvalidDataError(1094995529, "Invalid data found")
            self.container.mux(packet)

    real_init = AudioCopier.__init__
    monkeypatch.setattr(AudioCopier, "__init__",
                        lambda self, path, output: real_init(self, path, Refusing(output)))
    writer = VideoWriter(out)
    summary = Pipeline(VideoSource(src), [], [writer]).run()
    audio = writer.describe()["audio"]
    assert audio["errors"] == 5 and audio["packets"] > 0
    assert audio["error"] == "an audio packet could not be written: Invalid data found"
    assert [r.getMessage() for r in vidstream_warnings.records] == [
        f"{src}: an audio packet could not be written: Invalid data found; it is skipped, "
        "and later failures are only counted"]
    assert probe(out)["frames"] == summary.frames == 24
    assert probe(out)["audio"] == "aac"


def test_the_sinks_package_exports():
    import vidstream.sinks as sinks
    from vidstream.settings import DEFAULTS

    assert sinks.__all__ == ["FRAGMENTED_MOVFLAGS", "AudioCopier", "ClassCounter",
                             "DetectionsWriter", "OutputFile", "VideoWriter", "check_distinct",
                             "check_output", "check_outputs", "write_atomic"]
    assert all(getattr(sinks, name) is not None for name in sinks.__all__)
    writer = VideoWriter("x.mp4")
    assert (writer.codec, writer.preset) == (DEFAULTS.codec, DEFAULTS.preset)


def audio_packets(path):
    """The first audio stream's packets as (bytes, presentation time as a Fraction, duration)."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        return [(bytes(p), p.pts * p.time_base, p.duration * p.time_base)
                for p in c.demux(stream) if p.size]


def test_audio_is_copied_packet_for_packet_not_re_encoded(tmp_path, tiny_model):
    """Same bytes at the same times: a re-encode (even to the same codec) changes both."""
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    red_square_clip(src, frames=24, audio=True)
    Pipeline(VideoSource(src), [Detector(tiny_model)], [VideoWriter(out)]).run()
    a, b = audio_packets(src), audio_packets(out)
    assert len(b) > 10
    assert b == a[: len(b)]  # identical packets, identical timestamps, in order
    # ... up to the end of the video, within one packet
    _, last_start, last_duration = b[-1]
    assert last_start + 2 * last_duration >= Fraction(24 * 1001, 30000)

"""Remote models without Triton: URIs, letterboxing, and the tfserving:// client against an
in-process server built on TF Serving's official protos (retries, timeouts, fallback)."""

from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest
from tfserving_server import TFServingStandIn
from tinymodel import RED, red_square_frames

from vidstream import Detector, EIPredictor, box_iou
from vidstream.backends import entries, resolve
from vidstream.backends.base import LoadOptions
from vidstream.backends.remote import (
    Endpoint,
    RemoteError,
    RemoteUnavailableError,
    is_remote,
    letterbox,
    remote_ref,
)
from vidstream.backends.remote_stats import ServerCounts, ServerUsage
from vidstream.backends.tfserving import TFServingPredictor
from vidstream.errors import ConfigError, ModelNotFoundError

pytest.importorskip("tensorflow_serving")


def find_red(feed):
    """A numpy red-square detector with the OD API outputs (exact boxes), thread safe."""
    images = np.asarray(next(iter(feed.values()))).astype(np.int32)
    n, h, w = images.shape[:3]
    boxes = np.zeros((n, 1, 4), np.float32)
    scores = np.zeros((n, 1), np.float32)
    for i, img in enumerate(images):
        mask = (img[..., 0] > 180) & (img[..., 1] < 80) & (img[..., 2] < 80)
        ys, xs = np.nonzero(mask)
        if len(ys):
            boxes[i, 0] = [ys.min() / h, xs.min() / w, (ys.max() + 1) / h, (xs.max() + 1) / w]
            scores[i, 0] = 0.9
    return {"detection_boxes": boxes, "detection_scores": scores,
            "detection_classes": np.full((n, 1), 3.0, np.float32),
            "num_detections": (scores[:, 0] > 0).astype(np.float32)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- references ----------------------------------------------------------------------------
def test_uris_parse_with_their_options_and_bad_ones_say_why():
    e = Endpoint.parse("tfserving://[::1]:9000/m/3?timeout=2.5&inflight=8")
    assert (e.host, e.port, e.model, e.version, e.timeout, e.inflight) == (
        "::1", 9000, "m", "3", 2.5, 8)
    assert e.url == "tfserving://[::1]:9000/m/3"
    assert Endpoint.parse("triton://h/m").port == 8001
    for bad in ("triton://h:1", "triton://h:1/m?retries=3", "triton://h:1/m?timeout=0",
                "triton://h:x/m"):
        with pytest.raises(ConfigError):
            Endpoint.parse(bad)
    assert is_remote("triton://h/m") and not is_remote("triton.pb")
    assert remote_ref("triton://h/m?timeout=1", "/x", True) == "triton://h/m?timeout=1&fallback=%2Fx"
    with pytest.raises(ConfigError):
        remote_ref("/models/m", "/x", False)


def test_the_registry_routes_uris_to_the_remote_backends():
    names = [e.name for e in entries() if e.matches("triton://h:1/m")]
    assert names == ["triton"]
    assert [e.name for e in entries() if e.matches("tfserving://h:1/m")] == ["tfserving"]


def test_letterbox_then_unbox_gives_the_frames_own_boxes():
    frame = np.full((1, 1080, 1920, 3), 128, np.uint8)
    frame[0, 300:500, 1000:1400] = RED
    x, box = letterbox(frame, (512, 512))
    assert x.shape == (1, 512, 512, 3) and x.nbytes == 786432  # 0.79 MB, not 6.2 MB
    found = box.unbox(find_red({"x": x})["detection_boxes"])[0, 0]
    px = [found[1] * 1920, found[0] * 1080, found[3] * 1920, found[2] * 1080]
    assert box_iou(px, [1000, 300, 1400, 500]) > 0.97


# -- the tfserving:// client against the proto server ----------------------------------------
def test_tfserving_detects_through_the_detector_with_raw_uint8_tensors(no_thread_leak):
    with TFServingStandIn("redsquare", find_red) as server:
        detector = Detector(server.endpoint, threshold=0.5)
        truth = []
        with detector:
            for image, box in red_square_frames(6):
                det = detector.detect(image)
                truth.append((det, box))
        for det, box in truth:
            assert len(det) == 1 and box_iou(next(iter(det)).box, box) > 0.99
        p = detector.predictor
        assert p.format == "tfserving" and p.thread_safe
        assert detector.describe()["remote"]["frames"] == 7  # the warm-up call, then 6
        assert server.servicer.calls == 7


def test_a_raw_1080p_frame_needs_tf_servings_2gb_message_limit():
    frame = np.full((1, 1080, 1920, 3), 128, np.uint8)  # 6.2 MB: over gRPC's 4 MB default
    frame[0, 100:200, 100:300] = RED
    with TFServingStandIn("m", find_red) as server:
        out = EIPredictor(server.endpoint)({"input_tensor": frame})
        assert out["detection_scores"][0, 0] == pytest.approx(0.9)
    with TFServingStandIn("m", find_red, max_bytes=None) as server:  # gRPC's default
        p = EIPredictor(server.endpoint, warmup=False)
        with pytest.raises(RemoteError, match="RESOURCE_EXHAUSTED"):
            p({"input_tensor": frame})


def test_a_model_with_a_fixed_input_gets_letterboxed_frames():
    seen = []

    def spy(feed):
        seen.append(feed["input_tensor"].shape)
        return find_red(feed)

    frame = np.full((2, 1080, 1920, 3), 128, np.uint8)
    frame[:, 300:500, 1000:1400] = RED
    with TFServingStandIn("m", spy, input_shape=(-1, 256, 256, 3)) as server:
        p = EIPredictor(server.endpoint, warmup=False)
        assert p.input_size == (256, 256) and p.resize == "letterbox"
        out = p({"input_tensor": frame})
    assert seen == [(1, 256, 256, 3), (1, 256, 256, 3)]  # two requests in flight, one each
    b = out["detection_boxes"][1, 0]
    assert box_iou([b[1] * 1920, b[0] * 1080, b[3] * 1920, b[2] * 1080],
                   [1000, 300, 1400, 500]) > 0.95


def test_wrong_model_name_and_wrong_port_are_clear_errors():
    with TFServingStandIn("m", find_red) as server, pytest.raises(ModelNotFoundError,
                                                                  match="nope"):
        EIPredictor(server.endpoint.replace("/m", "/nope"))
    port = free_port()
    t0 = time.perf_counter()
    with pytest.raises(RemoteUnavailableError, match="within 1 s") as info:
        EIPredictor(f"tfserving://127.0.0.1:{port}/m?timeout=1")
    assert time.perf_counter() - t0 < 5
    assert isinstance(info.value, ConnectionError) and isinstance(info.value, TimeoutError)


def test_a_server_that_dies_is_an_error_within_the_timeout_or_runs_the_fallback(
        tiny_model, caplog):
    port = free_port()
    frame = next(red_square_frames(1))[0][None]
    server = TFServingStandIn("m", find_red, port=port).start()
    plain = EIPredictor(f"tfserving://127.0.0.1:{port}/m?timeout=1", warmup=False)
    backed = EIPredictor(f"tfserving://127.0.0.1:{port}/m?timeout=1&probe_s=0.2&fallback="
                         f"{tiny_model}", warmup=False)
    for p in (plain, backed):
        assert p({"input_tensor": frame})["detection_scores"][0, 0] == pytest.approx(0.9)
    server.stop()
    t0 = time.perf_counter()
    with pytest.raises(RemoteUnavailableError):
        plain({"input_tensor": frame})
    assert time.perf_counter() - t0 < 3
    assert plain.backend.stats.retries >= 1  # it retried with backoff before giving up
    with caplog.at_level("WARNING", logger="vidstream"):
        for _ in range(3):  # the tiny SavedModel answers: same box
            out = backed({"input_tensor": frame})
            assert out["detection_scores"][0, 0] == pytest.approx(0.9)
    info = backed.describe()["remote"]
    assert info["fallback_frames"] == 3 and info["outages"] == 1
    assert info["fallback_model"] == str(tiny_model)
    assert "running the local model" in caplog.text
    server = TFServingStandIn("m", find_red, port=port).start()  # back: the server answers
    try:
        time.sleep(0.3)  # past probe_s
        deadline = time.monotonic() + 10
        while backed.describe()["remote"]["frames"] < 2 and time.monotonic() < deadline:
            backed({"input_tensor": frame})
            time.sleep(0.1)
        assert backed.describe()["remote"]["frames"] >= 2
    finally:
        server.stop()


def test_concurrent_callers_share_one_predictor():
    with TFServingStandIn("m", find_red) as server:
        p = resolve(server.endpoint)
        frames = [img[None] for img, _ in red_square_frames(12)]
        results: list = [None] * len(frames)

        def work(i):
            results[i] = p({"input_tensor": frames[i]})["detection_boxes"]

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(frames))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, frame in enumerate(frames):
            assert np.allclose(results[i], find_red({"x": frame})["detection_boxes"])
        p.close()


def test_a_remote_run_pays_for_its_client_and_its_share_of_the_accelerator():
    from vidstream.cost import Price, usd_per_100k_inferences
    from vidstream.remote_cost import accelerator_share, remote_price

    client = Price("c5.large", 0.085)
    assert accelerator_share("auto", clients=4) == 0.25
    assert accelerator_share("auto") == 1.0
    assert accelerator_share(0.5) == 0.5
    for bad in ("half", 0, 1.5):
        with pytest.raises(ConfigError):
            accelerator_share(bad)
    price = remote_price(client, "g5.xlarge", "auto", client_inferences=250,
                         server_inferences=1000)
    assert price.usd_per_hour == pytest.approx(0.085 + 0.25 * 1.006)
    assert price.gpu == "NVIDIA A10G" and "g5.xlarge" in price.name
    assert usd_per_100k_inferences(price.usd_per_hour, 30) == pytest.approx(
        price.usd_per_hour * 100_000 / (3600 * 30))


# -- what a remote predictor reports -----------------------------------------------------------
def test_describe_reports_requests_in_flight_and_round_trips_under_one_remote_key():
    barrier = threading.Barrier(2)
    seen: list[dict] = []
    holder: dict = {}

    def both_at_once(feed):
        # both requests of the batch reach the server before either is answered: the client
        # has exactly two in flight, whatever the timing
        barrier.wait(timeout=10)
        seen.append(holder["p"].describe()["remote"])
        return find_red(feed)

    frames = np.stack([img for img, _ in red_square_frames(4)])
    with TFServingStandIn("m", both_at_once, input_shape=(-1, 256, 256, 3)) as server:
        p = EIPredictor(f"{server.endpoint}?inflight=2", warmup=False)
        holder["p"] = p
        assert p.describe()["remote"]["round_trip_ms"] is None  # nothing sent yet
        p({"input_tensor": frames})
        info = p.describe()
        p.backend.close()
    assert [s["in_flight"] for s in seen] == [2, 2]
    remote = info["remote"]
    assert set(remote) == {"endpoint", "protocol", "requests", "frames", "in_flight",
                           "max_in_flight", "round_trip_ms", "retries", "mb_sent",
                           "fallback_model", "fallback_frames", "outages", "server"}
    assert remote["endpoint"] == server.endpoint and remote["protocol"] == "tfserving"
    assert (remote["requests"], remote["frames"], remote["in_flight"],
            remote["max_in_flight"], remote["retries"]) == (2, 4, 0, 2, 0)
    assert remote["mb_sent"] == round(4 * 256 * 256 * 3 / 1e6, 2)  # letterboxed, not raw
    assert 0 < remote["round_trip_ms"]["p50"] <= remote["round_trip_ms"]["p95"]
    assert (remote["fallback_model"], remote["fallback_frames"], remote["outages"]) == (
        None, 0, 0)
    assert remote["server"] is None  # TF Serving has no statistics API
    assert info["model_format"] == "tfserving" and info["model"] == "m"
    assert not any(k.startswith("remote_") for k in info)  # one nested key, nothing flat


def test_the_endpoint_in_the_summary_has_no_credentials():
    with TFServingStandIn("m", find_red) as server:
        ref = server.endpoint.replace("://", "://admin:hunter2@") + "?timeout=3"
        p = EIPredictor(ref, warmup=False)
        info = p.describe()
        p.backend.close()
    assert info["remote"]["endpoint"] == server.endpoint
    assert "hunter2" not in json.dumps(info)


class CountingPredictor(TFServingPredictor):
    """TF Serving with a statistics hook: the stand-in's calls as the server's counts."""

    def __init__(self, ref, servicer, fail=False):
        self.servicer, self.reads, self.fail = servicer, 0, fail
        super().__init__(ref, LoadOptions())

    def _server_counts(self, timeout):
        self.reads += 1
        if self.fail:
            raise RuntimeError("statistics unavailable")
        n = self.servicer.calls
        return ServerCounts(n, n, {1: n} if n else {})


def test_server_counts_are_read_once_a_second_again_when_quiet_and_never_fail_a_run():
    frame = next(red_square_frames(1))[0][None]
    with TFServingStandIn("m", find_red) as server:
        server.servicer.calls = 5  # another client's, before this one connected
        p = CountingPredictor(server.endpoint, server.servicer)
        p.server_read_s = 3600  # only the quiet and the fresh reads, whatever the timing
        assert p.reads == 1  # the baseline, at connect
        assert p.describe()["remote"]["server"]["inference_count"] == 0 and p.reads == 1
        p({"input_tensor": frame})
        usage = p.describe()["remote"]["server"]  # quiet after a request: read again
        assert p.reads == 2 and usage == {"inference_count": 1, "execution_count": 1,
                                          "mean_batch": 1.0, "batch_sizes": {"1": 1}}
        for _ in range(5):  # nothing new: the cached counts, no read
            p.describe()
        assert p.reads == 2
        server.servicer.calls += 2  # two frames of another client
        p({"input_tensor": frame})
        assert p.server_usage(fresh=True).inference_count == 4 and p.reads == 3
        assert p.describe()["remote"]["server"]["inference_count"] == 4  # cached
        p.fail = True
        p({"input_tensor": frame})
        assert p.describe()["remote"]["server"]["inference_count"] == 4  # the last read stands
        assert p.server_usage(fresh=True).inference_count == 4 and p.reads == 5
        assert p.describe()["remote"]["frames"] == 3
        p.close()


def test_server_usage_carries_counts_over_a_server_restart():
    answers = iter([ServerCounts(100, 50, {2: 50}), ServerCounts(120, 55, {2: 50, 4: 5}),
                    None, ServerCounts(12, 3, {4: 3})])
    usage = ServerUsage(lambda timeout: next(answers))
    usage.start(1.0)
    assert usage.get(1.0, max_age=0) == ServerCounts(20, 5, {4: 5})
    assert usage.get(1.0, max_age=0) == ServerCounts(20, 5, {4: 5})  # no answer: the last
    after = usage.get(1.0, max_age=0)  # counts went down: restarted, the 20 carried over
    assert after == ServerCounts(32, 8, {4: 8}) and after.mean_batch == 4.0
    assert usage.get(1.0, max_age=60) is after  # fresh enough: not read


def test_a_pipeline_on_a_remote_model_reports_it_in_the_summary_and_the_metrics():
    pytest.importorskip("prometheus_client")
    from test_engine import Collect, FakeSource

    from vidstream import Pipeline
    from vidstream.metrics import PipelineCollector

    with TFServingStandIn("m", find_red) as server:
        detector = Detector(f"{server.endpoint}?inflight=2", batch_size=2)
        pipeline = Pipeline([FakeSource(6)], [detector], lambda i: [Collect()])
        summary = pipeline.run()
        families = {f.name: f for f in PipelineCollector(pipeline).collect()}
    remote = summary.to_dict()["remote"]
    # the predictor's warm-up image, the detector's warm-up batch of 2, the 6 frames: one
    # request each (a batch of 2 with inflight=2 goes as two requests)
    assert remote["frames"] == remote["requests"] == 1 + 2 + 6
    assert remote["in_flight"] == 0 and remote["server"] is None
    samples = {(s.name, s.labels.get("quantile")): s.value
               for name in ("vidstream_remote_requests", "vidstream_remote_in_flight",
                            "vidstream_remote_round_trip_seconds",
                            "vidstream_remote_fallback_frames")
               for s in families[name].samples}
    assert samples[("vidstream_remote_requests_total", None)] == remote["requests"]
    assert samples[("vidstream_remote_in_flight", None)] == 0
    assert samples[("vidstream_remote_fallback_frames_total", None)] == 0
    assert 0 < samples[("vidstream_remote_round_trip_seconds", "0.5")] <= samples[
        ("vidstream_remote_round_trip_seconds", "0.95")]


def test_a_run_releases_its_remote_connection_and_request_threads(tmp_path):
    from media import red_square_clip

    from vidstream import Pipeline, VideoSource

    clip = tmp_path / "in.mp4"
    red_square_clip(clip, frames=8)
    with TFServingStandIn("redsquare", find_red) as server:
        detector = Detector(server.endpoint, batch_size=4)  # 4 requests in flight: threads
        with Pipeline(VideoSource(clip), [detector], []) as pipeline:
            pipeline.run()
        # the last server counts were read before the channel closed; the summary has them
        remote = pipeline.summary().details["remote"]
        assert remote["frames"] == 1 + 4 + 8 and remote["in_flight"] == 0
        deadline = time.monotonic() + 10
        while any(t.name.startswith("tfserving-client") for t in threading.enumerate()):
            assert time.monotonic() < deadline, "request threads outlived the run"
            time.sleep(0.05)
        # a detector that loaded its model loads it again when run again
        with Pipeline(VideoSource(clip), [detector], []) as pipeline:
            pipeline.run()
        assert pipeline.summary().frames == 8

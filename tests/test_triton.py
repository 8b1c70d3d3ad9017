"""The real Triton server (PyTriton's tritonserver, in the serve environment) and the
triton:// client: end to end, batching across clients, errors, a server killed mid-run.

The serve environment is created on first use through the code path `vidstream serve` uses
(minutes, once; then it is reused from the cache). The server hosts the tiny red-square
SavedModel with a fixed 256x256 input, so clients letterbox and batches form.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from media import red_square_clip
from tinymodel import RED, red_square_frames

from vidstream import EIPredictor, box_iou
from vidstream.backends.remote import RemoteUnavailableError
from vidstream.cli import main
from vidstream.cost import Price, lookup
from vidstream.errors import ModelNotFoundError
from vidstream.remote_cost import SharedPricing

pytest.importorskip("tritonclient.grpc")

SIZE = 256  # the served model's input, from its vidstream.json


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture(scope="session")
def served_model(tiny_model, tmp_path_factory) -> Path:
    model = tmp_path_factory.mktemp("served") / "redsquare"
    shutil.copytree(tiny_model, model)
    (model / "vidstream.json").write_text(json.dumps(
        {"name": "redsquare", "input_size": [SIZE, SIZE], "resize": "letterbox"}))
    return model


def start_server(model: Path, **kwargs):
    from vidstream.serve import ServeConfig, Server

    grpc, http, metrics = free_ports(3)
    config = ServeConfig(model=str(model), name="redsquare", grpc_port=grpc, http_port=http,
                         metrics_port=metrics, **kwargs)
    # ensure_env() inside: the serve environment is created here on a fresh machine
    return Server(config, progress=lambda m: print(m, file=sys.stderr)).start(timeout=900)


@pytest.fixture(scope="session")
def triton_server(served_model):
    server = start_server(served_model, max_batch=16, max_queue_delay_ms=50)
    yield server
    server.stop()


def truth_iou(det, box) -> float:
    return box_iou(next(iter(det)).box, box) if len(det) == 1 else 0.0


@pytest.mark.timeout(1200)  # a fresh machine creates the serve environment here (minutes)
def test_detect_through_a_real_triton_server(triton_server, media_dir, tmp_path, capsys):
    assert triton_server.ready()
    before = triton_server.metrics().get("nv_inference_count", 0)
    clip = media_dir / "triton-clip.mp4"
    boxes = red_square_clip(clip, frames=12, width=640, height=360)
    summary = tmp_path / "s.json"
    jsonl = tmp_path / "d.jsonl"
    code = main(["detect", str(clip), "--no-video", "--model", triton_server.endpoint,
                 "--batch-size", "4", "--detections", str(jsonl), "--summary", str(summary),
                 "--quiet", "--instance", "c7i.large", "--accelerator-instance", "g5.xlarge"])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    frames = [r for r in rows if "detections" in r]
    assert len(frames) == 12
    for row, box in zip(frames, boxes, strict=True):
        found = row["detections"]
        # 640x360 -> 256x144 and back: a 40-pixel square loses a pixel or two at its edges
        assert len(found) == 1 and box_iou(found[0]["box"], box) > 0.8
    info = json.loads(summary.read_text())
    assert info["model_format"] == "triton" and info["model_dir"] == triton_server.endpoint
    remote = info["remote"]
    # the 12 frames, after the warm-up calls (one image, then one batch of 4)
    assert remote["frames"] == 1 + 4 + 12
    assert triton_server.metrics()["nv_inference_count"] - before == remote["frames"]
    assert remote["endpoint"] == triton_server.endpoint and remote["protocol"] == "triton"
    assert remote["requests"] > 0 and remote["in_flight"] == 0
    assert 1 <= remote["max_in_flight"] <= 4 and remote["retries"] == 0
    rtt = remote["round_trip_ms"]
    assert set(rtt) == {"p50", "p95"} and 0 < rtt["p50"] <= rtt["p95"]
    assert remote["fallback_model"] is None and remote["fallback_frames"] == 0
    # the server's counts since this client connected: this run was alone on the server
    server = remote["server"]
    assert server["inference_count"] == remote["frames"]
    assert sum(int(k) * n for k, n in server["batch_sizes"].items()) == remote["frames"]
    assert sum(server["batch_sizes"].values()) == server["execution_count"]
    # alone on the server, this client pays for the whole accelerator (warm-ups included)
    cost = info["cost"]
    assert cost["accelerator"] == {"name": "g5.xlarge", "usd_per_hour": 1.006, "share": 1.0,
                                   "basis": f"auto: {remote['frames']} of "
                                            f"{remote['frames']} server inferences"}
    assert cost["usd_per_hour"] == pytest.approx(0.08925 + 1.006)


def test_a_frame_larger_than_the_models_input_is_letterboxed_before_sending(triton_server):
    p = EIPredictor(triton_server.endpoint)
    assert p.format == "triton" and p.thread_safe and p.input_size == (SIZE, SIZE)
    frame = np.full((1, 1080, 1920, 3), 128, np.uint8)
    frame[0, 300:500, 1000:1400] = RED
    sent = p.backend.stats.bytes_sent
    out = p({"input_tensor": frame})
    assert p.backend.stats.bytes_sent - sent == SIZE * SIZE * 3  # not 6.2 MB
    b = out["detection_boxes"][0, 0]
    assert box_iou([b[1] * 1920, b[0] * 1080, b[3] * 1920, b[2] * 1080],
                   [1000, 300, 1400, 500]) > 0.9
    p.backend.close()


def test_wrong_model_name_and_wrong_port(triton_server):
    with pytest.raises(ModelNotFoundError, match="no model 'nope'"):
        EIPredictor(triton_server.endpoint.replace("/redsquare", "/nope"))
    http = triton_server.config.http_port  # something listens there, but not gRPC
    t0 = time.perf_counter()
    with pytest.raises(RemoteUnavailableError, match="within 1 s"):
        EIPredictor(f"triton://127.0.0.1:{http}/redsquare?timeout=1")
    assert time.perf_counter() - t0 < 5


def test_clients_share_the_server_and_it_batches_across_them(triton_server):
    before = triton_server.metrics()
    frames = np.stack([img for img, _ in red_square_frames(8)])
    truth = [box for _, box in red_square_frames(8)]
    results: dict[int, list] = {}
    clients: dict[int, EIPredictor] = {}
    connected = threading.Barrier(3)

    def client(k: int) -> None:
        p = clients[k] = EIPredictor(f"{triton_server.endpoint}?inflight=4", warmup=False)
        connected.wait(60)  # every client's baseline is read before any request
        results[k] = [p({"input_tensor": frames})["detection_boxes"] for _ in range(3)]

    threads = [threading.Thread(target=client, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    after = triton_server.metrics()
    inferences = after["nv_inference_count"] - before.get("nv_inference_count", 0)
    executions = after["nv_inference_exec_count"] - before.get("nv_inference_exec_count", 0)
    assert inferences == 3 * 3 * 8
    assert executions < inferences  # batches formed (across requests and clients)
    # Each client sees the server's counts since it connected: every client's inferences
    # (its share of the accelerator: 24 of 72), the same executions as the server's metrics.
    for p in clients.values():
        remote = p.describe()["remote"]
        usage = p.backend.server_usage(fresh=True)
        assert usage is not None and remote["frames"] == 3 * 8
        assert usage.inference_count == inferences >= remote["frames"]
        assert usage.execution_count == executions
        assert sum(usage.batch_sizes.values()) == executions
        assert sum(size * n for size, n in usage.batch_sizes.items()) == inferences
        server = p.describe()["remote"]["server"]  # the fresh read, now cached
        assert server["mean_batch"] == round(inferences / executions, 2) > 1
        assert server["batch_sizes"] == {str(k): n for k, n in usage.batch_sizes.items()}
        assert 1 <= remote["max_in_flight"] <= 4 and remote["requests"] == 3 * 4  # 2 each
        # --accelerator-share auto: a third of the accelerator each (24 of 72 inferences)
        price = SharedPricing(Price("c7i.large", 0.08925), lookup("g5.xlarge")).price(
            p.describe()["remote"])
        assert price.accelerator.share == pytest.approx(1 / 3)
        assert price.accelerator.basis == "auto: 24 of 72 server inferences"
        p.backend.close()
    h, w = frames.shape[1:3]
    for k in range(3):
        for boxes in results[k]:
            for i, box in enumerate(truth):
                b = boxes[i, 0]
                assert box_iou([b[1] * w, b[0] * h, b[3] * w, b[2] * h], box) > 0.9


@pytest.mark.slow
def test_a_server_killed_mid_run_is_an_error_or_the_fallback(served_model, tiny_model,
                                                              media_dir, tmp_path, capsys):
    server = start_server(served_model)
    try:
        clip = media_dir / "triton-kill.mp4"
        red_square_clip(clip, frames=60, width=320, height=240)
        plain = EIPredictor(f"{server.endpoint}?timeout=2", warmup=False)
        backed = f"{server.endpoint}?timeout=2&fallback={tiny_model}"
        frame = next(red_square_frames(1))[0][None]
        plain({"input_tensor": frame})
        base = server.metrics().get("nv_inference_count", 0)

        def kill_mid_run() -> None:
            # once the server has answered 10 of the run's frames (after 1 + 1 warm-up
            # images); --realtime paces the other 50 over more than a second and a half, so
            # the kill lands mid-run on a machine of any speed
            deadline = time.monotonic() + 120
            while server.metrics().get("nv_inference_count", 0) - base < 12:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            server.kill()

        killer = threading.Thread(target=kill_mid_run, daemon=True)
        killer.start()
        summary = tmp_path / "s.json"
        code = main(["detect", str(clip), "--no-video", "--model", backed, "--realtime",
                     "--summary", str(summary), "--quiet"])
        killer.join(120)
        assert code == 0, capsys.readouterr().err
        remote = json.loads(summary.read_text())["remote"]
        assert remote["fallback_frames"] > 0 and remote["outages"] == 1
        assert remote["frames"] + remote["fallback_frames"] >= 60
        t0 = time.perf_counter()
        with pytest.raises(RemoteUnavailableError):
            plain({"input_tensor": frame})
        assert time.perf_counter() - t0 < 4
    finally:
        server.stop()


@pytest.mark.slow
def test_vidstream_serve_prints_the_endpoint_and_stops_on_sigterm(served_model):
    grpc, http, metrics = free_ports(3)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidstream", "serve", "--model", str(served_model),
         "--port", str(grpc), "--http-port", str(http), "--metrics-port", str(metrics)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == f"triton://127.0.0.1:{grpc}/redsquare"
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready") as r:
            assert r.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics") as r:
            assert b"nv_inference_count" in r.read()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 130
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_backend_auto_picks_tflite_only_with_a_network_and_no_gpu(tiny_model, tmp_path):
    from vidstream.errors import ConfigError
    from vidstream.serve import ServeConfig, server_config
    from vidstream.serve._triton_main import choose_backend

    # the server's side (it alone knows its GPUs), as vidstream's own backend="auto"
    assert choose_backend("auto", True, 0)[0] == "tflite"
    assert choose_backend("auto", True, 1)[0] == "tf"
    assert choose_backend("auto", False, 0)[0] == "tf"
    assert choose_backend("tf", True, 0)[0] == "tf"
    assert choose_backend("tflite", True, 1)[0] == "tflite"
    with pytest.raises(SystemExit, match="no TF Lite network"):
        choose_backend("tflite", False, 0)
    # vidstream's side: it sends the network (found by vidstream's own test) and its decoding
    assert server_config(ServeConfig(model=str(tiny_model), name="m"))["tflite"] is None
    with pytest.raises(ConfigError, match="no TF Lite network"):
        server_config(ServeConfig(model=str(tiny_model), name="m", backend="tflite"))
    with pytest.raises(ConfigError, match="backend 'onnx'"):
        ServeConfig(model=str(tiny_model), name="m", backend="onnx")
    converted = tmp_path / "converted"
    shutil.copytree(tiny_model, converted)
    (converted / "net.tflite").write_bytes(b"")
    (converted / "vidstream.json").write_text(json.dumps(
        {"input_size": [SIZE, SIZE], "tflite": "net.tflite", "stride": 8}))
    plan = server_config(ServeConfig(model=str(converted), name="m"))
    assert plan["backend"] == "auto" and plan["threads"] is None
    lite = plan["tflite"]
    assert lite["path"] == str(converted / "net.tflite")
    assert lite["stride"] == 8 and lite["num_classes"] == 80 and lite["max_detections"] == 100
    assert len(lite["classes"]) == 80 and lite["classes"][:3] == [1, 2, 3]
    assert server_config(ServeConfig(model=str(converted), name="m", backend="tf"))[
        "tflite"] is None


def test_the_servers_tflite_decoding_is_the_local_backends():
    from vidstream.backends.tflite import LitePredictor, decoding
    from vidstream.labels import COCO80_TO_COCO90
    from vidstream.serve._triton_main import decode

    rng = np.random.default_rng(3)
    local = LitePredictor.__new__(LitePredictor)  # its decoding only, without a network
    local.input_size = (512, 512)
    params = decoding({})
    for key, value in params.items():
        setattr(local, key, value)
    lite = {**params, "classes": list(COCO80_TO_COCO90)}
    cells = (512 // 4) ** 2 * 80
    scores = rng.random((3, 100), np.float32)
    scores[2, :] = 0.0  # an image with nothing in it
    idx = rng.integers(0, cells, (3, 100)).astype(np.int32)
    idx[0, 1] = idx[0, 0]  # overlapping peaks of one class: NMS keeps one
    ltrb = (rng.random((3, 100, 4)) * 60).astype(np.float32)
    want = local._decode(scores, idx, ltrb, 0, 0, 512, 512)
    got = decode(lite, scores, idx, ltrb, (512, 512))
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_serving_centernet_on_tflite_answers_like_the_local_tflite_backend(centernet):
    from make_clip import skimage_photo

    from vidstream.serve import ServeConfig, Server

    grpc, http, metrics = free_ports(3)
    config = ServeConfig(model=str(centernet), name="centernet", grpc_port=grpc,
                         http_port=http, metrics_port=metrics, backend="tflite", threads=2)
    frame = skimage_photo("astronaut")[None]
    local = EIPredictor(str(centernet), backend="tflite")
    want = local({"input_tensor": frame})
    with Server(config, progress=lambda m: print(m, file=sys.stderr)).start(timeout=600) as s:
        assert s.backend is not None and s.backend[0] == "tflite", s.log_tail()
        remote = EIPredictor(s.endpoint)
        got = remote({"input_tensor": frame})
        remote.backend.close()

    def found(out):
        keep = out["detection_scores"][0] > 0.3
        return out["detection_classes"][0][keep], out["detection_boxes"][0][keep]

    (want_cls, want_boxes), (got_cls, got_boxes) = found(want), found(got)
    assert len(want_cls) > 0 and list(got_cls) == list(want_cls)
    for a, b in zip(want_boxes, got_boxes, strict=True):
        assert box_iou(a.tolist(), b.tolist()) >= 0.9, (a, b)

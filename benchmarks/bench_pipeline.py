"""vidstream against the obvious loop, the bare decoder, the bare model and the bare encoder.

    python benchmarks/bench_pipeline.py                 # 1080p traffic clip, 3 rounds
    python benchmarks/bench_pipeline.py --input my.mp4 --repeat 5 --json results.json

Every contender runs in its own process (so each gets a fresh TensorFlow and its own peak
memory), on the same input, the same model and the same encoder preset; rounds alternate the
contenders so drift in the machine's speed hits all of them alike. Medians are reported.

Contenders:
  decode        PyAV decode + to_ndarray(rgb24): the decoder's physical limit
  model-bN      the model vidstream uses, alone, on prepared inputs, batch N
  model-tf      the SavedModel's serving_default signature alone (the seed's model path)
  encode        libx264 at the preset, alone, on decoded frames
  sequential    the seed notebook's loop: decode -> to_ndarray -> SavedModel -> draw -> encode
  vidstream     vidstream detect with its defaults
  vidstream-data  the same writing detections only (no encoder sharing the CPU)
  vidstream-track  vidstream with --track and a counting line (tracker and counting cost)
  detect-stage-bN  the detector stage in a pipeline fed already decoded frames, batch N
  noop          the pipeline with a no-op detector (converting frames) and no encoding
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "samples"))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- workers: each runs in its own process and prints one JSON line ---------------------------
def w_decode(args: argparse.Namespace) -> dict:
    import av

    n = 0
    with av.open(args.input) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        t0 = time.perf_counter()
        for frame in c.decode(s):
            frame.to_ndarray(format="rgb24")
            n += 1
            if n >= args.frames:
                break
        wall = time.perf_counter() - t0
    return {"frames": n, "wall_s": wall, "fps": n / wall}


def _model_inputs(args: argparse.Namespace, count: int):
    """Frames scaled as vidstream's detector hands them to the model."""
    import av

    from vidstream.detector import Detector

    det = Detector(args.model)
    det.open()
    images = []
    with av.open(args.input) as c:
        for frame in c.decode(video=0):
            from vidstream.frames import Frame

            f = Frame.from_av(frame, len(images))
            images.append(f.rgb(*det._model_size(f)))
            if len(images) >= count:
                break
    return det, images


def w_model(args: argparse.Namespace) -> dict:
    import numpy as np

    batch = args.batch
    det, images = _model_inputs(args, min(args.frames, 64))
    predictor = det.predictor
    batches = [np.concatenate(images[i : i + batch]) for i in range(0, len(images), batch)]
    batches = [b for b in batches if len(b) == batch]
    predictor({"inputs": batches[0]})  # warm this batch size
    n = 0
    t0 = time.perf_counter()
    while n < args.frames:
        for b in batches:
            predictor({"inputs": b})
            n += len(b)
            if n >= args.frames:
                break
    wall = time.perf_counter() - t0
    return {"frames": n, "wall_s": wall, "fps": n / wall, "device": predictor.describe()["device"]}


def w_model_tf(args: argparse.Namespace) -> dict:
    import av

    from vidstream import models
    from vidstream.predictor import import_tensorflow

    tf = import_tensorflow()
    fn = tf.saved_model.load(str(models.resolve(args.model))).signatures["serving_default"]
    images = []
    with av.open(args.input) as c:
        for frame in c.decode(video=0):
            images.append(frame.to_ndarray(format="rgb24")[None])
            if len(images) >= 16:
                break
    fn(input_tensor=tf.constant(images[0]))
    n = 0
    t0 = time.perf_counter()
    while n < min(args.frames, 60):
        fn(input_tensor=tf.constant(images[n % len(images)]))
        n += 1
    wall = time.perf_counter() - t0
    return {"frames": n, "wall_s": wall, "fps": n / wall}


def _encoder(out, rate, width, height, preset):
    stream = out.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"preset": preset}
    return stream


def w_encode(args: argparse.Namespace) -> dict:
    import av

    frames = []
    with av.open(args.input) as c:
        s = c.streams.video[0]
        rate, w, h = s.average_rate, s.width, s.height
        for frame in c.decode(s):
            frames.append(frame)
            if len(frames) >= args.frames:
                break
    with tempfile.TemporaryDirectory() as tmp, av.open(f"{tmp}/e.mp4", "w") as out:
        stream = _encoder(out, rate, w, h, args.preset)
        t0 = time.perf_counter()
        for frame in frames:
            for p in stream.encode(frame):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
        wall = time.perf_counter() - t0
    return {"frames": len(frames), "wall_s": wall, "fps": len(frames) / wall}


def w_sequential(args: argparse.Namespace) -> dict:
    """The obvious loop, as the seed's notebook writes it: one thread, frame by frame."""
    import av
    import numpy as np

    from vidstream import models
    from vidstream.annotate import Annotator
    from vidstream.detections import Detections
    from vidstream.predictor import import_tensorflow
    from vidstream.settings import DEFAULTS

    tf = import_tensorflow()
    fn = tf.saved_model.load(str(models.resolve(args.model))).signatures["serving_default"]
    fn(input_tensor=tf.constant(np.zeros((1, 100, 100, 3), np.uint8)))  # the seed's warm-up
    annotator = Annotator()
    n = 0
    with tempfile.TemporaryDirectory() as tmp, av.open(args.input) as c, \
            av.open(f"{tmp}/s.mp4", "w") as out:
        s = c.streams.video[0]
        stream = _encoder(out, s.average_rate, s.width, s.height, args.preset)
        t0 = time.perf_counter()
        for frame in c.decode(s):
            image = frame.to_ndarray(format="rgb24")
            r = fn(input_tensor=tf.constant(image[None]))
            dets = Detections.from_od_api(
                r["detection_boxes"].numpy()[0], r["detection_scores"].numpy()[0],
                r["detection_classes"].numpy()[0], frame.width, frame.height,
                num=float(r["num_detections"].numpy()[0]), threshold=DEFAULTS.threshold)
            bgr = np.ascontiguousarray(image[:, :, ::-1])
            annotator.annotate(bgr, dets)
            picture = av.VideoFrame.from_ndarray(bgr, format="bgr24")
            picture.pts, picture.time_base = frame.pts, frame.time_base
            for p in stream.encode(picture):
                out.mux(p)
            n += 1
            if n >= args.frames:
                break
        for p in stream.encode(None):
            out.mux(p)
        wall = time.perf_counter() - t0
    return {"frames": n, "wall_s": wall, "fps": n / wall}


def w_vidstream(args: argparse.Namespace, video: bool = True, track: bool = False) -> dict:
    from vidstream.config import RunConfig, build_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(input=args.input, video=f"{tmp}/v.mp4" if video else None,
                        detections=None if video else f"{tmp}/d.jsonl", model=args.model,
                        preset=args.preset, max_frames=args.frames, batch_size=args.batch,
                        lines=["road:0,0.6,1,0.6"] if track else None)
        with build_pipeline(cfg) as pipeline:
            summary = pipeline.run()
    return {"frames": summary.frames, "wall_s": summary.wall_s, "fps": summary.fps,
            "model_load_s": summary.model_load_s,
            "latency_ms": summary.latency.to_dict(),
            "stages": {s.name: {"busy_share": round(s.busy_share, 3), "fps": round(s.fps, 1)}
                       for s in summary.stages},
            "device": summary.details.get("device")}


def w_detect_stage(args: argparse.Namespace) -> dict:
    """The detector stage in a pipeline whose other stages cost nothing: its own overhead."""
    import av

    from vidstream import Detector, Pipeline
    from vidstream.frames import Frame, StreamInfo

    det = Detector(args.model, batch_size=args.batch)
    det.open()
    frames = []
    with av.open(args.input) as c:
        for picture in c.decode(video=0):
            frame = Frame.from_av(picture, len(frames))
            det.prepare(frame)  # scaled to the model's input, as the decoder thread does
            frames.append(frame)
            if len(frames) >= min(args.frames, 64):
                break

    class Decoded:
        name = "decode"

        def open(self):
            return StreamInfo("<decoded>", frames[0].width, frames[0].height, None, None)

        def frames(self):
            for i in range(args.frames):
                yield frames[i % len(frames)]

        def close(self):
            pass

    with Pipeline(Decoded(), [det]) as p:
        summary = p.run()
    stage = summary.stage("detect")
    return {"frames": summary.frames, "wall_s": summary.wall_s, "fps": stage.fps,
            "busy_share": round(stage.busy_share, 3)}


def w_noop(args: argparse.Namespace) -> dict:
    from vidstream import FunctionStage, Pipeline, VideoSource

    def touch(frame):
        frame.image  # noqa: B018 - the conversion a detector would need
        return frame

    with Pipeline(VideoSource(args.input, max_frames=args.frames),
                  [FunctionStage(touch, "noop")]) as p:
        summary = p.run()
    return {"frames": summary.frames, "wall_s": summary.wall_s, "fps": summary.fps}


def w_accuracy(args: argparse.Namespace) -> dict:
    """Boxes of the fast path (what vidstream runs) against the plain SavedModel's."""
    import av

    from vidstream.detections import box_iou
    from vidstream.detector import Detector
    from vidstream.frames import Frame

    fast = Detector(args.model)
    fast.open()
    plain = Detector(args.model, backend="tf")
    plain.open()
    matched = total = 0
    with av.open(args.input) as c:
        for i, picture in enumerate(c.decode(video=0)):
            if i >= min(args.frames, 60):
                break
            a = fast.process(Frame.from_av(picture, i)).detections
            b = plain.process(Frame.from_av(picture, i)).detections
            for d in b:
                total += 1
                matched += any(x.label == d.label and box_iou(x.box, d.box) >= 0.9 for x in a)
    return {"reference_detections": total, "matched_iou_0.9": matched,
            "share": matched / total if total else 1.0,
            "fast": fast.describe()["device"], "plain": plain.describe()["device"]}




WORKERS = {"decode": w_decode, "model": w_model, "model-tf": w_model_tf, "encode": w_encode,
           "sequential": w_sequential, "vidstream": w_vidstream, "noop": w_noop,
           "vidstream-data": lambda a: w_vidstream(a, video=False),
           "vidstream-track": lambda a: w_vidstream(a, track=True),
           "detect-stage": w_detect_stage, "accuracy": w_accuracy}


# -- driver ---------------------------------------------------------------------------------
def run_worker(args: argparse.Namespace, name: str, batch: int = 1) -> dict:
    kind = name.rsplit("-b", 1)[0] if name.startswith(("model-b", "detect-stage-b")) else name
    cmd = [sys.executable, __file__, "--worker", kind, "--input", args.input,
           "--frames", str(args.frames), "--preset", args.preset, "--model", args.model,
           "--batch", str(batch)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    from vidstream.settings import DEFAULTS

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", help="clip to use (default: a 1080p traffic clip made here)")
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--preset", default=DEFAULTS.preset)
    p.add_argument("--model", default=DEFAULTS.model)
    p.add_argument("--batch-sizes", default="1,2,4,8")
    p.add_argument("--only", help="comma-separated contenders to run")
    p.add_argument("--json", help="write all runs and medians here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        result = WORKERS[args.worker](args)
        result["peak_rss_mb"] = round(peak_mb(), 1)
        print(json.dumps(result))
        return 0
    if not args.input:
        from make_clip import make_clip

        args.input = str(ROOT / "build" / f"bench-traffic-{args.frames}.mp4")
        if not Path(args.input).exists():
            Path(args.input).parent.mkdir(parents=True, exist_ok=True)
            make_clip(args.input, scene="traffic", count=args.frames,
                      rate=Fraction(30000, 1001))
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    names = ["decode", *[f"model-b{b}" for b in sizes],
             *[f"detect-stage-b{b}" for b in sizes], "model-tf", "encode", "sequential",
             "vidstream", "vidstream-data", "vidstream-track", "noop"]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(args.repeat):
        for name in names:
            batch = (int(name.rsplit("-b", 1)[1])
                     if name.startswith(("model-b", "detect-stage-b")) else 1)
            result = run_worker(args, name, batch)
            runs[name].append(result)
            print(f"round {r + 1}/{args.repeat}  {name:12s} {result['fps']:7.2f} fps  "
                  f"peak {result['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    accuracy = run_worker(args, "accuracy") if not args.only else None
    medians = {n: statistics.median(x["fps"] for x in rs) for n, rs in runs.items()}
    report(args, runs, medians, accuracy)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"input": args.input, "frames": args.frames, "preset": args.preset,
             "cpus": os.cpu_count(), "runs": runs, "median_fps": medians,
             "accuracy": accuracy}, indent=2) + "\n")
    return 0


def report(args, runs, medians, accuracy) -> None:
    print(f"\ninput {args.input}, {args.frames} frames, preset {args.preset}, "
          f"{os.cpu_count()} CPUs, median of {args.repeat} rounds\n")
    print(f"{'contender':14s} {'fps':>8s} {'peak MB':>8s}   notes")
    for name, fps in medians.items():
        peak = statistics.median(x["peak_rss_mb"] for x in runs[name])
        note = ""
        if name.startswith("vidstream"):
            stages = runs[name][-1]["stages"]
            note = "busy " + ", ".join(f"{k} {v['busy_share']:.0%}" for k, v in stages.items())
        print(f"{name:14s} {fps:8.2f} {peak:8.0f}   {note}")
    print()

    def ratio(a, b, words):
        if a in medians and b in medians:
            print(f"{words:48s} {medians[a] / medians[b]:6.2f}x")

    ratio("vidstream", "sequential", "vidstream / sequential loop (target >= 1.5)")
    ratio("vidstream-track", "vidstream", "with --track and a line / without (target >= 0.95)")
    ratio("noop", "decode", "no-op pipeline / bare decode (target >= 0.90)")
    for b in sorted({int(n.rsplit("-b", 1)[1]) for n in medians if n.startswith("model-b")}):
        if f"detect-stage-b{b}" in medians:
            print(f"{f'detect stage alone / bare model, batch {b}':48s} "
                  f"{medians[f'detect-stage-b{b}'] / medians[f'model-b{b}']:6.2f}x  "
                  "(target >= 0.95)")
    for name in ("vidstream", "vidstream-data"):
        if name in runs and "model-b1" in medians:
            detect_fps = statistics.median(x["stages"]["detect"]["fps"] for x in runs[name])
            print(f"{f'detect stage in {name} / bare model b1':48s} "
                  f"{detect_fps / medians['model-b1']:6.2f}x  (target >= 0.95)")
    ratio("model-b1", "model-tf", "model vidstream runs / SavedModel")
    if accuracy:
        print(f"{'fast path boxes matching the SavedModel (IoU 0.9)':48s} "
              f"{accuracy['matched_iou_0.9']}/{accuracy['reference_detections']} "
              f"({accuracy['share']:.1%}, target >= 99%)")


if __name__ == "__main__":
    sys.exit(main())

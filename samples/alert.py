"""Alert when a chosen class appears, at most once per cool-down.

    python samples/alert.py parking.mp4 --class person --cooldown 30
    python samples/alert.py rtsp://camera/stream --class car --url http://127.0.0.1:8080/alerts

Each alert is one JSON object, printed as a line or POSTed to ``--url``:
``{"label": "person", "score": 0.87, "time": 12.4, "frame": 372, "box": [x1, y1, x2, y2],
"source": "parking.mp4"}``. After an alert, the class is ignored for ``--cooldown`` seconds of
video time, so a file gives the same alerts however fast it is processed. A failed POST is
reported on stderr and watching goes on.

Rather than a stage, this sample iterates over the pipeline's frames: ``for frame in
pipeline`` runs the pipeline in the background and yields every frame with its detections.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request

from vidstream import Detector, Pipeline, VideoSource, VidstreamError


def send(alert: dict, url: str | None) -> None:
    if url is None:
        print(json.dumps(alert), flush=True)
        return
    request = urllib.request.Request(url, data=json.dumps(alert).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=5).close()
    except (urllib.error.URLError, OSError) as e:
        print(f"alert: warning: could not post to {url}: {e}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Alert when a class appears, with a cool-down.")
    parser.add_argument("input", help="video file, URL or /dev/videoN")
    parser.add_argument("--class", dest="label", default="person", help="class to watch for")
    parser.add_argument("--cooldown", type=float, default=10.0,
                        help="seconds of video to stay quiet after an alert")
    parser.add_argument("--threshold", type=float, default=0.5, help="minimum score")
    parser.add_argument("--url", help="POST each alert as JSON here instead of printing it")
    args = parser.parse_args(argv)

    source = VideoSource(args.input)
    last_alert = None
    try:
        pipeline = Pipeline(source, [Detector(classes=[args.label], threshold=args.threshold)])
        for frame in pipeline:
            if not len(frame.detections):
                continue
            if last_alert is not None and frame.time - last_alert < args.cooldown:
                continue
            best = max(frame.detections, key=lambda d: d.score)
            send({"label": best.label, "score": round(best.score, 3),
                  "time": round(frame.time, 3), "frame": frame.index,
                  "box": [round(v, 1) for v in best.box], "source": source.display}, args.url)
            last_alert = frame.time
    except VidstreamError as e:
        sys.exit(f"alert: error: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

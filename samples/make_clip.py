"""Make sample clips with known content, from real photos. Nothing here is downloaded: the
photos come from packages already installed (scikit-image's bundled images) or from a file you
name.

    python samples/make_clip.py build/photos.mp4 --scene photos --frames 90 --audio
    python samples/make_clip.py build/traffic.mp4 --scene traffic --frames 240

Scenes:

* ``photos``: scikit-image's bundled ``astronaut`` (a person) and ``coffee`` (a cup) glide over
  a plain background. ``--truth FILE`` writes, per frame, where the person and the cup are:
  the ground truth for accuracy tests.
* ``traffic``: a motorcycle (scikit-image's bundled ``motorcycle_left``) panning across a
  road, and a city bus with pedestrians when a bus photo is at hand: ``--bus-photo FILE``, or
  ``assets/bus.jpg`` of the ``ultralytics`` package if it is installed. Without one, the
  motorcycle alone is used, and the script says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

# Where the objects are inside each photo (pixels of the photo, x1 y1 x2 y2): the region a
# person would draw around them.
PHOTO_OBJECTS = {
    "astronaut": ("person", (0, 0, 370, 512)),
    "coffee": ("cup", (160, 20, 412, 258)),
    "motorcycle": ("motorcycle", (110, 50, 680, 450)),
    "bus": ("bus", (15, 225, 795, 760)),
}


@dataclass(frozen=True)
class Sprite:
    """A photo moving linearly from ``start`` to ``end`` (top-left corner, pixels)."""

    name: str
    image: np.ndarray
    start: tuple[float, float]
    end: tuple[float, float]

    def position(self, t: float) -> tuple[int, int]:
        x = self.start[0] + (self.end[0] - self.start[0]) * t
        y = self.start[1] + (self.end[1] - self.start[1]) * t
        return round(x), round(y)

    def object_box(self, t: float) -> tuple[str, list[float]]:
        label, (x1, y1, x2, y2) = PHOTO_OBJECTS[self.name]
        sy = self.image.shape[0] / _native_height(self.name)
        x, y = self.position(t)
        return label, [x + x1 * sy, y + y1 * sy, x + x2 * sy, y + y2 * sy]


_NATIVE = {"astronaut": 512, "coffee": 400, "motorcycle": 500, "bus": 1080}


def _native_height(name: str) -> int:
    return _NATIVE[name]


def _resize(image: np.ndarray, height: int) -> np.ndarray:
    import cv2

    width = round(image.shape[1] * height / image.shape[0])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def skimage_photo(name: str) -> np.ndarray:
    import skimage.data

    if name == "motorcycle":
        import skimage.io

        path = Path(skimage.data.__file__).parent / "motorcycle_left.png"
        return np.ascontiguousarray(skimage.io.imread(path)[:, :, :3])
    return getattr(skimage.data, name)()


def bus_photo(path: str | Path | None = None) -> np.ndarray | None:
    """A street photo with a bus, from ``path``, else from the ``ultralytics`` package when
    it is installed (it ships ``assets/bus.jpg``); None otherwise. Nothing is downloaded.
    """
    import cv2

    if path is None:
        spec = importlib.util.find_spec("ultralytics")  # located, not imported
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "bus.jpg"
        if not Path(path).exists():
            return None
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"make_clip: {path}: not an image")
    return np.ascontiguousarray(image[:, :, ::-1])


def scene_sprites(scene: str, width: int, height: int, bus: str | Path | None = None
                  ) -> tuple[np.ndarray, list[Sprite]]:
    """The background and the moving photos of ``scene`` at ``width`` x ``height``."""
    s = height / 1080
    if scene == "photos":
        yy = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        background = (np.array([70, 90, 110], np.float32) * (0.7 + 0.6 * yy)).astype(np.uint8)
        background = np.broadcast_to(background, (height, width, 3)).copy()
        astro = _resize(skimage_photo("astronaut"), round(760 * s))
        coffee = _resize(skimage_photo("coffee"), round(640 * s))
        cx = width - coffee.shape[1] - 20 * s
        sprites = [
            Sprite("astronaut", astro, (20 * s, 160 * s), (160 * s, 200 * s)),
            Sprite("coffee", coffee, (cx, 420 * s), (cx, 40 * s)),
        ]
        return background, sprites
    if scene == "traffic":
        moto = _resize(skimage_photo("motorcycle"), round(560 * s))
        bus = bus_photo(bus)
        background = np.full((height, width, 3), 96, np.uint8)
        background[int(height * 0.55):] = 64  # a road
        sprites = [Sprite("motorcycle", moto, (width - moto.shape[1] - 40 * s, 470 * s),
                          (width * 0.45, 470 * s))]
        if bus is not None:
            bus = _resize(bus, round(1000 * s))
            sprites.insert(0, Sprite("bus", bus, (20 * s, 40 * s), (width * 0.40 - bus.shape[1],
                                                                       40 * s)))
        return background, sprites
    raise SystemExit(f"make_clip: unknown scene {scene!r}; use photos or traffic")


def render(background: np.ndarray, sprites: list[Sprite], t: float) -> np.ndarray:
    frame = background.copy()
    h, w = frame.shape[:2]
    for sp in sprites:
        x, y = sp.position(t)
        ih, iw = sp.image.shape[:2]
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + iw, w), min(y + ih, h)
        if x1 > x0 and y1 > y0:
            frame[y0:y1, x0:x1] = sp.image[y0 - y : y1 - y, x0 - x : x1 - x]
    return frame


def frames(scene: str, width: int, height: int, count: int, bus: str | Path | None = None
           ) -> Iterator[tuple[np.ndarray, list[dict]]]:
    background, sprites = scene_sprites(scene, width, height, bus)
    for i in range(count):
        t = i / max(count - 1, 1)
        truth = []
        for sp in sprites:
            label, box = sp.object_box(t)
            truth.append({"label": label, "box": [round(v, 1) for v in box]})
        yield render(background, sprites, t), truth


def encode(
    path: str | Path,
    images: Iterable[np.ndarray],
    *,
    rate: Fraction = Fraction(30000, 1001),
    audio: bool = False,
    codec: str = "libx264",
    container_format: str | None = None,
    options: dict[str, str] | None = None,
) -> int:
    """Encode RGB ``images`` (all one size) at ``rate``; returns the number of frames."""
    count = 0
    with av.open(str(path), "w", format=container_format, options=options or {}) as out:
        video = None
        for image in images:
            if video is None:
                video = out.add_stream(codec, rate=rate)
                video.height, video.width = image.shape[:2]
                video.pix_fmt = "yuv420p"
                video.codec_context.time_base = 1 / rate
                if codec == "libx264":
                    video.options = {"preset": "veryfast"}
                sound = _add_tone_stream(out) if audio else None
            picture = av.VideoFrame.from_ndarray(image, format="rgb24")
            picture.pts = count
            picture.time_base = 1 / rate
            for packet in video.encode(picture):
                out.mux(packet)
            count += 1
        if video is not None:
            for packet in video.encode(None):
                out.mux(packet)
            if sound is not None:
                _write_tone(out, sound, seconds=float(count / rate))
    return count


def make_clip(
    path: str | Path,
    *,
    scene: str = "photos",
    width: int = 1920,
    height: int = 1080,
    count: int = 90,
    rate: Fraction = Fraction(30000, 1001),
    audio: bool = False,
    bus: str | Path | None = None,
    **kwargs: Any,
) -> list[list[dict]]:
    """Encode a clip of ``scene``; returns the per-frame ground truth."""
    truth: list[list[dict]] = []

    def images() -> Iterator[np.ndarray]:
        for image, boxes in frames(scene, width, height, count, bus):
            truth.append(boxes)
            yield image

    encode(path, images(), rate=rate, audio=audio, **kwargs)
    return truth


def _add_tone_stream(out: Any) -> Any:
    sound = out.add_stream("aac", rate=48000)
    sound.layout = "mono"
    return sound


def _write_tone(out: Any, stream: Any, seconds: float) -> None:
    samples = int(48000 * seconds)
    t = np.arange(samples, dtype=np.float32) / 48000
    wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    pts = 0
    for start in range(0, samples, 1024):
        chunk = av.AudioFrame.from_ndarray(wave[:, start : start + 1024], format="fltp",
                                           layout="mono")
        chunk.sample_rate = 48000
        chunk.pts = pts
        pts += chunk.samples
        for packet in stream.encode(chunk):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="clip to write (.mp4, .ts, .mkv)")
    parser.add_argument("--scene", choices=("photos", "traffic"), default="photos")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--rate", default="30000/1001", help="frame rate, e.g. 25 or 30000/1001")
    parser.add_argument("--audio", action="store_true", help="add a 440 Hz AAC tone")
    parser.add_argument("--truth", help="write the per-frame ground truth JSON here")
    parser.add_argument("--bus-photo", metavar="FILE",
                        help="traffic scene: a street photo to add (default: the ultralytics "
                        "package's bus.jpg when it is installed; nothing is downloaded)")
    args = parser.parse_args(argv)
    if args.scene == "traffic" and bus_photo(args.bus_photo) is None:
        print("make_clip: no bus photo here (--bus-photo FILE, or the ultralytics package's "
              "assets/bus.jpg): the traffic scene has the motorcycle only", file=sys.stderr)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    truth = make_clip(args.output, scene=args.scene, width=args.width, height=args.height,
                      count=args.frames, rate=Fraction(args.rate), audio=args.audio,
                      bus=args.bus_photo)
    if args.truth:
        Path(args.truth).write_text(json.dumps(truth))
    print(f"wrote {args.output}: {args.frames} frames {args.width}x{args.height} "
          f"at {args.rate} fps ({args.scene})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

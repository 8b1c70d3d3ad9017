"""``vidstream.json``: what vidstream writes beside a model it converts.

It says how to feed the model (``input_size``, ``resize``) and which networks sit beside the
SavedModel (``tflite``). A backend is chosen and images are fitted from it, so a damaged file
is an error naming the file, never a silent fall-back to other settings.

>>> import json, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> read_metadata(d)                                    # none: an ordinary user's model
{}
>>> _ = (d / METADATA_FILE).write_text('{"resize": "letterbox", "input_size": [512, 512]}')
>>> read_metadata(d)["resize"]
'letterbox'
>>> _ = (d / METADATA_FILE).write_text('{"resize": "letterbox",')
>>> read_metadata(d)
Traceback (most recent call last):
...
vidstream.errors.ModelError: .../vidstream.json: corrupt model metadata: not valid JSON: ...
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ModelError

METADATA_FILE = "vidstream.json"

_NUMBER = (int, float)
# The keys vidstream reads, with the types they must have; other keys are informational.
_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "description": (str,),
    "format_version": (int,),
    "input_size": (list,),
    "resize": (str,),
    "max_batch": (int, type(None)),
    "tflite": (str,),
    "num_classes": (int,),
    "stride": (int,),
    "max_detections": (int,),
    "nms_iou": _NUMBER,
    "min_score": _NUMBER,
}
RESIZE_MODES = ("letterbox", "stretch")


def metadata_file(model: str | os.PathLike[str]) -> Path:
    """Where the metadata of ``model`` (a directory, or a file in one) lives."""
    path = Path(model)
    return (path if path.is_dir() else path.parent) / METADATA_FILE


def read_metadata(model: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated ``vidstream.json`` beside ``model`` ({} when there is none).

    ``model`` is a model directory or a file in one (a ``.tflite`` network). A file that is
    unreadable, not JSON, or has a known key of the wrong type raises :class:`ModelError`
    naming the file and the cause.
    """
    meta = metadata_file(model)
    if not meta.is_file():
        return {}
    try:
        data = json.loads(meta.read_text())
    except OSError as e:
        raise _corrupt(meta, f"unreadable: {e.strerror or e}") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _corrupt(meta, f"not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise _corrupt(meta, f"expected a JSON object, got {type(data).__name__}")
    for key, types in _TYPES.items():
        # bool is an int to Python, never a count or a size here
        if key in data and (not isinstance(data[key], types) or isinstance(data[key], bool)):
            raise _corrupt(meta, f"{key!r} is {data[key]!r}, expected "
                                 f"{' or '.join(t.__name__ for t in types)}")
    size = data.get("input_size")
    if size is not None and (len(size) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise _corrupt(meta, f"'input_size' is {size!r}, expected [width, height]")
    if data.get("resize", "stretch") not in RESIZE_MODES:
        raise _corrupt(meta, f"'resize' is {data['resize']!r}, expected "
                             f"{' or '.join(RESIZE_MODES)}")
    return data


def _corrupt(meta: Path, cause: str) -> ModelError:
    return ModelError(f"{meta}: corrupt model metadata: {cause}")

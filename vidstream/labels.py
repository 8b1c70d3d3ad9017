"""COCO class names as Object Detection API models report them (1-based ids, 90 with gaps).

>>> COCO_LABELS[1], COCO_LABELS[3], coco80_to_coco90(41)
('person', 'car', 47)
"""

from __future__ import annotations

_COCO80_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# The 80 contiguous training classes map onto the 90 ids of the original COCO label map.
COCO80_TO_COCO90: tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27,
    28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53,
    54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80,
    81, 82, 84, 85, 86, 87, 88, 89, 90,
)  # fmt: skip

COCO_LABELS: dict[int, str] = dict(zip(COCO80_TO_COCO90, _COCO80_NAMES, strict=True))


def coco80_to_coco90(index: int) -> int:
    """The label-map id of a 0-based COCO-80 class index."""
    return COCO80_TO_COCO90[index]


def label_for(class_id: int, labels: dict[int, str] | None = None) -> str:
    """Name of ``class_id`` in ``labels`` (COCO by default), or ``class <id>`` when unknown."""
    return (labels if labels is not None else COCO_LABELS).get(class_id, f"class {class_id}")

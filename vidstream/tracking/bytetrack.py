"""ByteTrack (Zhang et al., 2022) on numpy and scipy, fitted to this project's detector.

Each frame's detections are split by score: *high* ones (at or above the activation
threshold) are matched first to every live track by IoU with the track's Kalman prediction;
the *low* ones (between the floor and the activation threshold: an occluded or blurred object
the detector is unsure of) then keep the tracks that are still unmatched alive. Unmatched high
detections start new tracks; a track is *confirmed*, and only then gets an id, once it was
matched in ``min_frames`` consecutive frames. A track not matched is *lost* and can be found
again for ``lost_buffer_s`` seconds of stream time; ids are never reused.

Only confirmed tracks come out: ``update`` returns the detections matched to them, with their
``track_ids``. Unconfirmed tracks never come out (not even as a shared "-1" id), so nothing
downstream can count them.

>>> import numpy as np
>>> from vidstream import Detections
>>> tracker = ByteTrack(TrackerSettings(min_frames=2))
>>> def frame(x):
...     return Detections(np.array([[x, 10, x + 50, 110]]), np.array([0.5]), np.array([1]))
>>> [tracker.update(frame(x), t=i / 30).track_ids.tolist() for i, x in enumerate([0, 5, 10])]
[[], [1], [1]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..detections import Detections
from ..errors import ConfigError
from ..settings import DEFAULTS
from .kalman import STEP_S, initiate, predict, update, xyah_to_xyxy, xyxy_to_xyah

#: IoU needed to match a low-score detection, and to match an unconfirmed track: ByteTrack's.
LOW_MIN_IOU = 0.5
UNCONFIRMED_MIN_IOU = 0.3
#: A lost track this similar to a tracked one is the same object twice: the younger goes.
DUPLICATE_IOU = 0.85

_UNCONFIRMED, _TRACKED, _LOST = 0, 1, 2


@dataclass(frozen=True)
class TrackerSettings:
    """ByteTrack's parameters, with defaults fitted to the default detector.

    * ``activation_threshold``: a detection scoring at least this is *high*: it is matched
      first and may start a track. None (the default): the detector's own threshold, i.e. the
      detections the detector reports as ``frame.detections`` are the high ones and those it
      keeps below its threshold (``Detections.low``) the low ones. ByteTrack's usual 0.6-0.7
      would never start a track with CenterNet, which scores a clearly visible person
      0.4-0.55.
    * ``floor``: detections below this score are ignored (ByteTrack's 0.1).
    * ``lost_buffer_s``: seconds (of stream time, from timestamps) a lost track may be found
      again before it ends (ByteTrack: 30 frames at 30 fps).
    * ``min_iou``: least IoU between a track's prediction and a high detection to match them
      (ByteTrack's ``match_thresh`` 0.8 is a cost: IoU 0.2).
    * ``min_frames``: consecutive matched frames before a track is confirmed and gets an id.

    >>> TrackerSettings().floor, TrackerSettings().lost_buffer_s
    (0.1, 1.0)
    """

    activation_threshold: float | None = DEFAULTS.track_activation
    floor: float = DEFAULTS.track_floor
    lost_buffer_s: float = DEFAULTS.track_buffer_s
    min_iou: float = DEFAULTS.track_min_iou
    min_frames: int = DEFAULTS.track_min_frames

    def __post_init__(self) -> None:
        for name in ("floor", "min_iou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1, got {value}",
                                  param=f"track_{name}")
        act = self.activation_threshold
        if act is not None and not self.floor <= act <= 1.0:
            raise ConfigError(
                f"the activation threshold must be between the floor ({self.floor}) and 1, "
                f"got {act}", param="track_activation")
        if self.lost_buffer_s < 0:
            raise ConfigError(f"the lost-track buffer must be >= 0 s, got {self.lost_buffer_s}",
                              param="track_buffer_s")
        if self.min_frames < 1:
            raise ConfigError(f"min_frames must be >= 1, got {self.min_frames}",
                              param="track_min_frames")


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a (N, 4)`` with every box of ``b (M, 4)``, ``x1 y1 x2 y2``.

    >>> iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30]]))
    array([[0.33333333, 0.        ]])
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0],
                                                                       b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1],
                                                                       b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _match(iou: np.ndarray, min_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the assignment maximising IoU, pairs below ``min_iou`` left out."""
    if iou.size == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    cost = np.where(iou >= min_iou, 1.0 - iou, 1e6)
    rows, cols = linear_sum_assignment(cost)
    ok = iou[rows, cols] >= min_iou
    return rows[ok], cols[ok]


class ByteTrack:
    """One stream's tracker: ``update(detections, t)`` once per frame, in order.

    ``t`` is the frame's time in seconds (``Frame.time``); None steps one frame at 30 fps.
    """

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._mean = np.zeros((0, 8))
        self._cov = np.zeros((0, 8, 8))
        self._state = np.zeros(0, np.int8)
        self._id = np.zeros(0, np.int64)  # 0 until confirmed
        self._hits = np.zeros(0, np.int64)  # consecutive matched frames
        self._seen = np.zeros(0)  # time last matched
        self._born = np.zeros(0)  # time started
        self._votes: list[dict[int, float]] = []  # class id -> summed score
        self._t: float | None = None
        self._labels: tuple[str, ...] = ()
        self._next_id = 1
        self.frames = 0
        #: ids of tracks that ended (lost for longer than the buffer) in the last update
        self.ended: list[int] = []

    # -- state queries -------------------------------------------------------------------

    @property
    def confirmed(self) -> int:
        """Confirmed tracks alive now (tracked or lost)."""
        return int(np.count_nonzero(self._id))

    @property
    def next_id(self) -> int:
        """The id the next confirmed track will get (ids so far: 1 .. next_id - 1)."""
        return self._next_id

    def live_ids(self) -> set[int]:
        """Ids of the confirmed tracks alive now, tracked or lost."""
        return {int(i) for i in self._id if i}

    def classes_of(self, track_ids: np.ndarray) -> list[int]:
        """The class id each track's detections voted for most (by summed score); -1 for an
        id that is not alive."""
        row = {int(i): r for r, i in enumerate(self._id.tolist()) if i}
        out = []
        for tid in np.asarray(track_ids).tolist():
            r = row.get(int(tid))
            votes = self._votes[r] if r is not None else None
            out.append(max(votes, key=votes.__getitem__) if votes else -1)
        return out

    # -- the update ----------------------------------------------------------------------

    def update(self, detections: Detections, t: float | None = None) -> Detections:
        """Track one frame's detections; returns those of confirmed tracks, with ids."""
        s = self.settings
        if t is None:
            t = (self._t + STEP_S) if self._t is not None else 0.0
        dt = 0.0 if self._t is None else max(t - self._t, 0.0)
        self._t = t
        self.frames += 1
        boxes, scores, classes, high = self._split(detections)
        hi = np.flatnonzero(high)
        lo = np.flatnonzero(~high)

        # predict every track to now (a lost track's height stops changing, as ByteTrack)
        n = len(self._mean)
        if n:
            self._mean[self._state != _TRACKED, 7] = 0.0
            self._mean, self._cov = predict(self._mean, self._cov,
                                                   np.full(n, dt / STEP_S))
        predicted = xyah_to_xyxy(self._mean[:, :4])
        matched_track: list[int] = []
        matched_det: list[int] = []

        # 1. confirmed tracks (tracked and lost) with high detections
        pool = np.flatnonzero(self._state != _UNCONFIRMED)
        rows, cols = _match(iou_matrix(predicted[pool], boxes[hi]), s.min_iou)
        matched_track += pool[rows].tolist()
        matched_det += hi[cols].tolist()
        free_hi = np.setdiff1d(hi, hi[cols], assume_unique=True)
        rest = np.setdiff1d(pool, pool[rows], assume_unique=True)

        # 2. the remaining tracked ones with low detections
        rest = rest[self._state[rest] == _TRACKED]
        rows, cols = _match(iou_matrix(predicted[rest], boxes[lo]), LOW_MIN_IOU)
        matched_track += rest[rows].tolist()
        matched_det += lo[cols].tolist()
        self._state[np.setdiff1d(rest, rest[rows], assume_unique=True)] = _LOST

        # 3. unconfirmed tracks with the high detections left; an unmatched one ends
        unconf = np.flatnonzero(self._state == _UNCONFIRMED)
        rows, cols = _match(iou_matrix(predicted[unconf], boxes[free_hi]), UNCONFIRMED_MIN_IOU)
        matched_track += unconf[rows].tolist()
        matched_det += free_hi[cols].tolist()
        new_dets = np.setdiff1d(free_hi, free_hi[cols], assume_unique=True)
        drop = np.zeros(n, bool)
        drop[np.setdiff1d(unconf, unconf[rows], assume_unique=True)] = True

        # correct the matched tracks in one batch
        mt = np.asarray(matched_track, np.intp)
        md = np.asarray(matched_det, np.intp)
        if len(mt):
            self._mean[mt], self._cov[mt] = update(
                self._mean[mt], self._cov[mt], xyxy_to_xyah(boxes[md]))
            self._hits[mt] += 1
            self._seen[mt] = t
            self._state[mt] = np.where(self._state[mt] == _UNCONFIRMED, _UNCONFIRMED, _TRACKED)
            for i, d in zip(mt.tolist(), md.tolist(), strict=True):
                votes = self._votes[i]
                votes[int(classes[d])] = votes.get(int(classes[d]), 0.0) + float(scores[d])

        # tracks lost too long end; so does the younger of a tracked/lost duplicate
        lost = self._state == _LOST
        drop |= lost & (t - self._seen > s.lost_buffer_s)
        tracked = np.flatnonzero(self._state == _TRACKED)
        lost_i = np.flatnonzero(lost & ~drop)
        if len(tracked) and len(lost_i):
            dup_t, dup_l = np.nonzero(
                iou_matrix(predicted[tracked], predicted[lost_i]) > DUPLICATE_IOU)
            for a, b in zip(tracked[dup_t].tolist(), lost_i[dup_l].tolist(), strict=True):
                drop[b if self._born[a] <= self._born[b] else a] = True
        self.ended = [int(i) for i in self._id[drop] if i]

        # start tracks from the high detections left over
        if s.activation_threshold is not None:
            new_dets = new_dets[scores[new_dets] >= s.activation_threshold]
        alive = ~drop[mt]
        mt, md = (np.cumsum(~drop) - 1)[mt[alive]], md[alive]  # row numbers after _keep
        self._keep(~drop)
        if len(new_dets):
            self._add(boxes[new_dets], scores[new_dets], classes[new_dets], t)
            mt = np.concatenate([mt, np.arange(len(self._mean) - len(new_dets),
                                               len(self._mean))])
            md = np.concatenate([md, new_dets])

        # confirm the tracks matched in enough consecutive frames
        fresh = (self._id == 0) & (self._hits >= s.min_frames)
        for i in np.flatnonzero(fresh):
            self._id[i] = self._next_id
            self._next_id += 1
            self._state[i] = _TRACKED

        # output: the detections of confirmed tracks matched in this frame, in input order
        ids = self._id[mt] if len(mt) else np.zeros(0, np.int64)
        out = ids > 0
        order = np.argsort(md[out], kind="stable")
        det_idx = md[out][order]
        return Detections(
            boxes[det_idx], scores[det_idx], classes[det_idx],
            tuple(self._labels[i] for i in det_idx.tolist()) if self._labels else (),
            track_ids=ids[out][order],
        )

    # -- helpers -------------------------------------------------------------------------

    def _split(self, d: Detections) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All detections above the floor (boxes, scores, classes) and which are high."""
        s = self.settings
        parts = [d] if d.low is None else [d, d.low]
        boxes = np.concatenate([p.boxes for p in parts]).astype(np.float64)
        scores = np.concatenate([p.scores for p in parts])
        classes = np.concatenate([p.class_ids for p in parts])
        labels = tuple(lab for p in parts for lab in p.labels)
        if s.activation_threshold is None:
            high = np.zeros(len(scores), bool)
            high[: len(d)] = True
        else:
            high = scores >= s.activation_threshold
        keep = high | (scores >= s.floor)
        if not keep.all():
            boxes, scores, classes, high = boxes[keep], scores[keep], classes[keep], high[keep]
            labels = tuple(lab for lab, k in zip(labels, keep.tolist(), strict=True) if k)
        self._labels = labels
        return boxes, scores, classes, high

    def _keep(self, keep: np.ndarray) -> None:
        if keep.all():
            return
        self._mean, self._cov = self._mean[keep], self._cov[keep]
        self._state, self._id, self._hits = self._state[keep], self._id[keep], self._hits[keep]
        self._seen, self._born = self._seen[keep], self._born[keep]
        self._votes = [v for v, k in zip(self._votes, keep.tolist(), strict=True) if k]

    def _add(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, t: float) -> None:
        mean, cov = initiate(xyxy_to_xyah(boxes))
        n = len(boxes)
        self._mean = np.concatenate([self._mean, mean])
        self._cov = np.concatenate([self._cov, cov])
        self._state = np.concatenate([self._state, np.full(n, _UNCONFIRMED, np.int8)])
        self._id = np.concatenate([self._id, np.zeros(n, np.int64)])
        self._hits = np.concatenate([self._hits, np.ones(n, np.int64)])
        self._seen = np.concatenate([self._seen, np.full(n, t)])
        self._born = np.concatenate([self._born, np.full(n, t)])
        self._votes += [{int(c): float(sc)} for c, sc in zip(classes, scores, strict=True)]


__all__ = ["ByteTrack", "TrackerSettings", "iou_matrix"]

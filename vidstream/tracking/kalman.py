"""ByteTrack's constant-velocity Kalman filter, vectorised over tracks, with time steps.

The state of a box is ``x, y, a, h`` (centre, aspect ratio w/h, height) and their velocities.
The noise model is ByteTrack's (process and measurement noise proportional to the box height,
``1/20`` for positions and ``1/160`` for velocities per step), where a *step* is
:data:`STEP_S` seconds (one frame at 30 fps). A frame ``dt`` seconds after the last moves the
prediction ``dt / STEP_S`` steps and adds that many steps of process noise, so variable frame
rates and gaps are handled by timestamps, not by counting frames; at 30 fps it is exactly
ByteTrack's filter.

All functions take stacked arrays: ``mean (N, 8)``, ``cov (N, 8, 8)``.

>>> import numpy as np
>>> mean, cov = initiate(np.array([[100.0, 50.0, 0.5, 80.0]]))
>>> mean, cov = predict(mean, cov, dt=np.array([1.0]))
>>> mean[0, :4].round(1).tolist()
[100.0, 50.0, 0.5, 80.0]
"""

from __future__ import annotations

import numpy as np

#: Seconds of one motion step (the unit of velocity): one frame at 30 fps, as ByteTrack.
STEP_S = 1.0 / 30.0

_W_POS = 1.0 / 20.0
_W_VEL = 1.0 / 160.0
_H = np.eye(4, 8)


def initiate(xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means and covariances of new tracks from measurements ``(N, 4)`` (zero velocity)."""
    n = len(xyah)
    mean = np.zeros((n, 8))
    mean[:, :4] = xyah
    h = xyah[:, 3]
    std = np.stack(
        [2 * _W_POS * h, 2 * _W_POS * h, np.full(n, 1e-2), 2 * _W_POS * h,
         10 * _W_VEL * h, 10 * _W_VEL * h, np.full(n, 1e-5), 10 * _W_VEL * h],
        axis=1,
    )
    cov = np.zeros((n, 8, 8))
    idx = np.arange(8)
    cov[:, idx, idx] = std**2
    return mean, cov


def predict(mean: np.ndarray, cov: np.ndarray, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means and covariances ``dt`` steps (array ``(N,)``, in steps of :data:`STEP_S`) later."""
    n = len(mean)
    if n == 0:
        return mean, cov
    f = np.broadcast_to(np.eye(8), (n, 8, 8)).copy()
    f[:, [0, 1, 2, 3], [4, 5, 6, 7]] = dt[:, None]
    h = mean[:, 3]
    std = np.stack(
        [_W_POS * h, _W_POS * h, np.full(n, 1e-2), _W_POS * h,
         _W_VEL * h, _W_VEL * h, np.full(n, 1e-5), _W_VEL * h],
        axis=1,
    )
    new_mean = np.einsum("nij,nj->ni", f, mean)
    new_cov = f @ cov @ f.transpose(0, 2, 1)
    idx = np.arange(8)
    new_cov[:, idx, idx] += std**2 * dt[:, None]  # random walk: variance grows with time
    return new_mean, new_cov


def update(
    mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Means and covariances corrected by measurements ``(N, 4)``."""
    if len(mean) == 0:
        return mean, cov
    h = mean[:, 3]
    r = np.stack([_W_POS * h, _W_POS * h, np.full(len(h), 1e-1), _W_POS * h], axis=1) ** 2
    proj_mean = mean[:, :4]
    proj_cov = cov[:, :4, :4].copy()
    idx = np.arange(4)
    proj_cov[:, idx, idx] += r
    ph = cov[:, :, :4]  # cov @ H.T
    # gain K = P H^T S^-1, solved as S K^T = H P^T (S symmetric)
    gain = np.linalg.solve(proj_cov, ph.transpose(0, 2, 1)).transpose(0, 2, 1)
    new_mean = mean + np.einsum("nij,nj->ni", gain, xyah - proj_mean)
    new_cov = cov - gain @ proj_cov @ gain.transpose(0, 2, 1)
    return new_mean, new_cov


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    w = boxes[:, 2] - boxes[:, 0]
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-6)
    return np.stack([boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w / h, h], axis=1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    w = xyah[:, 2] * xyah[:, 3]
    h = xyah[:, 3]
    x = xyah[:, 0] - w / 2
    y = xyah[:, 1] - h / 2
    return np.stack([x, y, x + w, y + h], axis=1)


__all__ = ["STEP_S", "initiate", "predict", "update", "xyah_to_xyxy", "xyxy_to_xyah"]

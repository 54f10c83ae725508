"""Mean shower shapes along the three image axes, and the mean squared error between two
samples' shapes: the figure of merit of the 3DGAN papers, and the validation metric of the image
GANs (``val_shape_mse``).

Example:
    >>> import numpy as np
    >>> x = np.ones((2, 3 * 2 * 2))
    >>> shower_shapes(x, (3, 2, 2))["layer"]
    array([1., 1., 1.])
    >>> shower_shape_mse(x, x, (3, 2, 2))["mean"]
    0.0
"""

from __future__ import annotations

import numpy as np

#: (L, a, b): layers and the two in-layer axes of a regular image
ImageShape = tuple[int, int, int]


def shower_shapes(showers: np.ndarray, image_shape: ImageShape) -> dict[str, np.ndarray]:
    """Energy-weighted mean shower shapes along the three image axes.

    Args:
        showers: (N, V) voxel energies in MeV, V = L * a * b.
        image_shape: (L, a, b).

    Returns:
        ``{"layer": (L,), "x": (a,), "y": (b,)}``: the mean energy profile along each axis,
        normalised so that its bins average 1 (a flat profile is 1 everywhere).
    """
    img = np.asarray(showers, dtype=np.float64).reshape(-1, *image_shape).mean(axis=0)
    out = {}
    for name, axes in (("layer", (1, 2)), ("x", (0, 2)), ("y", (0, 1))):
        p = img.sum(axis=axes)
        total = p.sum()
        out[name] = p * (len(p) / total) if total > 0 else np.zeros_like(p)
    return out


def shower_shape_mse(
    reference: np.ndarray, generated: np.ndarray, image_shape: ImageShape
) -> dict[str, float]:
    """Mean squared error between the :func:`shower_shapes` of two samples, per axis and mean.

    Returns ``{"layer": ..., "x": ..., "y": ..., "mean": ...}`` (dimensionless: profiles are
    normalised to bin average 1).
    """
    ref = shower_shapes(reference, image_shape)
    gen = shower_shapes(generated, image_shape)
    out = {k: float(np.mean((ref[k] - gen[k]) ** 2)) for k in ref}
    out["mean"] = float(np.mean([out["layer"], out["x"], out["y"]]))
    return out

"""Showers of any geometry <-> small pixel images for quantum circuits, and back.

A :class:`Downsampler` assigns every voxel to exactly one pixel:

=========  ===================  =============================================================
image      axes                 pixel of a voxel
=========  ===================  =============================================================
``1d``     (depth,)             ``floor(layer * 8 / n_layers)``: an 8-pixel longitudinal profile
``2d``     ``depth-radius``     (depth group, radial group); cylindrical: radial bin index
                                grouped per layer, Cartesian: distance of the cell centre
``2d``     ``x-y``              (x group, y group) summed over layers; Cartesian grids only
=========  ===================  =============================================================

The forward map sums voxel energies per pixel (energy is conserved exactly). The inverse spreads
each pixel's energy over its member voxels with per-voxel fractions fitted on training data (the
mean, over training showers with energy in that pixel, of voxel / pixel energy); the fractions of
one pixel sum to 1, so ``forward(inverse(pixels)) == pixels`` and the total is kept.

2D images are "1D stacked" row by row into a 64-vector (row = first axis), which is the order of
the basis states of a 6-qubit register (the first axis on the first three qubits).
"""

from __future__ import annotations

import numpy as np
import torch

from caloforge.errors import ConfigError
from caloforge.geometry import Geometry

#: pixels per image axis
SIDE = 8
IMAGES = ("1d", "2d")
AXES = ("depth-radius", "x-y")


def _group(index: np.ndarray, size: int | np.ndarray, n: int = SIDE) -> np.ndarray:
    """Split ``size`` consecutive bins into ``n`` near-equal groups: bin index -> group index."""
    return np.minimum((np.asarray(index) * n) // np.asarray(size), n - 1).astype(np.int64)


class Downsampler:
    """Map (N, V) showers of one geometry to (N, P) pixel images in MeV, and back.

    Args:
        geometry: the readout geometry of the showers.
        image: ``"1d"`` (P = 8, depth profile) or ``"2d"`` (P = 64, stacked 8 x 8 image).
        axes: for ``"2d"``, ``"depth-radius"`` (any geometry) or ``"x-y"`` (Cartesian only).

    Attributes:
        pixel_of_voxel: pixel index of every voxel, shape (V,), int64.
        fractions: per-voxel share of its pixel's energy, shape (V,); uniform until :meth:`fit`.
    """

    def __init__(self, geometry: Geometry, image: str = "1d", axes: str = "depth-radius") -> None:
        if image not in IMAGES:
            raise ConfigError(f"unknown image kind {image!r}; use one of {', '.join(IMAGES)}")
        if axes not in AXES:
            raise ConfigError(f"unknown image axes {axes!r}; use one of {', '.join(AXES)}")
        if image == "2d" and axes == "x-y" and geometry.kind != "cartesian":
            raise ConfigError(
                f"image axes 'x-y' need a Cartesian geometry, but {geometry.name!r} is "
                f"{geometry.kind}; use 'depth-radius'"
            )
        self.geometry = geometry
        self.image = image
        self.axes = axes
        self.pixel_of_voxel = self._assign()
        counts = np.bincount(self.pixel_of_voxel, minlength=self.n_pixels)
        self.fractions = 1.0 / counts[self.pixel_of_voxel]

    # ----------------------------------------------------------------- geometry
    @property
    def image_shape(self) -> tuple[int, ...]:
        """(8,) for 1D images, (8, 8) for 2D images."""
        return (SIDE,) if self.image == "1d" else (SIDE, SIDE)

    @property
    def n_pixels(self) -> int:
        return int(np.prod(self.image_shape))

    @property
    def axis_names(self) -> tuple[str, ...]:
        if self.image == "1d":
            return ("depth",)
        return ("x", "y") if self.axes == "x-y" else ("depth", "radius")

    def _assign(self) -> np.ndarray:
        g = self.geometry
        layer, a, b = g.unravel(np.arange(g.n_voxels))
        depth = _group(layer, g.n_layers)
        if self.image == "1d":
            return depth
        if self.axes == "x-y":
            nx = np.array([lay.nx for lay in g.cartesian_layers])[layer]
            ny = np.array([lay.ny for lay in g.cartesian_layers])[layer]
            return _group(a, nx) * SIDE + _group(b, ny)
        if g.kind == "cylindrical":
            n_radial = np.array([lay.n_radial for lay in g.cylindrical_layers])[layer]
            radius = _group(b, n_radial)
        else:
            r = g.voxel_polar[0]
            edges = np.linspace(0.0, r.max() * (1 + 1e-9), SIDE + 1)
            radius = np.clip(np.searchsorted(edges, r, side="right") - 1, 0, SIDE - 1)
        return depth * SIDE + radius

    # ----------------------------------------------------------------- fitting
    def fit(self, showers: np.ndarray, chunk: int = 4096) -> Downsampler:
        """Fit the per-voxel fractions on training showers (N, V) in MeV.

        A voxel's fraction is the mean of voxel / pixel energy over the showers whose pixel holds
        energy; the fractions of a pixel are renormalised to sum to 1, and a pixel that never
        holds energy keeps uniform fractions.
        """
        showers = self._check(showers)
        sums = np.zeros(self.geometry.n_voxels)
        hits = np.zeros(self.n_pixels)
        for start in range(0, len(showers), chunk):
            x = showers[start : start + chunk].astype(np.float64)
            pix = self.forward(x)
            denom = pix[:, self.pixel_of_voxel]
            safe = np.where(denom > 0, denom, 1.0)
            sums += np.where(denom > 0, x / safe, 0.0).sum(axis=0)
            hits += (pix > 0).sum(axis=0)
        per_pixel = np.bincount(self.pixel_of_voxel, weights=sums, minlength=self.n_pixels)
        counts = np.bincount(self.pixel_of_voxel, minlength=self.n_pixels)
        fitted = hits[self.pixel_of_voxel] > 0
        total = per_pixel[self.pixel_of_voxel]
        self.fractions = np.where(
            fitted & (total > 0),
            sums / np.where(total > 0, total, 1.0),
            1.0 / counts[self.pixel_of_voxel],
        )
        return self

    def _check(self, showers: np.ndarray) -> np.ndarray:
        showers = np.asarray(showers)
        if showers.ndim != 2:
            raise ConfigError(f"showers must have shape (N, V), got {showers.shape}")
        self.geometry.check_voxels(showers.shape[1], "showers")
        return showers

    # ----------------------------------------------------------------- maps
    def forward(self, showers: np.ndarray) -> np.ndarray:
        """Sum voxel energies per pixel: (N, V) MeV -> (N, P) MeV (stacked for 2D)."""
        showers = self._check(showers)
        out = np.zeros((len(showers), self.n_pixels), dtype=np.result_type(showers, np.float32))
        for p in range(self.n_pixels):
            out[:, p] = showers[:, self.pixel_of_voxel == p].sum(axis=1)
        return out

    def inverse(self, pixels: np.ndarray) -> np.ndarray:
        """Spread pixel energies over voxels: (N, P) MeV -> (N, V) MeV."""
        pixels = np.asarray(pixels)
        if pixels.ndim != 2 or pixels.shape[1] != self.n_pixels:
            raise ConfigError(
                f"pixel images must have shape (N, {self.n_pixels}), got {pixels.shape}"
            )
        return pixels[:, self.pixel_of_voxel] * self.fractions.astype(pixels.dtype)

    def images(self, pixels: np.ndarray) -> np.ndarray:
        """Unstack (N, P) -> (N, 8) or (N, 8, 8)."""
        return unstack(pixels) if self.image == "2d" else np.asarray(pixels)

    def profiles(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """Energy along each image axis: {axis name: (N, 8)} in the units of ``pixels``."""
        imgs = self.images(pixels)
        if self.image == "1d":
            return {"depth": imgs}
        first, second = self.axis_names
        return {first: imgs.sum(axis=2), second: imgs.sum(axis=1)}

    # ----------------------------------------------------------------- persistence
    def state(self) -> dict[str, torch.Tensor]:
        return {"fractions": torch.as_tensor(self.fractions, dtype=torch.float32)}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        fractions = state["fractions"].double().numpy()
        if fractions.shape != (self.geometry.n_voxels,):
            raise ConfigError(
                f"stored downsampling fractions have shape {fractions.shape}, expected "
                f"({self.geometry.n_voxels},)"
            )
        self.fractions = fractions


# --------------------------------------------------------------------------- image helpers
def stack(images: np.ndarray) -> np.ndarray:
    """ "1D stacking": (N, 8, 8) images -> (N, 64) vectors, row after row."""
    images = np.asarray(images)
    return images.reshape(len(images), -1)


def unstack(vectors: np.ndarray) -> np.ndarray:
    """Inverse of :func:`stack`: (N, 64) -> (N, 8, 8)."""
    vectors = np.asarray(vectors)
    return vectors.reshape(len(vectors), SIDE, SIDE)


def log_scale(pixels, e_inc, eps: float = 1e-6):
    """Log-scaled pixel image: log(pixels / E_inc + eps); (N, P) and (N,) MeV -> (N, P).

    Works on numpy arrays and torch tensors alike.
    """
    lib = torch if isinstance(pixels, torch.Tensor) else np
    return lib.log(pixels / e_inc.reshape(-1, 1) + eps)


def inverse_log_scale(scaled, e_inc, eps: float = 1e-6):
    """Inverse of :func:`log_scale`, clamped at 0: (N, P) -> (N, P) MeV."""
    lib = torch if isinstance(scaled, torch.Tensor) else np
    return (lib.exp(scaled) - eps).clip(0.0) * e_inc.reshape(-1, 1)


def unit_scale(fractions, eps, x_max):
    """Pixel energy fractions x = E_pixel / E_inc -> [0, 1]: log(1 + x / eps) / log(1 + x_max / eps).

    A logarithmic scale for x >> eps that stays finite at x = 0 (an empty pixel maps to 0), so it
    can be read from one qubit's P(1). ``eps`` and ``x_max`` are scalars or per-pixel (P,)
    arrays; works on numpy arrays and torch tensors alike (pass ``eps``/``x_max`` of the same
    kind as ``fractions``).
    """
    lib = torch if isinstance(fractions, torch.Tensor) else np
    return lib.log1p(fractions.clip(0.0) / eps) / lib.log1p(x_max / eps)


def inverse_unit_scale(values, eps, x_max):
    """Inverse of :func:`unit_scale`: values in [0, 1] -> fractions x = eps (exp(v L) - 1)."""
    lib = torch if isinstance(values, torch.Tensor) else np
    return eps * lib.expm1(values * lib.log1p(x_max / eps))

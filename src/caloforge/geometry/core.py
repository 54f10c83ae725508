"""Readout geometries: how a flat vector of voxel energies maps onto the detector.

A shower is a flat vector of ``n_voxels`` energies in MeV. The geometry says which voxel is
where. Two kinds of layer exist:

* :class:`CylindricalLayer` -- the CaloChallenge binning: radial edges in mm and a number of
  equal angular bins covering [-pi, pi). Inside a layer the radial index runs fastest, then the
  angular one, so ``layer_values.reshape(n_alpha, n_radial)`` gives (angle, radius).
* :class:`CartesianLayer` -- a regular grid of ``nx`` x ``ny`` cells of ``dx`` x ``dy`` mm
  centred on the shower axis; ``layer_values.reshape(nx, ny)`` gives (x, y).

Layers follow each other in increasing ``layer_id``; a geometry holds only layers with voxels
(the official dataset-1 binnings list empty layers, which the XML writer restores).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from caloforge.errors import GeometryError


@dataclass(frozen=True)
class CylindricalLayer:
    """One readout layer binned in radius and angle.

    Attributes:
        layer_id: the layer number in the detector (the official XML ``id``).
        r_edges: radial bin edges in mm, increasing, starting at 0; ``n_radial + 1`` values.
        n_alpha: number of equal angular bins over [-pi, pi).
    """

    layer_id: int
    r_edges: tuple[float, ...]
    n_alpha: int

    def __post_init__(self) -> None:
        edges = np.asarray(self.r_edges, dtype=float)
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0) or edges[0] < 0:
            raise GeometryError(
                f"layer {self.layer_id}: radial edges must be at least two increasing values "
                f">= 0 mm, got {list(self.r_edges)}"
            )
        if self.n_alpha < 1:
            raise GeometryError(f"layer {self.layer_id}: n_alpha must be >= 1, got {self.n_alpha}")

    @property
    def n_radial(self) -> int:
        return len(self.r_edges) - 1

    @property
    def n_voxels(self) -> int:
        return self.n_radial * self.n_alpha

    @property
    def shape(self) -> tuple[int, int]:
        """(n_alpha, n_radial): the shape of one layer's voxels, radius fastest."""
        return (self.n_alpha, self.n_radial)

    @property
    def alpha_edges(self) -> np.ndarray:
        """Angular bin edges in radians, shape (n_alpha + 1,), from -pi to pi."""
        return np.linspace(-np.pi, np.pi, self.n_alpha + 1)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Bin-centre (r in mm, alpha in rad) of every voxel in this layer, each shape (n_voxels,)."""
        edges = np.asarray(self.r_edges, dtype=float)
        r_c = 0.5 * (edges[1:] + edges[:-1])
        a_e = self.alpha_edges
        a_c = 0.5 * (a_e[1:] + a_e[:-1])
        alpha, r = np.meshgrid(a_c, r_c, indexing="ij")
        return r.ravel(), alpha.ravel()

    def areas(self) -> np.ndarray:
        """Area of every voxel in mm^2, shape (n_voxels,)."""
        edges = np.asarray(self.r_edges, dtype=float)
        ring = np.pi * (edges[1:] ** 2 - edges[:-1] ** 2) / self.n_alpha
        return np.tile(ring, self.n_alpha)


@dataclass(frozen=True)
class CartesianLayer:
    """One readout layer of ``nx`` x ``ny`` rectangular cells centred on the shower axis.

    Attributes:
        layer_id: the layer number in the detector.
        nx, ny: number of cells along x and y (y runs fastest in the flat vector).
        dx, dy: cell size in mm.
    """

    layer_id: int
    nx: int
    ny: int
    dx: float = 1.0
    dy: float = 1.0

    def __post_init__(self) -> None:
        if self.nx < 1 or self.ny < 1 or self.dx <= 0 or self.dy <= 0:
            raise GeometryError(
                f"layer {self.layer_id}: a Cartesian layer needs nx, ny >= 1 and cell sizes > 0 mm, "
                f"got {self.nx}x{self.ny} cells of {self.dx}x{self.dy} mm"
            )

    @property
    def n_voxels(self) -> int:
        return self.nx * self.ny

    @property
    def shape(self) -> tuple[int, int]:
        """(nx, ny): the shape of one layer's voxels, y fastest."""
        return (self.nx, self.ny)

    @property
    def x_edges(self) -> np.ndarray:
        return (np.arange(self.nx + 1) - self.nx / 2) * self.dx

    @property
    def y_edges(self) -> np.ndarray:
        return (np.arange(self.ny + 1) - self.ny / 2) * self.dy

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre (x, y) in mm of every voxel in this layer, each shape (n_voxels,)."""
        xe, ye = self.x_edges, self.y_edges
        x, y = np.meshgrid(0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1]), indexing="ij")
        return x.ravel(), y.ravel()

    def areas(self) -> np.ndarray:
        """Area of every voxel in mm^2, shape (n_voxels,)."""
        return np.full(self.n_voxels, self.dx * self.dy)


Layer = CylindricalLayer | CartesianLayer


@dataclass(frozen=True)
class Geometry:
    """A readout geometry: an ordered tuple of layers of one kind.

    Attributes:
        name: the built-in name (``ds2``, ``grid:25x25x25`` ...) or a user's label.
        layers: the layers with voxels, in increasing ``layer_id``.
        particle: the particle the binning was made for (CaloChallenge XML ``name``), if any.
        meta: extra XML ``Bin`` attributes (``pid``, ``etaMin``, ``etaMax``) and the total number
            of layers in the XML (``n_layers_total``), kept so that XML round trips are exact.
    """

    name: str
    layers: tuple[Layer, ...]
    particle: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.layers:
            raise GeometryError(f"geometry {self.name!r} has no layer with voxels")
        kinds = {type(layer) for layer in self.layers}
        if len(kinds) != 1:
            raise GeometryError(f"geometry {self.name!r} mixes cylindrical and Cartesian layers")
        ids = [layer.layer_id for layer in self.layers]
        if ids != sorted(set(ids)):
            raise GeometryError(f"geometry {self.name!r}: layer ids must increase, got {ids}")

    # ----------------------------------------------------------------- sizes and slices
    @property
    def kind(self) -> str:
        """``"cylindrical"`` or ``"cartesian"``."""
        return "cylindrical" if isinstance(self.layers[0], CylindricalLayer) else "cartesian"

    @property
    def cylindrical_layers(self) -> tuple[CylindricalLayer, ...]:
        """The layers, typed as cylindrical; raises GeometryError for a Cartesian geometry."""
        if self.kind != "cylindrical":
            raise GeometryError(f"geometry {self.name!r} is Cartesian, not cylindrical")
        return tuple(layer for layer in self.layers if isinstance(layer, CylindricalLayer))

    @property
    def cartesian_layers(self) -> tuple[CartesianLayer, ...]:
        """The layers, typed as Cartesian; raises GeometryError for a cylindrical geometry."""
        if self.kind != "cartesian":
            raise GeometryError(f"geometry {self.name!r} is cylindrical, not Cartesian")
        return tuple(layer for layer in self.layers if isinstance(layer, CartesianLayer))

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def layer_ids(self) -> tuple[int, ...]:
        return tuple(layer.layer_id for layer in self.layers)

    @cached_property
    def layer_sizes(self) -> tuple[int, ...]:
        return tuple(layer.n_voxels for layer in self.layers)

    @property
    def n_voxels(self) -> int:
        return int(sum(self.layer_sizes))

    @cached_property
    def layer_offsets(self) -> np.ndarray:
        """Index of each layer's first voxel, shape (n_layers + 1,); the last is ``n_voxels``."""
        return np.concatenate([[0], np.cumsum(self.layer_sizes)]).astype(np.int64)

    @cached_property
    def layer_slices(self) -> tuple[slice, ...]:
        """For each layer, the slice of the flat voxel vector it occupies."""
        o = self.layer_offsets
        return tuple(slice(int(o[i]), int(o[i + 1])) for i in range(self.n_layers))

    @property
    def is_regular(self) -> bool:
        """True when every layer has the same shape, so showers reshape to (L, a, b)."""
        return len({layer.shape for layer in self.layers}) == 1

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(n_layers, a, b) for regular geometries: (L, n_alpha, n_radial) or (L, nx, ny)."""
        if not self.is_regular:
            raise GeometryError(f"geometry {self.name!r} has layers of different shapes")
        return (self.n_layers, *self.layers[0].shape)

    # ----------------------------------------------------------------- index maps
    @cached_property
    def voxel_layer(self) -> np.ndarray:
        """Position (0..n_layers-1) of the layer of every voxel, shape (n_voxels,)."""
        return np.repeat(np.arange(self.n_layers), self.layer_sizes)

    @cached_property
    def _local_indices(self) -> tuple[np.ndarray, np.ndarray]:
        a_idx, b_idx = [], []
        for layer in self.layers:
            a, b = np.unravel_index(np.arange(layer.n_voxels), layer.shape)
            a_idx.append(a)
            b_idx.append(b)
        return np.concatenate(a_idx), np.concatenate(b_idx)

    def unravel(self, voxel: int | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voxel index -> (layer position, angular or x index, radial or y index)."""
        v = np.asarray(voxel)
        if np.any((v < 0) | (v >= self.n_voxels)):
            raise GeometryError(f"voxel index out of range 0..{self.n_voxels - 1} for {self.name}")
        a, b = self._local_indices
        return self.voxel_layer[v], a[v], b[v]

    def ravel(
        self, layer: int | np.ndarray, a: int | np.ndarray, b: int | np.ndarray
    ) -> np.ndarray:
        """(layer position, angular or x index, radial or y index) -> flat voxel index.

        For cylindrical layers ``a`` is the angular index and ``b`` the radial one; for Cartesian
        layers ``a`` is the x index and ``b`` the y index.
        """
        layer, a, b = np.broadcast_arrays(np.asarray(layer), np.asarray(a), np.asarray(b))
        shapes = np.array([lay.shape for lay in self.layers])
        if np.any((layer < 0) | (layer >= self.n_layers)):
            raise GeometryError(f"layer position out of range 0..{self.n_layers - 1}")
        na, nb = shapes[layer, 0], shapes[layer, 1]
        if np.any((a < 0) | (a >= na) | (b < 0) | (b >= nb)):
            raise GeometryError(f"bin index out of range for geometry {self.name}")
        return self.layer_offsets[layer] + a * nb + b

    # ----------------------------------------------------------------- positions
    @cached_property
    def voxel_centres(self) -> np.ndarray:
        """Centre of every voxel in the layer plane, (x, y) in mm, shape (n_voxels, 2).

        For cylindrical layers x = r cos(alpha) and y = r sin(alpha) at the bin centres (the
        CaloChallenge eta and phi coordinates); for Cartesian layers the cell centres.
        """
        if self.kind == "cylindrical":
            r, alpha = self.voxel_polar
            return np.stack([r * np.cos(alpha), r * np.sin(alpha)], axis=1)
        xs, ys = zip(*(layer.centres() for layer in self.layers), strict=True)
        return np.stack([np.concatenate(xs), np.concatenate(ys)], axis=1)

    @cached_property
    def voxel_polar(self) -> tuple[np.ndarray, np.ndarray]:
        """(r in mm, alpha in rad) of every voxel centre, each shape (n_voxels,)."""
        if self.kind == "cylindrical":
            rs, alphas = zip(*(layer.centres() for layer in self.layers), strict=True)
            return np.concatenate(rs), np.concatenate(alphas)
        xy = self.voxel_centres
        return np.hypot(xy[:, 0], xy[:, 1]), np.arctan2(xy[:, 1], xy[:, 0])

    @cached_property
    def voxel_areas(self) -> np.ndarray:
        """Area of every voxel in mm^2, shape (n_voxels,)."""
        return np.concatenate([layer.areas() for layer in self.layers])

    @property
    def has_angular_bins(self) -> np.ndarray:
        """Per layer, whether it has more than one angular bin (cylindrical) or is a grid."""
        return np.array(
            [not isinstance(layer, CylindricalLayer) or layer.n_alpha > 1 for layer in self.layers]
        )

    # ----------------------------------------------------------------- helpers
    def check_voxels(self, n_voxels: int, where: str = "data") -> None:
        """Raise a clear :class:`GeometryError` unless ``n_voxels`` fits this geometry."""
        if n_voxels != self.n_voxels:
            raise GeometryError(
                f"{where} has {n_voxels} voxels per shower but geometry {self.name!r} "
                f"has {self.n_voxels}"
            )

    def layer_energies(self, showers: np.ndarray) -> np.ndarray:
        """Sum voxel energies per layer: (N, n_voxels) -> (N, n_layers)."""
        showers = np.asarray(showers)
        self.check_voxels(showers.shape[-1], "showers")
        return np.add.reduceat(showers, self.layer_offsets[:-1], axis=-1)

    def to_dict(self) -> dict:
        """A JSON-friendly description from which :func:`Geometry.from_dict` rebuilds it."""
        if self.kind == "cylindrical":
            layers = [
                {"id": lay.layer_id, "r_edges": list(lay.r_edges), "n_alpha": lay.n_alpha}
                for lay in self.cylindrical_layers
            ]
        else:
            layers = [
                {"id": lay.layer_id, "nx": lay.nx, "ny": lay.ny, "dx": lay.dx, "dy": lay.dy}
                for lay in self.cartesian_layers
            ]
        return {
            "name": self.name,
            "kind": self.kind,
            "particle": self.particle,
            "meta": dict(self.meta),
            "layers": layers,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Geometry:
        try:
            layers: tuple[Layer, ...]
            if d["kind"] == "cylindrical":
                layers = tuple(
                    CylindricalLayer(
                        int(x["id"]), tuple(float(e) for e in x["r_edges"]), int(x["n_alpha"])
                    )
                    for x in d["layers"]
                )
            elif d["kind"] == "cartesian":
                layers = tuple(
                    CartesianLayer(
                        int(x["id"]), int(x["nx"]), int(x["ny"]), float(x["dx"]), float(x["dy"])
                    )
                    for x in d["layers"]
                )
            else:
                raise GeometryError(f"unknown geometry kind {d['kind']!r}")
        except (KeyError, TypeError) as exc:
            raise GeometryError(
                f"geometry description is missing or has a bad field: {exc}"
            ) from None
        return cls(
            str(d.get("name", "custom")),
            layers,
            str(d.get("particle", "")),
            dict(d.get("meta", {})),
        )

    def __repr__(self) -> str:
        return (
            f"Geometry({self.name!r}, {self.kind}, layers={self.n_layers}, voxels={self.n_voxels})"
        )

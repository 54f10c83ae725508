"""Built-in geometries, looked up by name with :func:`get_geometry`.

=================  ===========  ==========================================================
name               voxels       what
=================  ===========  ==========================================================
``ds1-photons``    368          CaloChallenge dataset 1, photons (official binning XML)
``ds1-pions``      533          CaloChallenge dataset 1, charged pions
``ds2``            6480         CaloChallenge dataset 2: 45 layers x 16 angles x 9 radii
``ds3``            40500        CaloChallenge dataset 3: 45 layers x 50 angles x 18 radii
``calogan``        504          CaloGAN: 3x96, 12x12 and 12x6 cells
``grid:LxXxY``     L*X*Y        a regular Cartesian grid of L layers of X x Y cells; an
                                optional cell size in mm follows a colon: ``grid:30x30x30:5``
=================  ===========  ==========================================================
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from caloforge.errors import GeometryError
from caloforge.geometry.core import CartesianLayer, Geometry
from caloforge.geometry.xml import read_xml

_XML_FILES = {
    "ds1-photons": "binning_dataset_1_photons.xml",
    "ds1-pions": "binning_dataset_1_pions.xml",
    "ds2": "binning_dataset_2.xml",
    "ds3": "binning_dataset_3.xml",
}

_GRID = re.compile(r"^grid:(\d+)x(\d+)x(\d+)(?::(\d+(?:\.\d+)?))?$")

# CaloGAN (Paganini, de Oliveira, Nachman 2018): 480 x 480 mm LAr/Pb layers.
# (layer id, nx, ny, dx mm, dy mm); the flat order is layer_0 (3, 96), layer_1, layer_2.
_CALOGAN = ((0, 3, 96, 160.0, 5.0), (1, 12, 12, 40.0, 40.0), (2, 12, 6, 40.0, 80.0))


def builtin_names() -> list[str]:
    """Names of the built-in geometries (``grid:LxXxY`` is a family, listed by its pattern)."""
    return [*_XML_FILES, "calogan", "grid:LxXxY"]


def grid_geometry(n_layers: int, nx: int, ny: int, cell_mm: float = 1.0) -> Geometry:
    """A regular Cartesian grid of ``n_layers`` layers of ``nx`` x ``ny`` cells of ``cell_mm`` mm."""
    if min(n_layers, nx, ny) < 1:
        raise GeometryError(f"a grid needs at least one layer and cell, got {n_layers}x{nx}x{ny}")
    suffix = "" if cell_mm == 1.0 else f":{cell_mm:g}"
    layers = tuple(CartesianLayer(i, nx, ny, cell_mm, cell_mm) for i in range(n_layers))
    return Geometry(f"grid:{n_layers}x{nx}x{ny}{suffix}", layers)


@lru_cache(maxsize=32)
def get_geometry(name: str) -> Geometry:
    """Return the built-in geometry called ``name`` (see the module docstring)."""
    if name in _XML_FILES:
        ref = resources.files("caloforge.geometry") / "binnings" / _XML_FILES[name]
        with resources.as_file(ref) as path:
            return read_xml(path, name=name)
    if name == "calogan":
        layers = tuple(CartesianLayer(*spec) for spec in _CALOGAN)
        return Geometry("calogan", layers, particle="")
    m = _GRID.match(name)
    if m:
        n_layers, nx, ny = (int(m.group(i)) for i in (1, 2, 3))
        return grid_geometry(n_layers, nx, ny, float(m.group(4)) if m.group(4) else 1.0)
    raise GeometryError(
        f"unknown geometry {name!r}; built-ins are {', '.join(builtin_names())} "
        "(e.g. grid:25x25x25), or give a path to a binning XML"
    )


def resolve_geometry(spec: str | Geometry) -> Geometry:
    """A geometry from a built-in name, a path to a binning XML, or a :class:`Geometry`."""
    if isinstance(spec, Geometry):
        return spec
    if spec.endswith(".xml"):
        return read_xml(spec)
    return get_geometry(spec)


def match_geometry(n_voxels: int) -> list[str]:
    """Names of the built-ins (excluding grids) whose voxel count equals ``n_voxels``."""
    return [n for n in [*_XML_FILES, "calogan"] if get_geometry(n).n_voxels == n_voxels]

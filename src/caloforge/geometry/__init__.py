"""Readout geometries: cylindrical (CaloChallenge) and Cartesian layers, built-ins, binning XML."""

from caloforge.geometry.builtins import (
    builtin_names,
    get_geometry,
    grid_geometry,
    match_geometry,
    resolve_geometry,
)
from caloforge.geometry.core import CartesianLayer, CylindricalLayer, Geometry
from caloforge.geometry.xml import geometry_to_xml, read_xml, write_xml

__all__ = [
    "CartesianLayer",
    "CylindricalLayer",
    "Geometry",
    "builtin_names",
    "geometry_to_xml",
    "get_geometry",
    "grid_geometry",
    "match_geometry",
    "read_xml",
    "resolve_geometry",
    "write_xml",
]

"""Read and write the CaloChallenge binning XML format.

The format (one ``<Bin>`` per particle inside ``<Bins>``)::

    <Bins>
       <Bin pid="11" name="electron">
          <Layer id="0" r_edges="0,4.65,...,41.85" n_bin_alpha="16" />
          ...

A layer with ``r_edges="0"`` has no voxels; it is dropped from the :class:`Geometry` and the
total number of layers is remembered in ``meta["n_layers_total"]`` so that writing restores it.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from caloforge.errors import GeometryError
from caloforge.geometry.core import CylindricalLayer, Geometry
from caloforge.ioutil import atomic_path


def _format_edge(x: float) -> str:
    """Shortest text that reads back as exactly ``x`` (``repr``), integers without ``.0``."""
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


def read_xml(path: str | os.PathLike, name: str | None = None) -> Geometry:
    """Read a CaloChallenge binning XML into a cylindrical :class:`Geometry`."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise GeometryError(f"{path}: no such binning XML file") from None
    except ET.ParseError as exc:
        raise GeometryError(f"{path}: not a well-formed binning XML ({exc})") from None
    bins = root.findall("Bin") if root.tag == "Bins" else [root] if root.tag == "Bin" else []
    if len(bins) != 1:
        raise GeometryError(f"{path}: expected exactly one <Bin> element, found {len(bins)}")
    b = bins[0]
    layers = []
    xml_layers = b.findall("Layer")
    if not xml_layers:
        raise GeometryError(f"{path}: the <Bin> element has no <Layer> elements")
    for el in xml_layers:
        try:
            layer_id = int(el.attrib["id"])
            edges = tuple(float(x) for x in el.attrib["r_edges"].split(","))
            n_alpha = int(el.attrib.get("n_bin_alpha", "1"))
        except (KeyError, ValueError) as exc:
            raise GeometryError(
                f"{path}: <Layer> needs integer id, comma-separated r_edges and n_bin_alpha ({exc})"
            ) from None
        if len(edges) < 2:
            continue
        layers.append(CylindricalLayer(layer_id, edges, n_alpha))
    meta: dict[str, str | int] = {k: v for k, v in b.attrib.items() if k != "name"}
    meta["n_layers_total"] = len(xml_layers)
    return Geometry(name or path.stem, tuple(layers), b.attrib.get("name", ""), meta)


def geometry_to_xml(geometry: Geometry) -> str:
    """The CaloChallenge binning XML text of a cylindrical geometry."""
    if geometry.kind != "cylindrical":
        raise GeometryError(
            f"geometry {geometry.name!r} is Cartesian; the CaloChallenge XML holds cylindrical binnings"
        )
    attrs = {k: str(v) for k, v in geometry.meta.items() if k != "n_layers_total"}
    attrs.setdefault("pid", "0")
    attrs["name"] = geometry.particle or "particle"
    by_id = {layer.layer_id: layer for layer in geometry.cylindrical_layers}
    n_total = max(int(geometry.meta.get("n_layers_total", 0)), max(by_id) + 1)
    root = ET.Element("Bins")
    b = ET.SubElement(root, "Bin", attrs)
    for i in range(n_total):
        layer = by_id.get(i)
        if layer is None:
            ET.SubElement(b, "Layer", {"id": str(i), "r_edges": "0", "n_bin_alpha": "1"})
        else:
            edges = ",".join(_format_edge(e) for e in layer.r_edges)
            ET.SubElement(
                b, "Layer", {"id": str(i), "r_edges": edges, "n_bin_alpha": str(layer.n_alpha)}
            )
    ET.indent(root, space="   ")
    return ET.tostring(root, encoding="unicode") + "\n"


def write_xml(geometry: Geometry, path: str | os.PathLike) -> Path:
    """Write ``geometry`` as a CaloChallenge binning XML (atomically) and return the path."""
    text = geometry_to_xml(geometry)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)

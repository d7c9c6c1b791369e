"""ROI outlines from a pycortex subject's ``overlays.svg``, read with ``xml.etree``.

pycortex keeps hand-drawn regions in an Inkscape SVG drawn over the flatmap: top-level
layers (``<g inkscape:label="rois">``, ``"sulci"``, ``"cutouts"``...) each hold a
``shapes`` sub-layer with one ``<g inkscape:label="V1">`` per region, whose ``<path>``
elements (usually one per hemisphere) outline it, and a ``labels`` sub-layer.

Frame: the SVG's ``width`` x ``height`` spans the bounds of both flat hemispheres laid out
side by side (:func:`gim_brain.maps.flat.flat_layout`, all vertices), x to the right and y
downwards, so a point maps to flat mm as::

    x_mm = xmin + x_svg / width * (xmax - xmin)
    y_mm = ymax - y_svg / height * (ymax - ymin)

(pycortex normalises each flat axis to [0, 1] and scales it by the SVG size.) Path data is
parsed here (M, L, H, V, C, S, Q, T, A, Z and their relative forms); curves are sampled
into polylines.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["OverlayError", "RoiShape", "Overlays", "read_overlays", "parse_path",
           "svg_to_flat", "vertex_rois"]

SVG_NS = "http://www.w3.org/2000/svg"
INKSCAPE_LABEL = "{http://www.inkscape.org/namespaces/inkscape}label"
_CURVE_SAMPLES = 8


class OverlayError(ValueError):
    """An overlays.svg that cannot be read, or lacks the requested layer of shapes."""


@dataclass
class RoiShape:
    """One named region of a layer: its outlines in SVG coordinates.

    Attributes
    ----------
    layer, name : str
    paths : list of float (n_points, 2)
        Polylines in SVG user units (x right, y down); closed ones end where they start.
    closed : list of bool
    """

    layer: str
    name: str
    paths: list = field(default_factory=list)
    closed: list = field(default_factory=list)


@dataclass
class Overlays:
    """Parsed overlays.svg: its size and shapes by layer."""

    path: Path
    width: float
    height: float
    layers: dict  # layer name -> list of RoiShape
    labels: dict = field(default_factory=dict)  # layer name -> [(text, (x, y)), ...] (SVG units)

    def shapes(self, layer: str = "rois") -> list[RoiShape]:
        """Shapes (with at least one outline) of ``layer``.

        Raises
        ------
        OverlayError
            The file has no such layer, or the layer has no outlined shape.
        """
        if layer not in self.layers:
            raise OverlayError(
                f"{self.path} has no {layer!r} layer of shapes (layers: "
                f"{sorted(self.layers) or 'none'}); ROI outlines are drawn in an Inkscape "
                f"layer <g inkscape:label=\"{layer}\"> with a 'shapes' sub-layer")
        found = [s for s in self.layers[layer] if s.paths]
        if not found:
            raise OverlayError(f"the {layer!r} layer of {self.path} has no outlined shapes")
        return found


def _number_tokens(text: str) -> list[str]:
    return re.findall(r"[A-Za-z]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", text)


def _cubic(p0, p1, p2, p3, n=_CURVE_SAMPLES) -> np.ndarray:
    t = np.linspace(0, 1, n + 1)[1:, None]
    return ((1 - t) ** 3) * p0 + 3 * ((1 - t) ** 2) * t * p1 + 3 * (1 - t) * t ** 2 * p2 \
        + t ** 3 * p3


def _quad(p0, p1, p2, n=_CURVE_SAMPLES) -> np.ndarray:
    t = np.linspace(0, 1, n + 1)[1:, None]
    return ((1 - t) ** 2) * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _arc(p0, rx, ry, phi, large, sweep, p1, n=_CURVE_SAMPLES) -> np.ndarray:
    """Elliptical arc (SVG endpoint parameterisation) sampled at ``n`` points."""
    if rx == 0 or ry == 0 or np.allclose(p0, p1):
        return np.asarray([p1], float)
    rx, ry = abs(rx), abs(ry)
    c, s = np.cos(np.radians(phi)), np.sin(np.radians(phi))
    dx, dy = (p0 - p1) / 2
    x1, y1 = c * dx + s * dy, -s * dx + c * dy
    lam = x1 ** 2 / rx ** 2 + y1 ** 2 / ry ** 2
    if lam > 1:
        rx, ry = rx * np.sqrt(lam), ry * np.sqrt(lam)
    num = max(rx ** 2 * ry ** 2 - rx ** 2 * y1 ** 2 - ry ** 2 * x1 ** 2, 0.0)
    coef = np.sqrt(num / (rx ** 2 * y1 ** 2 + ry ** 2 * x1 ** 2))
    if large == sweep:
        coef = -coef
    cx1, cy1 = coef * rx * y1 / ry, -coef * ry * x1 / rx
    centre = np.array([c * cx1 - s * cy1, s * cx1 + c * cy1]) + (p0 + p1) / 2
    t0 = np.arctan2((y1 - cy1) / ry, (x1 - cx1) / rx)
    t1 = np.arctan2((-y1 - cy1) / ry, (-x1 - cx1) / rx)
    delta = t1 - t0
    if sweep and delta < 0:
        delta += 2 * np.pi
    elif not sweep and delta > 0:
        delta -= 2 * np.pi
    t = t0 + delta * np.linspace(0, 1, n + 1)[1:]
    pts = np.column_stack([rx * np.cos(t), ry * np.sin(t)])
    return pts @ np.array([[c, s], [-s, c]]) + centre


def parse_path(d: str) -> list[tuple[np.ndarray, bool]]:
    """Polylines of an SVG path's ``d`` attribute.

    Returns
    -------
    list of (float (n_points, 2), closed)
        One entry per subpath, in the path's user units.

    Raises
    ------
    OverlayError
        Malformed path data.
    """
    tokens = _number_tokens(d)
    out: list[tuple[np.ndarray, bool]] = []
    pts: list[np.ndarray] = []
    cur = np.zeros(2)
    start = np.zeros(2)
    last_ctrl = None
    cmd = None
    i = 0

    def flush(closed: bool) -> None:
        nonlocal pts
        if len(pts) > 1:
            poly = np.vstack(pts)
            if closed and not np.allclose(poly[0], poly[-1]):
                poly = np.vstack([poly, poly[:1]])
            out.append((poly, closed))
        pts = []

    def take(n: int) -> list[float]:
        nonlocal i
        vals = tokens[i:i + n]
        if len(vals) < n or any(v.isalpha() for v in vals):
            raise OverlayError(f"malformed SVG path data near {' '.join(tokens[i - 1:i + n])!r}")
        i += n
        return [float(v) for v in vals]

    while i < len(tokens):
        if tokens[i].isalpha():
            cmd = tokens[i]
            i += 1
            if cmd in "Zz":
                flush(True)
                cur = start.copy()
                last_ctrl = None
                continue
        elif cmd is None:
            raise OverlayError(f"SVG path data must start with a command, got {tokens[i]!r}")
        rel = cmd.islower()
        base = cur if rel else np.zeros(2)
        op = cmd.upper()
        if op == "M":
            flush(False)
            cur = base + take(2)
            start = cur.copy()
            pts = [cur.copy()]
            cmd = "l" if rel else "L"  # further pairs are line-tos
            last_ctrl = None
        elif op == "L":
            cur = base + take(2)
            pts.append(cur.copy())
            last_ctrl = None
        elif op == "H":
            (x,) = take(1)
            cur = np.array([cur[0] * rel + x, cur[1]])
            pts.append(cur.copy())
            last_ctrl = None
        elif op == "V":
            (y,) = take(1)
            cur = np.array([cur[0], cur[1] * rel + y])
            pts.append(cur.copy())
            last_ctrl = None
        elif op == "C":
            v = take(6)
            p1, p2, p3 = base + v[0:2], base + v[2:4], base + v[4:6]
            pts.extend(_cubic(cur, p1, p2, p3))
            cur, last_ctrl = p3, ("C", p2)
        elif op == "S":
            v = take(4)
            p1 = 2 * cur - last_ctrl[1] if last_ctrl and last_ctrl[0] == "C" else cur
            p2, p3 = base + v[0:2], base + v[2:4]
            pts.extend(_cubic(cur, p1, p2, p3))
            cur, last_ctrl = p3, ("C", p2)
        elif op == "Q":
            v = take(4)
            p1, p2 = base + v[0:2], base + v[2:4]
            pts.extend(_quad(cur, p1, p2))
            cur, last_ctrl = p2, ("Q", p1)
        elif op == "T":
            p1 = 2 * cur - last_ctrl[1] if last_ctrl and last_ctrl[0] == "Q" else cur
            p2 = base + take(2)
            pts.extend(_quad(cur, p1, p2))
            cur, last_ctrl = p2, ("Q", p1)
        elif op == "A":
            rx, ry, phi, large, sweep, x, y = take(7)
            end = base + [x, y]
            pts.extend(_arc(cur, rx, ry, phi, bool(large), bool(sweep), end))
            cur, last_ctrl = end, None
        else:
            raise OverlayError(f"unsupported SVG path command {cmd!r}")
        if not pts:
            pts = [cur.copy()]
    flush(False)
    return out


def _transform_matrix(text: str | None) -> np.ndarray:
    """3x3 matrix of an SVG ``transform`` attribute (translate, scale, matrix, rotate)."""
    m = np.eye(3)
    if not text:
        return m
    for name, args in re.findall(r"(\w+)\s*\(([^)]*)\)", text):
        v = [float(a) for a in re.split(r"[\s,]+", args.strip()) if a]
        t = np.eye(3)
        if name == "translate":
            t[0, 2], t[1, 2] = v[0], (v[1] if len(v) > 1 else 0.0)
        elif name == "scale":
            t[0, 0], t[1, 1] = v[0], (v[1] if len(v) > 1 else v[0])
        elif name == "matrix":
            t[:2, :] = np.array(v).reshape(3, 2).T
        elif name == "rotate":
            a = np.radians(v[0])
            r = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
            if len(v) == 3:
                shift, back = np.eye(3), np.eye(3)
                shift[:2, 2], back[:2, 2] = v[1:], [-v[1], -v[2]]
                r = shift @ r @ back
            t = r
        else:
            raise OverlayError(f"unsupported SVG transform {name!r}")
        m = m @ t
    return m


def _label(element) -> str:
    return element.get(INKSCAPE_LABEL) or element.get("id") or ""


def _length(text: str | None, what: str, path: Path) -> float:
    match = re.match(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)", text or "")
    if not match:
        raise OverlayError(f"{path}: the <svg> element needs a numeric {what!r} attribute")
    return float(match.group(1))


def read_overlays(path: str | Path) -> Overlays:
    """Read the shape layers of an overlays.svg.

    Raises
    ------
    FileNotFoundError
        No such file.
    OverlayError
        Not XML / not SVG / no size.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"overlays file {path} does not exist")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise OverlayError(f"{path} is not a readable SVG (XML) file: {exc}") from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise OverlayError(f"{path} is not an SVG file (root element {root.tag!r})")
    width = _length(root.get("width"), "width", path)
    height = _length(root.get("height"), "height", path)
    layers: dict[str, list[RoiShape]] = {}
    labels: dict[str, list] = {}
    for layer in root.findall(f"{{{SVG_NS}}}g"):
        shapes_group = next((g for g in layer.findall(f"{{{SVG_NS}}}g")
                             if _label(g) == "shapes"), None)
        if shapes_group is None:
            continue
        base = _transform_matrix(layer.get("transform")) @ \
            _transform_matrix(shapes_group.get("transform"))
        found = []
        for group in shapes_group.findall(f"{{{SVG_NS}}}g"):
            shape = RoiShape(_label(layer), _label(group))
            gm = base @ _transform_matrix(group.get("transform"))
            for element in group.iter(f"{{{SVG_NS}}}path"):
                m = gm @ _transform_matrix(element.get("transform"))
                for poly, closed in parse_path(element.get("d", "")):
                    shape.paths.append(poly @ m[:2, :2].T + m[:2, 2])
                    shape.closed.append(closed)
            found.append(shape)
        layers[_label(layer)] = found
        texts = []
        for group in layer.findall(f"{{{SVG_NS}}}g"):
            if _label(group) != "labels":
                continue
            lm = base_of(layer) @ _transform_matrix(group.get("transform"))
            for text in group.iter(f"{{{SVG_NS}}}text"):
                content = "".join(text.itertext()).strip()
                try:
                    xy = np.array([float(text.get("x")), float(text.get("y"))])
                except (TypeError, ValueError):
                    continue  # a label without a position: placed at the outline's centre
                if content:
                    texts.append((content, tuple(lm[:2, :2] @ xy + lm[:2, 2])))
        labels[_label(layer)] = texts
    return Overlays(path, width, height, layers, labels)


def base_of(layer) -> np.ndarray:
    """Transform matrix of a top-level layer."""
    return _transform_matrix(layer.get("transform"))


def svg_to_flat(points: np.ndarray, overlays: Overlays, extent: tuple) -> np.ndarray:
    """SVG coordinates (n, 2) -> flat mm in the frame ``extent = (xmin, xmax, ymin, ymax)``."""
    xmin, xmax, ymin, ymax = extent
    points = np.asarray(points, dtype=float)
    return np.column_stack([xmin + points[:, 0] / overlays.width * (xmax - xmin),
                            ymax - points[:, 1] / overlays.height * (ymax - ymin)])


def vertex_rois(shapes: list[RoiShape], overlays: Overlays, flat_xy: np.ndarray, extent: tuple,
                drawn: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Vertices inside each ROI's closed outlines.

    Parameters
    ----------
    shapes : list of RoiShape
    flat_xy : float (n_vertices, 2)
        Stacked flat coordinates (mm) in the frame ``extent``.
    drawn : bool (n_vertices,), optional
        Vertices of the flat patch; others (medial wall) belong to no ROI.

    Returns
    -------
    dict name -> bool (n_vertices,)
    """
    from matplotlib.path import Path as MplPath

    out = {}
    for shape in shapes:
        inside = np.zeros(flat_xy.shape[0], dtype=bool)
        for poly, closed in zip(shape.paths, shape.closed):
            if poly.shape[0] < 3:
                continue
            outline = svg_to_flat(poly, overlays, extent)
            lo, hi = outline.min(0), outline.max(0)
            near = np.flatnonzero(((flat_xy >= lo) & (flat_xy <= hi)).all(1))
            inside[near[MplPath(outline).contains_points(flat_xy[near])]] = True
        if drawn is not None:
            inside &= drawn
        out[shape.name] = inside
    return out

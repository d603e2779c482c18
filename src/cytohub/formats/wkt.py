"""Well-known text (WKT, OGC Simple Features) geometries as tables of annotations write them (e.g. CCAgT's
`geometry` column): `POINT (x y)`, `POLYGON ((x y, x y, ...), (hole ...))`, `MULTIPOLYGON (((...)), ((...)))`,
coordinates in pixels. Polygons keep their exterior ring (holes are not represented in cytohub's objects);
a closing repeat of the first vertex is dropped.
"""

from __future__ import annotations

import re

from cytohub.formats import geometry
from cytohub.formats.geometry import AnnotationError

_TOKEN = re.compile(r"\(|\)|,|[^\s(),]+")


def parse(text: str, where: str) -> tuple[str, list[list[float]]]:
    """('POINT', [[x, y]]) or ('POLYGON' / 'MULTIPOLYGON', [exterior ring of each polygon as [x1, y1, ...]]).

    Every coordinate must be a finite number ('nan', 'inf' or text are refused), every vertex an 'x y' pair,
    every ring a polygon of at least 3 vertices. Raises AnnotationError naming `where`."""
    body = text.strip()
    kind = body.split("(", 1)[0].strip().upper()
    if kind not in ("POINT", "POLYGON", "MULTIPOLYGON"):
        raise AnnotationError(f"{where}: WKT geometry {(kind or body[:30])!r} is not supported; expected POLYGON, "
                              "MULTIPOLYGON or POINT")
    tokens = _TOKEN.findall(body[len(kind):])
    rings_depth = {"POINT": 1, "POLYGON": 2, "MULTIPOLYGON": 3}[kind]
    depth, ring_index, vertex, current = 0, 0, [], None
    exteriors: list[list[float]] = []
    for tok in tokens:
        if tok == "(":
            depth += 1
            if depth == rings_depth:
                current = []
            if depth > rings_depth:
                raise AnnotationError(f"{where}: WKT nested deeper than a {kind} allows: {text[:60]!r}")
        elif tok == ")":
            if depth == 0:
                raise AnnotationError(f"{where}: unbalanced parentheses in WKT {text[:60]!r}")
            if depth == rings_depth:
                if vertex:
                    current.append(_vertex(vertex, where))
                    vertex = []
                if ring_index == 0:
                    exteriors.append([v for pt in current for v in pt])
                ring_index += 1
            if depth == rings_depth - 1:
                ring_index = 0
            depth -= 1
        elif tok == ",":
            if depth == rings_depth:
                current.append(_vertex(vertex, where))
                vertex = []
        else:
            if depth != rings_depth:
                raise AnnotationError(f"{where}: unexpected {tok!r} in WKT {text[:60]!r}")
            vertex.append(tok)
    if depth != 0 or not exteriors:
        raise AnnotationError(f"{where}: unreadable WKT {text[:60]!r}")
    if kind == "POINT":
        if len(exteriors) != 1 or len(exteriors[0]) != 2:
            raise AnnotationError(f"{where}: a WKT POINT needs one 'x y' pair, got {text[:60]!r}")
        return kind, exteriors
    return kind, [geometry.polygon(ring, "WKT polygon", where) for ring in exteriors]


def _vertex(tokens: list[str], where: str) -> list[float]:
    if len(tokens) != 2:
        raise AnnotationError(f"{where}: WKT vertex {' '.join(tokens)!r}; expected 'x y'")
    return [geometry.number(t, "WKT coordinate", where) for t in tokens]

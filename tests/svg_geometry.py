"""The geometry of a Graphviz SVG: node and cluster boxes, edges as sampled Bézier curves,
and the faults a reader sees in a diagram (issue 27).

Only the standard library: it reads the SVG Graphviz wrote, not archbuilder's DOT, so it
measures a picture whatever drew it. Counts, per picture:

- edges through nodes: edges whose sampled curve enters the box of a node that is neither
  their tail nor their head (boxes shrunk by ``MARGIN`` so an edge touching one is not counted);
- edges through foreign blocks: edges whose curve enters a cluster's box that holds neither
  of their end nodes (a cluster holds a node when the node's centre lies inside its box);
- crossings: pairs of edges whose sampled curves intersect, each pair once, leaving out
  pairs that share an end node (they meet there);
- struck labels: (labelled edge, edge) pairs where the edge runs through the label's text
  (its estimated ink, shrunk by ``MARGIN``), the labelled edge itself included.

All lengths are SVG user units (Graphviz's points) after the graph's ``transform``; the
picture's size and its smallest text are also given in CSS pixels (96 per 72 points).
"""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "MARGIN",
    "SAMPLES",
    "Box",
    "Counts",
    "Edge",
    "Picture",
    "crossings",
    "cubic_points",
    "edges_through_blocks",
    "edges_through_nodes",
    "measure",
    "parse_svg",
    "path_polylines",
    "struck_labels",
]

SAMPLES = 40  # points per cubic Bézier segment
MARGIN = 1.5  # boxes shrink by this much (points) before an edge is tested against them
PX_PER_PT = 96 / 72
TEXT_WIDTH = 0.55  # Helvetica's mean character width, in em: a plaintext node's box is its text's
_SVG = "{http://www.w3.org/2000/svg}"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    """An axis-aligned box, ``x0 <= x1`` and ``y0 <= y1``."""

    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def around(cls, points: Iterable[Point]) -> Box:
        xs, ys = zip(*points)
        return cls(min(xs), min(ys), max(xs), max(ys))

    def union(self, other: Box) -> Box:
        return Box(
            min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1)
        )

    def shrunk(self, by: float) -> Box:
        return Box(self.x0 + by, self.y0 + by, self.x1 - by, self.y1 - by)

    @property
    def centre(self) -> Point:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    def holds(self, point: Point) -> bool:
        return self.x0 <= point[0] <= self.x1 and self.y0 <= point[1] <= self.y1

    def overlaps(self, other: Box) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def meets_segment(self, a: Point, b: Point) -> bool:
        """Whether the segment ``a``–``b`` has a point strictly inside the box (Liang–Barsky)."""
        if self.x0 >= self.x1 or self.y0 >= self.y1:
            return False
        low, high = 0.0, 1.0
        dx, dy = b[0] - a[0], b[1] - a[1]
        for step, start, lo, hi in ((dx, a[0], self.x0, self.x1), (dy, a[1], self.y0, self.y1)):
            if step == 0:
                if not lo < start < hi:
                    return False
                continue
            t0, t1 = sorted(((lo - start) / step, (hi - start) / step))
            low, high = max(low, t0), min(high, t1)
        return low < high


@dataclass(frozen=True)
class Edge:
    tail: str
    head: str
    polylines: tuple[tuple[Point, ...], ...]  # one per sub-path of its ``d``
    labels: tuple[Box, ...] = ()  # its label's, tail label's and head label's estimated ink

    def segments(self) -> Iterator[tuple[Point, Point]]:
        for line in self.polylines:
            yield from itertools.pairwise(line)


@dataclass(frozen=True)
class Picture:
    width_px: float
    height_px: float
    nodes: dict[str, Box]
    clusters: dict[str, Box]  # by the cluster's title (``cluster_3a``)
    edges: tuple[Edge, ...]
    min_font_px: float  # nan when the picture has no text


@dataclass(frozen=True)
class Counts:
    edges: int
    through_nodes: int
    through_blocks: int
    blocks_crossed: int  # (edge, foreign cluster) pairs: an edge through two blocks counts 2
    crossings: int
    width_px: float
    height_px: float
    min_font_px: float
    struck_labels: int = 0  # (labelled edge, edge) pairs: an edge through another's label


# ---- parsing ----


def _transform(text: str) -> tuple[float, float, float, float]:
    """(sx, sy, tx, ty) of Graphviz's ``scale(…) rotate(0) translate(…)``: p -> s·(p + t)."""
    scale = re.search(rf"scale\(\s*({_NUMBER})(?:[\s,]+({_NUMBER}))?", text)
    move = re.search(rf"translate\(\s*({_NUMBER})(?:[\s,]+({_NUMBER}))?", text)
    sx = float(scale[1]) if scale else 1.0
    sy = float(scale[2]) if scale and scale[2] else sx
    tx = float(move[1]) if move else 0.0
    ty = float(move[2]) if move and move[2] else 0.0
    return sx, sy, tx, ty


def _length_px(text: str | None) -> float:
    """An SVG length in CSS pixels: ``12pt`` -> 16, ``16px`` or ``16`` -> 16."""
    if not text:
        return math.nan
    match = re.fullmatch(rf"\s*({_NUMBER})\s*(pt|px)?\s*", text)
    if not match:
        return math.nan
    return float(match[1]) * (PX_PER_PT if match[2] == "pt" else 1.0)


def cubic_points(p0: Point, p1: Point, p2: Point, p3: Point, samples: int = SAMPLES) -> list[Point]:
    """``samples`` points along a cubic Bézier after ``p0`` (its end, ``p3``, last)."""
    points = []
    for index in range(1, samples + 1):
        t = index / samples
        u = 1 - t
        a, b, c, d = u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t
        points.append(
            (a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1])
        )
    return points


def path_polylines(d: str, samples: int = SAMPLES) -> list[list[Point]]:
    """A path's ``d`` (absolute M, C and L commands, as Graphviz writes) as polylines, one per
    sub-path, each cubic sampled at ``samples`` points."""
    tokens = re.findall(rf"[MmCcLlZz]|{_NUMBER}", d)
    lines: list[list[Point]] = []
    command, numbers = "", []
    for token in [*tokens, "M"]:
        if token.isalpha():
            _apply(command, numbers, lines, samples)
            command, numbers = token.upper(), []
        else:
            numbers.append(float(token))
    return [line for line in lines if len(line) > 1]


def _apply(command: str, numbers: list[float], lines: list[list[Point]], samples: int) -> None:
    points = list(zip(numbers[::2], numbers[1::2]))
    if command == "M" and points:
        lines.append([points[0]])
        lines[-1].extend(points[1:])  # further pairs after M are line-tos
    elif command == "L" and lines:
        lines[-1].extend(points)
    elif command == "C" and lines:
        for index in range(0, len(points) - 2, 3):
            lines[-1].extend(cubic_points(lines[-1][-1], *points[index : index + 3], samples=samples))
    elif command == "Z" and lines:
        lines[-1].append(lines[-1][0])


def _shape_box(element: ET.Element) -> Box | None:
    """The box of a polygon, polyline, ellipse or path (of its control points), untransformed."""
    tag = element.tag.removeprefix(_SVG)
    if tag in ("polygon", "polyline"):
        numbers = [float(n) for n in re.findall(_NUMBER, element.get("points", ""))]
        points = list(zip(numbers[::2], numbers[1::2]))
    elif tag == "ellipse":
        cx, cy = float(element.get("cx", 0)), float(element.get("cy", 0))
        rx, ry = float(element.get("rx", 0)), float(element.get("ry", 0))
        points = [(cx - rx, cy - ry), (cx + rx, cy + ry)]
    elif tag == "path":
        numbers = [float(n) for n in re.findall(_NUMBER, element.get("d", ""))]
        points = list(zip(numbers[::2], numbers[1::2]))
    else:
        return None
    return Box.around(points) if points else None


def _text_box(element: ET.Element) -> Box | None:
    """The estimated ink of a ``<text>``: its characters at ``TEXT_WIDTH`` em, baseline to ascent."""
    content = "".join(element.itertext()).strip()
    if not content:
        return None
    size = float(element.get("font-size", 14))
    x, y = float(element.get("x", 0)), float(element.get("y", 0))
    width = len(content) * size * TEXT_WIDTH
    start = {"middle": x - width / 2, "end": x - width}.get(element.get("text-anchor", "start"), x)
    return Box(start, y - 0.75 * size, start + width, y + 0.2 * size)


def _box_of(group: ET.Element, texts: bool) -> Box | None:
    """The union of a group's shapes' boxes; of its texts' when it has no shape and ``texts``."""
    boxes = [box for child in group.iter() for box in [_shape_box(child)] if box]
    if not boxes and texts:
        boxes = [box for child in group.iter(f"{_SVG}text") for box in [_text_box(child)] if box]
    if not boxes:
        return None
    box = boxes[0]
    for other in boxes[1:]:
        box = box.union(other)
    return box


def _placed(box: Box, transform: tuple[float, float, float, float]) -> Box:
    sx, sy, tx, ty = transform
    return Box.around([(sx * (box.x0 + tx), sy * (box.y0 + ty)), (sx * (box.x1 + tx), sy * (box.y1 + ty))])


def _title(group: ET.Element) -> str:
    title = group.find(f"{_SVG}title")
    return "" if title is None or title.text is None else title.text


def _ends(title: str, nodes: dict[str, Box]) -> tuple[str, str]:
    """The tail and head of an edge titled ``tail->head`` (``--`` for undirected graphs),
    split where both halves name nodes; ``:port`` suffixes dropped."""
    for separator in ("->", "--"):
        parts = title.split(separator)
        for cut in range(1, len(parts)):
            tail, head = separator.join(parts[:cut]), separator.join(parts[cut:])
            tail, head = (n if n in nodes else n.split(":")[0] for n in (tail, head))
            if tail in nodes and head in nodes:
                return tail, head
    tail, _, head = title.partition("->")
    return tail, head


def parse_svg(svg: str | bytes, samples: int = SAMPLES) -> Picture:
    """Nodes, clusters and edges of a Graphviz SVG, in the picture's coordinates."""
    root = ET.fromstring(svg)
    graph = next((g for g in root.iter(f"{_SVG}g") if g.get("class") == "graph"), root)
    transform = _transform(graph.get("transform", ""))
    sx, sy, tx, ty = transform
    nodes: dict[str, Box] = {}
    clusters: dict[str, Box] = {}
    paths: list[tuple[str, list[list[Point]]]] = []
    for group in graph.iter(f"{_SVG}g"):
        kind = group.get("class")
        if kind in ("node", "cluster"):
            box = _box_of(group, texts=kind == "node")
            if box is not None:
                (nodes if kind == "node" else clusters)[_title(group)] = _placed(box, transform)
        elif kind == "edge":
            lines = []
            for path in group.iter(f"{_SVG}path"):
                for line in path_polylines(path.get("d", ""), samples):
                    lines.append([(sx * (x + tx), sy * (y + ty)) for x, y in line])
            if lines:
                texts = [box for text in group.iter(f"{_SVG}text") for box in [_text_box(text)] if box]
                paths.append((_title(group), lines, tuple(_placed(box, transform) for box in texts)))
    edges = tuple(
        Edge(*_ends(title, nodes), tuple(tuple(line) for line in lines), labels)
        for title, lines, labels in paths
    )
    sizes = [float(t.get("font-size")) for t in graph.iter(f"{_SVG}text") if t.get("font-size")]
    font = min(sizes) * min(abs(sx), abs(sy)) * _unit_px(root) if sizes else math.nan
    return Picture(
        _length_px(root.get("width")), _length_px(root.get("height")), nodes, clusters, edges, font
    )


def _unit_px(root: ET.Element) -> float:
    """CSS pixels per user unit: the width attribute over the viewBox's width."""
    box = [float(n) for n in re.findall(_NUMBER, root.get("viewBox", ""))]
    width = _length_px(root.get("width"))
    if len(box) == 4 and box[2] > 0 and not math.isnan(width):
        return width / box[2]
    return PX_PER_PT


# ---- counting ----


def edges_through_nodes(picture: Picture, margin: float = MARGIN) -> list[tuple[Edge, list[str]]]:
    """Each edge that enters nodes other than its ends, with those nodes."""
    boxes = {name: box.shrunk(margin) for name, box in picture.nodes.items()}
    found = []
    for edge in picture.edges:
        others = {name: box for name, box in boxes.items() if name not in (edge.tail, edge.head)}
        hits = _hits(edge, others)
        if hits:
            found.append((edge, hits))
    return found


def struck_labels(picture: Picture, margin: float = MARGIN) -> list[tuple[Edge, Edge]]:
    """Each (labelled edge, edge) pair where the second edge's curve runs through the first's
    label text (itself included: a label its own edge strikes through)."""
    found = []
    for labelled in picture.edges:
        boxes = {str(index): box.shrunk(margin) for index, box in enumerate(labelled.labels)}
        if not boxes:
            continue
        found += [(labelled, edge) for edge in picture.edges if _hits(edge, boxes)]
    return found


def edges_through_blocks(picture: Picture, margin: float = MARGIN) -> list[tuple[Edge, list[str]]]:
    """Each edge that enters clusters holding neither of its end nodes, with those clusters."""
    centres = {name: box.centre for name, box in picture.nodes.items()}
    found = []
    for edge in picture.edges:
        ends = [centres[name] for name in (edge.tail, edge.head) if name in centres]
        foreign = {
            name: box.shrunk(margin)
            for name, box in picture.clusters.items()
            if not any(box.holds(point) for point in ends)
        }
        hits = _hits(edge, foreign)
        if hits:
            found.append((edge, hits))
    return found


def _hits(edge: Edge, boxes: dict[str, Box]) -> list[str]:
    """The boxes ``edge`` enters, in ``boxes``' order."""
    segments = list(edge.segments())
    if not segments:
        return []
    reach = Box.around([point for segment in segments for point in segment])
    return [
        name
        for name, box in boxes.items()
        if not (box.x0 > reach.x1 or box.x1 < reach.x0 or box.y0 > reach.y1 or box.y1 < reach.y0)
        and any(box.meets_segment(a, b) for a, b in segments)
    ]


def crossings(picture: Picture, cell: float = 24.0) -> list[tuple[Edge, Edge]]:
    """Pairs of edges whose curves intersect, each pair once, without pairs sharing an end."""
    grid: dict[tuple[int, int], list[tuple[int, Point, Point]]] = defaultdict(list)
    for index, edge in enumerate(picture.edges):
        for a, b in edge.segments():
            for key in _cells(a, b, cell):
                grid[key].append((index, a, b))
    edges = picture.edges
    pairs: set[tuple[int, int]] = set()
    for entries in grid.values():
        for i, (first, a, b) in enumerate(entries):
            for second, c, d in entries[i + 1 :]:
                pair = (first, second) if first < second else (second, first)
                if first == second or pair in pairs:
                    continue
                one, two = edges[first], edges[second]
                if {one.tail, one.head} & {two.tail, two.head}:
                    continue
                if _segments_meet(a, b, c, d):
                    pairs.add(pair)
    return [(edges[i], edges[j]) for i, j in sorted(pairs)]


def _cells(a: Point, b: Point, cell: float) -> Iterator[tuple[int, int]]:
    for x in range(math.floor(min(a[0], b[0]) / cell), math.floor(max(a[0], b[0]) / cell) + 1):
        for y in range(math.floor(min(a[1], b[1]) / cell), math.floor(max(a[1], b[1]) / cell) + 1):
            yield x, y


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _segments_meet(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether two closed segments share a point (touching and overlapping included)."""
    d1, d2, d3, d4 = _cross(c, d, a), _cross(c, d, b), _cross(a, b, c), _cross(a, b, d)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True

    def on(p: Point, q: Point, r: Point, turn: float) -> bool:  # r on p–q, given r is collinear
        return (
            turn == 0
            and min(p[0], q[0]) <= r[0] <= max(p[0], q[0])
            and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])
        )

    return on(c, d, a, d1) or on(c, d, b, d2) or on(a, b, c, d3) or on(a, b, d, d4)


def measure(svg: str | bytes) -> Counts:
    """The counts of one picture."""
    picture = parse_svg(svg)
    blocks = edges_through_blocks(picture)
    return Counts(
        edges=len(picture.edges),
        through_nodes=len(edges_through_nodes(picture)),
        through_blocks=len(blocks),
        blocks_crossed=sum(len(hits) for _, hits in blocks),
        crossings=len(crossings(picture)),
        width_px=picture.width_px,
        height_px=picture.height_px,
        min_font_px=picture.min_font_px,
        struck_labels=len(struck_labels(picture)),
    )

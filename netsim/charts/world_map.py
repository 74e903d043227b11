"""A map of a world: ISPs and their links, the policies that matter, the networks behind them.

For reports and teaching. ISPs are circles whose area is proportional to their subscribers;
links carry their one-way latency; an ISP that blocks outbound port 25 (OP25B) has a red,
hatched disc; one that offers the submission port carries a green "587" badge. Visited and
hosting networks are smaller squares and diamonds on a dashed line to their upstream ISP.

The layout is deterministic (Kamada-Kawai on hops, not latencies, so that every link is long
enough to label) and drawn in inches, so that text keeps its size whatever the world's size;
labels are placed greedily where they overlap nothing already drawn.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from netsim.net import NetKind
from netsim.world import World

HOP_IN = 3.0          # the shortest distance between two ISPs on paper [in]
ATTACH_IN = 1.3       # from an ISP to a network behind it [in]
MARGIN_IN = 2.2       # room for labels around the outermost nodes [in]
TITLE_IN, LEGEND_IN, MIN_WIDTH_IN = 0.6, 0.8, 8.5
MAX_AREA_PT2 = 2600   # marker area of the largest ISP [pt²]
MIN_AREA_PT2 = 700    # ... and the floor, so an ISP without subscribers stays visible
NET_AREA_PT2 = 420    # marker area of a visited or hosting network
ISP, ISP_EDGE = "#c6dbef", "#2171b5"
BLOCKED, BLOCKED_EDGE = "#fcbba1", "#cb181d"
BADGE = "#238b45"
VISITED, HOSTING = "#fdd0a2", "#dadaeb"
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}


def save_figure(fig: Figure, path: str | Path, *, dpi: float = 150) -> Path:
    """Save a chart as SVG, PNG or PDF, chosen by the path's suffix.

    SVG keeps its text as text (searchable, testable) and carries no date, so that saving
    the same chart twice gives the same file.

    Raises:
        ValueError: the suffix is none of .svg, .png, .pdf.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown chart format {path.suffix!r} (use .svg, .png or .pdf)")
    meta = {"Date": None} if fmt == "svg" else None
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "netsim"}):
        fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.15,
                    metadata=meta)
    return path


@dataclass
class _Node:
    """An ISP or an attached network: a marker, and a label placed beside it."""

    name: str
    kind: NetKind           # DYNAMIC stands for an ISP
    xy: np.ndarray          # position [in]
    area: float             # marker area [pt²]
    label: str
    prefer: float = 0.0     # preferred label direction [rad]
    upstream: str = ""      # an attached network's ISP


def draw_world(world: World, path: str | Path | None = None) -> Figure:
    """Draw the world's ISPs, links, policies and attached networks.

    Args:
        world: a built world (running it is not needed).
        path: where to save the picture (.svg, .png or .pdf); nothing is saved if None.

    Returns:
        The figure, on the Agg canvas (never shown).
    """
    graph = world.topology.graph
    nodes = _layout(world)
    pos = {n.name: n.xy for n in nodes}
    fig = Figure(dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    every = np.array(list(pos.values()))
    _frame(fig, ax, every.min(axis=0) - MARGIN_IN, every.max(axis=0) + MARGIN_IN)
    ax.set_axis_off()
    links = [(pos[a], pos[b], "-", graph.edges[a, b]["latency"]) for a, b in sorted(graph.edges)]
    links += [(pos[n.upstream], n.xy, "--", None) for n in nodes if n.upstream]
    obstacles: list[Text] = []
    for a, b, style, latency in links:
        ax.plot([a[0], b[0]], [a[1], b[1]], color="#737373", lw=1.6 if style == "-" else 1.2,
                ls=style, zorder=1)
        if latency is not None:
            mid = (a + b) / 2
            obstacles.append(ax.text(mid[0], mid[1], _ms(latency), ha="center", va="center",
                                     fontsize=9, zorder=3, bbox={"boxstyle": "round,pad=0.2",
                                                                 "fc": "white", "ec": "#bdbdbd"}))
    policies = {isp.name: isp.policies for isp in world.scenario.isps}
    for n in nodes:
        x, y = n.xy
        if n.kind is not NetKind.DYNAMIC:
            face, marker = (VISITED, "s") if n.kind is NetKind.VISITED else (HOSTING, "D")
            ax.scatter(x, y, s=n.area, marker=marker, fc=face, ec="#525252", lw=1.2, zorder=2)
            continue
        blocked = policies[n.name].op25b is not None
        ax.scatter(x, y, s=n.area, marker="o", zorder=2, fc=BLOCKED if blocked else ISP,
                   ec=BLOCKED_EDGE if blocked else ISP_EDGE, lw=2.8 if blocked else 1.5,
                   hatch="///" if blocked else None)
        if policies[n.name].submission is not None:
            obstacles.append(ax.text(x, y, "587", ha="center", va="center", fontsize=7.5,
                                     color="white", weight="bold", zorder=4,
                                     bbox={"boxstyle": "round,pad=0.2", "fc": BADGE,
                                           "ec": "none"}))
    boxes = _place_labels(ax, nodes, [(a, b) for a, b, _, _ in links], obstacles)
    _shrink(fig, ax, boxes)
    _legend(fig, world, {n.kind for n in nodes}, links=graph.number_of_edges() > 0)
    fig.suptitle(f"netsim world: {world.scenario.name}", y=1 - 0.15 / fig.get_figheight(),
                 va="top", fontsize=14, weight="bold")
    if path is not None:
        save_figure(fig, path)
    return fig


def _layout(world: World) -> list[_Node]:
    """ISPs where Kamada-Kawai puts them; each attached network, and then each ISP's label,
    in the widest free direction around its ISP."""
    s, graph = world.scenario, world.topology.graph
    pos = _isp_positions(graph, list(world.topology.isps))
    taken = {n: [_angle(pos[n], pos[m]) for m in graph[n]] for n in pos}
    most = max(i.subscribers for i in s.isps) or 1
    isps = [_Node(isp.name, NetKind.DYNAMIC, pos[isp.name],
                  max(MIN_AREA_PT2, MAX_AREA_PT2 * isp.subscribers / most), _isp_label(world, i))
            for i, isp in enumerate(s.isps)]
    attached: list[_Node] = []
    nets = [(NetKind.VISITED, n.name, n.upstream) for n in s.visited_networks]
    nets += [(NetKind.HOSTING, n.name, n.upstream) for n in s.hosting_networks]
    for kind, name, up in nets:
        a = _free_angle(taken[up], _outward(pos, up))
        taken[up].append(a)
        xy = pos[up] + ATTACH_IN * np.array([math.cos(a), math.sin(a)])
        attached.append(_Node(name, kind, xy, NET_AREA_PT2, _net_label(world, name, kind), a, up))
    for n in isps:
        n.prefer = _free_angle(taken[n.name], _outward(pos, n.name))
    return isps + attached


def _frame(fig: Figure, ax: Axes, low: np.ndarray, high: np.ndarray) -> None:
    """Show ``low``..``high`` (inches) at one data unit an inch, with room for title and legend."""
    pad = max(0.0, MIN_WIDTH_IN - float(high[0] - low[0])) / 2   # the legend needs the width
    low, high = low - np.array([pad, 0.0]), high + np.array([pad, 0.0])
    width, height = high - low
    total = height + TITLE_IN + LEGEND_IN
    fig.set_size_inches(width, total)
    ax.set_position((0, LEGEND_IN / total, 1, height / total))
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])


def _shrink(fig: Figure, ax: Axes, boxes: list[Bbox]) -> None:
    """Crop the map to what is drawn (boxes in pixels); texts keep their size and their
    place beside their nodes, which is set in points."""
    union = ax.transData.inverted().transform(Bbox.union(boxes).get_points())
    _frame(fig, ax, union[0] - 0.2, union[1] + 0.2)


def _isp_positions(graph: nx.Graph, names: list[str]) -> dict[str, np.ndarray]:
    """Kamada-Kawai positions in inches, the closest two ISPs ``HOP_IN`` apart."""
    if len(names) == 1:
        return {names[0]: np.zeros(2)}
    try:   # hops, not latencies: a 1 ms link must still be long enough to label
        raw = nx.kamada_kawai_layout(graph, weight=None)
    except ImportError:   # kamada_kawai needs scipy
        raw = nx.spring_layout(graph, seed=1)
    points = np.array([raw[n] for n in names], dtype=float)
    points -= points.mean(axis=0)
    closest = min(float(np.linalg.norm(p - q)) for p, q in itertools.combinations(points, 2))
    points *= HOP_IN / max(closest, 1e-9)
    return {n: points[i] for i, n in enumerate(names)}


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))


def _outward(pos: dict[str, np.ndarray], name: str) -> float:
    """Direction away from the middle of the map (down for a node in the middle)."""
    centre = np.mean(list(pos.values()), axis=0)
    if np.linalg.norm(pos[name] - centre) < 1e-6:
        return -math.pi / 2
    return _angle(centre, pos[name])


def _free_angle(taken: list[float], prefer: float) -> float:
    """The middle of the widest gap between the directions taken; ``prefer`` if none is."""
    if not taken:
        return prefer
    ordered = sorted(a % (2 * math.pi) for a in taken)
    gaps = [((b - a) % (2 * math.pi) or 2 * math.pi, a)
            for a, b in zip(ordered, ordered[1:] + ordered[:1], strict=True)]
    width, start = max(gaps)
    return start + width / 2


def _ms(latency_s: float) -> str:
    return f"{round(latency_s * 1000, 1):g} ms"


def _pct(share: float) -> str:
    return f"{round(share * 100, 2):g} %"


def _since(start_s: float) -> str:
    return f" from {start_s:g} s" if start_s else ""


def _isp_label(world: World, i: int) -> str:
    isp = world.scenario.isps[i]
    bots = f"{_pct(isp.bot_fraction)} bots" if isp.bot_fraction else "no bots"
    lines = [isp.name, f"{isp.subscribers} subs, {bots}", world.servers[i].hostname]
    p = isp.policies
    if p.op25b is not None:
        lines.append(f"OP25B ({p.op25b.action}){_since(p.op25b.start_s)}")
    if p.submission is not None and p.submission.start_s:
        lines.append(f"587{_since(p.submission.start_s)}")
    return "\n".join(lines + _spammers(world, f"{isp.name}.dynamic", " at home"))


def _net_label(world: World, name: str, kind: NetKind) -> str:
    what = "visited network" if kind is NetKind.VISITED else "hosting network"
    lines = [name] if name in what else [name, what]
    if kind is NetKind.VISITED:
        net = next(v for v in world.scenario.visited_networks if v.name == name)
        if net.eavesdrop_probability:
            lines.append(f"eavesdropper: {_pct(net.eavesdrop_probability)} of logins")
    return "\n".join(lines + _spammers(world, name))


def _spammers(world: World, network: str, where: str = "") -> list[str]:
    """``3 spammer servers``, ``1 open relay``: the spam sources living in a network."""
    spam = world.scenario.spam
    lines = []
    for what, sources in (("spammer server", spam.spammer_servers),
                          ("open relay", spam.open_relays)):
        n = sum(x.count for x in sources if x.network == network)
        if n:
            lines.append(f"{n} {what}{'s' * (n > 1)}{where}")
    return lines


def _place_labels(ax: Axes, nodes: list[_Node], segments: list[tuple[np.ndarray, np.ndarray]],
                  obstacles: list[Text]) -> list[Bbox]:
    """Put each label where it overlaps the fewest links, markers and labels already drawn,
    trying the preferred direction first.

    Returns:
        The boxes of everything drawn but the links, in pixels.
    """
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    to_px = ax.transData.transform
    boxes = [t.get_window_extent(renderer) for t in obstacles]
    for node in nodes:
        r = math.sqrt(node.area) / 2 * ax.figure.dpi / 72
        c = to_px(node.xy)
        boxes.append(Bbox([c - r, c + r]))
    # links as sampled points in pixels: a box that holds some crosses a link
    points = np.vstack([to_px(np.linspace(a, b, 40)) for a, b in segments]) \
        if segments else np.zeros((0, 2))
    for node in nodes:
        text = ax.annotate(node.label, (node.xy[0], node.xy[1]), (0, 0), zorder=5,
                           textcoords="offset points", fontsize=8.5, linespacing=1.25,
                           bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "none",
                                 "alpha": 0.85})
        near = math.sqrt(node.area) / 2 + 5
        # sixteen directions, nearest the preferred first, close to the node, then farther
        candidates = sorted(((k * math.pi / 8, gap) for k in range(16) for gap in
                             (near, near + 16)), key=lambda c: (c[1], abs(math.remainder(
                                 c[0] - node.prefer, 2 * math.pi))))
        best = (math.inf, candidates[0])
        for angle, gap in candidates:
            _aim(text, angle, gap)
            box = text.get_window_extent(renderer)
            hits = sum(_overlap(box, b) for b in boxes)
            inside = np.count_nonzero((points[:, 0] > box.x0) & (points[:, 0] < box.x1)
                                      & (points[:, 1] > box.y0) & (points[:, 1] < box.y1))
            score = hits + 400.0 * inside
            if score < best[0]:
                best = (score, (angle, gap))
            if score == 0:
                break
        _aim(text, *best[1])
        boxes.append(text.get_window_extent(renderer))
    return boxes


def _aim(text: Text, angle: float, gap_pt: float) -> None:
    """Anchor a label ``gap_pt`` from its node in direction ``angle``."""
    dx, dy = math.cos(angle), math.sin(angle)
    text.set_position((gap_pt * dx, gap_pt * dy))
    text.set_horizontalalignment("left" if dx > 0.3 else "right" if dx < -0.3 else "center")
    text.set_verticalalignment("bottom" if dy > 0.3 else "top" if dy < -0.3 else "center")


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


def _legend(fig: Figure, world: World, kinds: set[NetKind], *, links: bool) -> None:
    isps = world.scenario.isps
    handles: list[Line2D | Patch] = [
        Line2D([], [], ls="", marker="o", ms=13, mfc=ISP, mec=ISP_EDGE,
               label="ISP (area ∝ subscribers)")]
    if any(i.policies.op25b is not None for i in isps):
        handles.append(Patch(fc=BLOCKED, ec=BLOCKED_EDGE, hatch="///", lw=2,
                             label="OP25B (port 25 blocked)"))
    if any(i.policies.submission is not None for i in isps):
        handles.append(Patch(fc=BADGE, label="587: submission with SMTP AUTH"))
    if NetKind.VISITED in kinds:
        handles.append(Line2D([], [], ls="", marker="s", ms=10, mfc=VISITED, mec="#525252",
                              label="visited network"))
    if NetKind.HOSTING in kinds:
        handles.append(Line2D([], [], ls="", marker="D", ms=9, mfc=HOSTING, mec="#525252",
                              label="hosting network"))
    if links:
        handles.append(Line2D([], [], color="#737373", lw=1.6, label="link (one-way latency)"))
    if kinds - {NetKind.DYNAMIC}:
        handles.append(Line2D([], [], color="#737373", lw=1.2, ls="--", label="upstream ISP"))
    fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), frameon=False,
               fontsize=9, bbox_to_anchor=(0.5, 0.0))

"""A message's journey as a UML-style sequence chart, from the lines of a ``Tracer``.

``sequence_rows`` turns trace lines into rows, the drawable model: one arrow per SMTP or POP3
command and per reply (a multi-line reply is one arrow), one arrow for a message body sent
after DATA or fetched by RETR, one per connection attempt and per DNS answer, and a note per
message creation and outcome. ``draw_sequence`` draws the rows: one lifeline per party in order
of first appearance, time going down. Rows are evenly spaced, not to scale; the simulated
time of each row is printed in the left margin, and long waits are marked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from netsim.charts.world_map import save_figure
from netsim.mail import TraceLine

Role = Literal["command", "reply", "data", "connect", "dns", "note"]

ROW_IN = 0.27          # height of a row [in]
GAP_IN = 0.32          # height of a "… later" marker [in]
LANE_IN = 2.9          # distance between lifelines [in]
TIME_IN = 1.0          # width of the time column [in]
HEAD_IN = 0.75         # height of the lifeline heads [in]
LABEL_CHARS = 46       # longest arrow label before it is shortened
NOTE_CHARS = 96         # notes have a row to themselves
GAP_S = 1.0            # a pause longer than this between rows gets a marker [s]
COLOURS = {"command": "#252525", "reply": "#525252", "data": "#2171b5", "connect": "#238b45",
           "dns": "#6a51a3", "blocked": "#cb181d", "transient": "#d94801", "refusal": "#cb181d"}
_CONNECT = re.compile(r"(?:(?P<who>\w+) )?\S+ → (?P<dst>\S+):(?P<port>\d+) (?P<verdict>\w+)"
                      r"(?: by (?P<rule>\S+) \((?P<where>[^,]+), (?P<action>\w+)\))?")


@dataclass(frozen=True, slots=True)
class Row:
    """One arrow (or note) of the chart.

    ``src`` sends to ``dst``; a note has ``dst == ""`` and stands at ``src``. ``text`` is the
    first trace line's text without its ``C:``/``S:`` side; ``lines`` counts the trace lines
    the row stands for (a multi-line reply, a message body).
    """

    at: float
    role: Role
    src: str
    dst: str
    text: str
    lines: int = 1
    blocked: bool = False
    rule: str = ""            # a blocked connection's ACL rule, else its verdict
    carries_message: bool = False   # a RETR reply with the message
    topic: str = ""           # the trace topic: smtp, pop3, imap, connect, dns, message, outcome

    @property
    def is_arrow(self) -> bool:
        return self.role != "note"

    @property
    def label(self) -> str:
        """What the chart writes on the arrow."""
        if self.role == "data":
            return f"message ({max(self.lines - 1, 0)} lines)"   # the "." line ends it
        suffix = ""
        if self.carries_message:
            suffix = f" + message ({self.lines - 2} lines)"
        elif self.lines > 1:
            suffix = f" (+{self.lines - 1} lines)"
        width = NOTE_CHARS if self.role == "note" else LABEL_CHARS
        return _shorten(self.text, width - len(suffix)) + suffix


def sequence_rows(lines: Sequence[TraceLine]) -> list[Row]:
    """Turn trace lines (in time order, as ``Tracer.ordered()`` gives them) into rows."""
    who = _who(lines)
    rows: list[Row] = []
    servers: set[str] = set()
    body: dict[tuple[str, str], int] = {}   # (client, server) → its message body's row
    last_command: dict[tuple[str, str], str] = {}
    for line, party in zip(lines, who, strict=True):
        if line.topic in ("smtp", "pop3", "imap"):
            side, _, text = line.text.partition(": ")
            src, dst = line.src, line.dst
            if side == "C":
                servers.add(dst)
                if (src, dst) in body:   # the body after DATA: one arrow, up to "."
                    k = body[(src, dst)]
                    rows[k] = replace(rows[k], lines=rows[k].lines + 1)
                    if text == ".":
                        del body[(src, dst)]
                    continue
                last_command[(src, dst)] = text.split(" ", 1)[0].upper()
                rows.append(Row(line.at, "command", src, dst, text, topic=line.topic))
                continue
            if src not in servers and dst in servers:   # a reply goes server → client
                src, dst = dst, src
            prev = rows[-1] if rows else None
            if (prev is not None and prev.role == "reply" and (prev.src, prev.dst) == (src, dst)
                    and round(prev.at, 9) == round(line.at, 9)):
                rows[-1] = replace(prev, lines=prev.lines + 1)   # one reply, several lines
                continue
            command = last_command.get((dst, src), "")
            rows.append(Row(line.at, "reply", src, dst, text, topic=line.topic,
                            carries_message=command in ("RETR", "TOP") and text.startswith("+OK")))
            if text.startswith("354"):
                body[(dst, src)] = len(rows)
                rows.append(Row(line.at, "data", dst, src, "", lines=0, topic=line.topic))
        elif line.topic == "connect":
            rows.append(_connect(line))
            servers.add(line.dst)
        elif line.topic == "dns":
            text = line.text.split(": ", 1)[-1]
            rows.append(Row(line.at, "dns", "DNS", party, text, topic="dns"))
        else:   # message, outcome and anything new: a note at the party
            rows.append(Row(line.at, "note", party, "", _recipients(line.text),
                            topic=line.topic))
    return [r for r in rows if not (r.role == "data" and r.lines == 0)]


def _connect(line: TraceLine) -> Row:
    m = _CONNECT.search(line.text)
    if m is None:
        return Row(line.at, "connect", line.src, line.dst, line.text, topic="connect")
    open_ = m["verdict"] == "open"
    text = f"TCP {m['dst']}:{m['port']} {m['verdict']}"
    if m["where"]:   # the rule's name stands by the ✕
        text += f" at {m['where']}"
    return Row(line.at, "connect", line.src, line.dst, text, blocked=not open_,
               rule="" if open_ else m["rule"] or m["verdict"], topic="connect")


def _who(lines: Sequence[TraceLine]) -> list[str]:
    """The party each line stands at. A name that is no network party (a sender's address,
    "<>", "bot" asking DNS) stands for: the server whose failure made a bounce; else the
    party the name stood for before; else the host that connects next (or last)."""
    parties = {p for line in lines if line.topic in ("connect", "smtp", "pop3", "imap")
               for p in (line.src, line.dst) if p}
    connects = [(i, line.src) for i, line in enumerate(lines) if line.topic == "connect"]
    seen: dict[str, str] = {}
    who: list[str] = []
    for i, line in enumerate(lines):
        party = line.src
        prev = lines[i - 1] if i else None
        if party in parties or not party:
            pass
        elif (line.topic == "message" and prev is not None and prev.topic == "outcome"
              and prev.at == line.at and prev.src in parties):
            party = prev.src
        elif party in seen:
            party = seen[party]
        else:
            after = [src for j, src in connects if j >= i]
            before = [src for j, src in connects if j < i]
            party = after[0] if after else before[-1] if before else party
        seen.setdefault(line.src, party)
        who.append(party or "?")
    return who


def _recipients(text: str) -> str:
    """``… to a, b, c`` → ``… to a and 2 more``: a spam run's list would fill the chart."""
    head, sep, tail = text.rpartition(" to ")
    names = tail.split(", ")
    if sep and len(names) > 1:
        return f"{head} to {names[0]} and {len(names) - 1} more"
    return text


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(width - 1, 1)] + "…"


def _parties(rows: Sequence[Row]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        for p in (r.src, r.dst):
            if p:
                seen.setdefault(p, None)
    return list(seen)


def _roles(lines: Sequence[TraceLine]) -> dict[str, str]:
    """What each host is, for the lifeline heads: the MUA, or a bot."""
    roles: dict[str, str] = {}
    for line, party in zip(lines, _who(lines), strict=True):
        if line.topic == "connect" and line.text.startswith("MUA "):
            roles.setdefault(line.src, "MUA")
        if line.src == "bot":
            roles[party] = "bot"
    return roles


def draw_sequence(lines: Sequence[TraceLine], path: str | Path | None = None, *,
                  max_rows: int = 400, title: str | None = None) -> Figure:
    """Draw a journey as a sequence chart.

    Args:
        lines: trace lines in time order (``Tracer.ordered()``).
        path: where to save the chart (.svg, .png or .pdf); nothing is saved if None.
        max_rows: rows drawn at most; a final note says how many trace lines are left out.
        title: the chart's title; by default the first note (the message's creation).

    Returns:
        The figure, on the Agg canvas (never shown). Each arrow is a ``FancyArrowPatch``
        whose gid is ``arrow-<row>``; each note's text has gid ``note-<row>``.
    """
    rows = sequence_rows(lines)
    shown, rest = rows[:max_rows], rows[max_rows:]
    parties = _parties(shown) or ["?"]
    lane = {p: TIME_IN + LANE_IN * (i + 0.5) for i, p in enumerate(parties)}
    ys, y = [], HEAD_IN + 0.25
    gaps: list[tuple[float, float]] = []   # (y, seconds)
    for i, r in enumerate(shown):
        if i and r.at - shown[i - 1].at > GAP_S:
            gaps.append((y + GAP_IN / 2 - ROW_IN / 2, r.at - shown[i - 1].at))
            y += GAP_IN
        ys.append(y)
        y += ROW_IN
    bottom = y + (0.35 if rest else 0.1)
    width = TIME_IN + LANE_IN * len(parties)
    title_in = 0.45
    fig = Figure(figsize=(width, bottom + title_in), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, bottom / (bottom + title_in)))
    ax.set_xlim(0, width)
    ax.set_ylim(bottom, 0)   # time goes down
    ax.set_axis_off()
    roles = _roles(lines)
    for p, x in lane.items():
        ax.plot([x, x], [HEAD_IN * 0.8, bottom], color="#bdbdbd", lw=1, ls="--", zorder=0)
        head = p if p not in roles else f"{p}\n({roles[p]})"
        ax.text(x, HEAD_IN * 0.4, head, ha="center", va="center", fontsize=8.5,
                weight="bold", parse_math=False, zorder=3,
                bbox={"boxstyle": "round,pad=0.35", "fc": "#f0f0f0", "ec": "#737373"})
    ax.text(TIME_IN - 0.1, HEAD_IN * 0.4, "time [s]", ha="right", va="center", fontsize=8,
            color="#525252")
    for gy, seconds in gaps:
        ax.axhspan(gy - GAP_IN / 2 + 0.04, gy + GAP_IN / 2 - 0.04, fc="#f7f7f7", ec="none",
                   zorder=0.5)
        ax.text(width / 2, gy, f"… {_duration(seconds)} later …", ha="center", va="center",
                fontsize=8, style="italic", color="#525252", zorder=3)
    prev_at: float | None = None
    for i, (r, ry) in enumerate(zip(shown, ys, strict=True)):
        same = prev_at is not None and round(r.at, 6) == round(prev_at, 6)
        ax.text(TIME_IN - 0.1, ry, f"{r.at:.3f}", ha="right", va="center", fontsize=7,
                family="monospace", color="#bdbdbd" if same else "#252525")
        prev_at = r.at
        if r.is_arrow:
            _arrow(ax, i, r, lane[r.src], lane[r.dst], ry)
        else:
            _note(ax, i, r, lane[r.src], ry, width)
    if rest:
        more = sum(r.lines for r in rest)
        ax.text(width / 2, bottom - 0.2, f"({more} more lines)", ha="center", va="center",
                fontsize=9, style="italic", color="#525252")
    heading = title if title is not None else next(
        (_shorten(r.text, 140) for r in rows if r.role == "note"), "trace")
    fig.suptitle(heading, y=1 - 0.1 / (bottom + title_in), va="top", fontsize=10.5,
                 weight="bold")
    if path is not None:
        save_figure(fig, path, dpi=100)
    return fig


def _arrow(ax: Axes, i: int, r: Row, x0: float, x1: float, y: float) -> None:
    colour = COLOURS["blocked" if r.blocked else r.role]
    if r.role == "reply" and r.text[:1] in ("4", "5", "-"):   # 4xx, 5xx, -ERR stand out
        colour = COLOURS["transient" if r.text[:1] == "4" else "refusal"]
    if x0 == x1:   # a party talking to itself: a short hook to the right
        x1 = x0 + LANE_IN * 0.3
    end = x0 + (x1 - x0) * 0.7 if r.blocked and r.rule != "refused" else x1
    dashed = r.role in ("reply", "dns")   # UML: replies are dashed, with open heads
    patch = FancyArrowPatch((x0, y), (end, y), arrowstyle="->" if dashed else "-|>",
                            mutation_scale=9, color=colour, lw=1.6 if r.role == "data" else 1,
                            ls="--" if dashed else "-", shrinkA=0, shrinkB=0, zorder=2,
                            gid=f"arrow-{i}")
    ax.add_patch(patch)
    mid = (x0 + end) / 2
    ax.text(mid, y - 0.03, r.label, ha="center", va="bottom", fontsize=7,
            family="monospace", color=colour, parse_math=False, zorder=3,
            bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.8})
    if r.blocked:
        ax.plot([end], [y], marker="X", ms=9, color=COLOURS["blocked"], zorder=4)
        side = 1 if x1 >= x0 else -1
        ax.text(end + side * 0.12, y, r.rule, ha="left" if side > 0 else "right",
                va="center", fontsize=8, weight="bold", color=COLOURS["blocked"],
                parse_math=False, zorder=4)


def _note(ax: Axes, i: int, r: Row, x: float, y: float, width: float) -> None:
    """A note beside the party's lifeline, on the side with more room."""
    right = x < width / 2 + LANE_IN / 2
    ax.text(x + (0.08 if right else -0.08), y - 0.04, r.label, ha="left" if right else "right",
            va="center", fontsize=7.5, parse_math=False, zorder=3, gid=f"note-{i}",
            bbox={"boxstyle": "round,pad=0.25", "fc": "#fff7bc", "ec": "#d9b300"})


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    unit, size = ("h", 3600) if seconds >= 7200 else ("min", 60)
    return f"{seconds:.0f} s ({seconds / size:.1f} {unit})"

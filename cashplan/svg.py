"""Small SVG charts, as text: line charts with bands, grouped bars, route maps.

Used by the service's pages (inline, so no external asset and no script) and
by the benchmark's comparison plots. Only presentation attributes are used
(no ``style``), so the pages' content security policy needs nothing more.
Every chart has a ``<title>`` and an ``aria-label``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f5fa8", "#d9822b", "#2e8540", "#b3261e", "#6b4fa0", "#00838f", "#8d6e63", "#5f6b7a")
FONT = "system-ui, sans-serif"


@dataclass(frozen=True)
class Line:
    name: str
    values: Sequence[float | None]  # None: no point (a gap)
    colour: str = ""
    dashed: bool = False
    markers: bool = False


@dataclass(frozen=True)
class Band:
    name: str
    lower: Sequence[float | None]
    upper: Sequence[float | None]
    colour: str = ""


@dataclass(frozen=True)
class Rule:
    """A horizontal line at a value (a minimum, a capacity)."""

    value: float
    label: str
    colour: str = "#b3261e"


def _fmt(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _open(width: int, height: int, title: str) -> list[str]:
    label = escape(title, quote=True)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{label}" '
        f'font-family="{FONT}" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="8" y="16" font-size="13" font-weight="600" fill="#222">{escape(title)}</text>',
    ]


def line_chart(
    title: str,
    x_labels: Sequence[str],
    lines: Sequence[Line] = (),
    bands: Sequence[Band] = (),
    rules: Sequence[Rule] = (),
    *,
    marker_at: int | None = None,
    marker_label: str = "today",
    y_label: str = "",
    width: int = 680,
    height: int = 260,
) -> str:
    """Lines (and shaded bands) over labelled x positions; ``marker_at`` draws a vertical line."""
    n = len(x_labels)
    left, right, top, bottom = 56, 12, 48, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    found = [v for line in lines for v in line.values if v is not None]
    found += [v for band in bands for v in band.upper if v is not None]
    found += [rule.value for rule in rules]
    y_max = 4 * _nice_max(max(found, default=1.0) * 1.05 / 4)

    def x(i: float) -> float:
        return left + (plot_w * i / max(n - 1, 1))

    def y(v: float) -> float:
        return top + plot_h * (1 - max(min(v / y_max, 1.0), 0.0))

    out = _open(width, height, title)
    for k in range(5):
        value = y_max * k / 4
        yy = y(value)
        out.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" '
            'stroke="#e3e6ea" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#555">'
            f"{_fmt(value)}</text>"
        )
    if y_label:
        out.append(
            f'<text x="12" y="{top + plot_h / 2:.1f}" fill="#555" '
            f'transform="rotate(-90 12 {top + plot_h / 2:.1f})" text-anchor="middle">'
            f"{escape(y_label)}</text>"
        )
    step = max(1, math.ceil(n / 10))
    for i in range(0, n, step):
        out.append(
            f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" fill="#555">'
            f"{escape(x_labels[i])}</text>"
        )
    legend: list[tuple[str, str, bool]] = []
    for k, band in enumerate(bands):
        colour = band.colour or PALETTE[(k + 1) % len(PALETTE)]
        points = [
            (i, lo, hi)
            for i, (lo, hi) in enumerate(zip(band.lower, band.upper, strict=True))
            if lo is not None and hi is not None
        ]
        if points:
            upper = " ".join(f"{x(i):.1f},{y(hi):.1f}" for i, _, hi in points)
            lower = " ".join(f"{x(i):.1f},{y(lo):.1f}" for i, lo, _ in reversed(points))
            out.append(
                f'<polygon points="{upper} {lower}" fill="{colour}" fill-opacity="0.18" '
                'stroke="none"/>'
            )
            if band.name:
                legend.append((band.name, colour, True))
    for rule in rules:
        yy = y(rule.value)
        out.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" '
            f'stroke="{rule.colour}" stroke-width="1" stroke-dasharray="2 3"/>'
        )
        out.append(
            f'<text x="{width - right - 2}" y="{yy - 3:.1f}" text-anchor="end" '
            f'fill="{rule.colour}">{escape(rule.label)}</text>'
        )
    for k, line in enumerate(lines):
        colour = line.colour or PALETTE[k % len(PALETTE)]
        dash = ' stroke-dasharray="5 3"' if line.dashed else ""
        run: list[str] = []
        runs: list[list[str]] = []
        for i, v in enumerate(line.values):
            if v is None:
                if run:
                    runs.append(run)
                run = []
                continue
            run.append(f"{x(i):.1f},{y(v):.1f}")
        if run:
            runs.append(run)
        for segment in runs:
            out.append(
                f'<polyline points="{" ".join(segment)}" fill="none" stroke="{colour}" '
                f'stroke-width="1.8"{dash}/>'
            )
        if line.markers:
            for i, v in enumerate(line.values):
                if v is not None:
                    out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2" fill="{colour}"/>')
        legend.append((line.name, colour, False))
    if marker_at is not None and 0 <= marker_at < n:
        xx = x(marker_at)
        out.append(
            f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{top + plot_h}" stroke="#333" '
            'stroke-width="1" stroke-dasharray="4 3"/>'
        )
        out.append(
            f'<text x="{xx + 3:.1f}" y="{top + 10}" fill="#333">{escape(marker_label)}</text>'
        )
    out.extend(_legend(legend, width - right, 32))
    out.append("</svg>")
    return "\n".join(out)


def _legend(items: Sequence[tuple[str, str, bool]], right: int, y: int) -> list[str]:
    out = []
    xx = float(right)
    for name, colour, filled in reversed(items):
        text_w = 6.2 * len(name) + 4
        xx -= text_w
        out.append(f'<text x="{xx:.1f}" y="{y + 4}" fill="#333">{escape(name)}</text>')
        xx -= 16
        if filled:
            out.append(
                f'<rect x="{xx:.1f}" y="{y - 4}" width="12" height="9" fill="{colour}" '
                'fill-opacity="0.3"/>'
            )
        else:
            out.append(
                f'<line x1="{xx:.1f}" y1="{y}" x2="{xx + 12:.1f}" y2="{y}" stroke="{colour}" '
                'stroke-width="2"/>'
            )
        xx -= 10
    return out


def bar_chart(
    title: str,
    categories: Sequence[str],
    groups: Sequence[tuple[str, Sequence[float]]],
    *,
    unit: str = "",
    width: int = 680,
    height: int = 260,
) -> str:
    """Grouped bars: one group per category, one bar per named series in each."""
    left, right, top, bottom = 56, 12, 48, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, vs in groups for v in vs]
    y_max = 4 * _nice_max(max(values, default=1.0) * 1.1 / 4)
    out = _open(width, height, title)
    for k in range(5):
        value = y_max * k / 4
        yy = top + plot_h * (1 - value / y_max)
        out.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" '
            'stroke="#e3e6ea" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#555">'
            f"{_fmt(value)}</text>"
        )
    slot = plot_w / max(len(categories), 1)
    bar_w = slot * 0.7 / max(len(groups), 1)
    for c, category in enumerate(categories):
        base = left + c * slot + slot * 0.15
        for g, (_, vs) in enumerate(groups):
            v = vs[c]
            h = plot_h * max(v, 0.0) / y_max
            xx = base + g * bar_w
            colour = PALETTE[g % len(PALETTE)]
            out.append(
                f'<rect x="{xx:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 2:.1f}" '
                f'height="{h:.1f}" fill="{colour}"/>'
            )
            out.append(
                f'<text x="{xx + bar_w / 2 - 1:.1f}" y="{top + plot_h - h - 3:.1f}" '
                f'text-anchor="middle" fill="#333">{_fmt(v)}{escape(unit)}</text>'
            )
        out.append(
            f'<text x="{left + c * slot + slot / 2:.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle" fill="#555">{escape(category)}</text>'
        )
    out.extend(
        _legend(
            [(name, PALETTE[g % len(PALETTE)], True) for g, (name, _) in enumerate(groups)],
            width - right,
            32,
        )
    )
    out.append("</svg>")
    return "\n".join(out)


@dataclass(frozen=True)
class MapPoint:
    latitude: float
    longitude: float
    label: str


def route_map(
    title: str,
    routes: Sequence[tuple[str, MapPoint, Sequence[MapPoint]]],
    unrouted: Sequence[MapPoint] = (),
    *,
    width: int = 680,
    height: int = 420,
) -> str:
    """Routes drawn as numbered stops joined from and back to their base (equirectangular)."""
    points = [base for _, base, _ in routes] + [p for _, _, ps in routes for p in ps]
    points += list(unrouted)
    out = _open(width, height, title)
    if not points:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">No visits</text>')
        out.append("</svg>")
        return "\n".join(out)
    lat0 = sum(p.latitude for p in points) / len(points)
    shrink = math.cos(math.radians(lat0))
    xs = [p.longitude * shrink for p in points]
    ys = [p.latitude for p in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 0.01)  # at least about a kilometre
    left, top, size_w, size_h = 20, 44, width - 40, height - 64
    scale = min(size_w, size_h) / span
    # Centre the drawing in the frame.
    mid_x = (max(xs) + min(xs)) / 2
    mid_y = (max(ys) + min(ys)) / 2

    def at(p: MapPoint) -> tuple[float, float]:
        px = p.longitude * shrink
        return (
            left + size_w / 2 + (px - mid_x) * scale,
            top + size_h / 2 - (p.latitude - mid_y) * scale,
        )

    legend = []
    for k, (name, base, stops) in enumerate(routes):
        colour = PALETTE[k % len(PALETTE)]
        chain = [at(base), *[at(p) for p in stops], at(base)]
        out.append(
            f'<polyline points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in chain)}" fill="none" '
            f'stroke="{colour}" stroke-width="1.6"/>'
        )
        bx, by = at(base)
        out.append(
            f'<rect x="{bx - 5:.1f}" y="{by - 5:.1f}" width="10" height="10" fill="{colour}">'
            f"<title>{escape(name)}: base</title></rect>"
        )
        for i, p in enumerate(stops, start=1):
            px, py = at(p)
            out.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="8" fill="#fff" stroke="{colour}" '
                f'stroke-width="2"><title>{escape(p.label)}</title></circle>'
            )
            out.append(
                f'<text x="{px:.1f}" y="{py + 4:.1f}" text-anchor="middle" font-size="9" '
                f'fill="#222">{i}</text>'
            )
        legend.append((name, colour, False))
    for p in unrouted:
        px, py = at(p)
        out.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="6" fill="#b3261e">'
            f"<title>{escape(p.label)}: not routed</title></circle>"
        )
    if unrouted:
        legend.append(("not routed", "#b3261e", True))
    out.extend(_legend(legend, width - 12, 32))
    out.append("</svg>")
    return "\n".join(out)

"""The charts are well-formed SVG, escape their text and use no style attributes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from cashplan.svg import Band, Line, MapPoint, Rule, bar_chart, line_chart, route_map

NS = "{http://www.w3.org/2000/svg}"


def _parse(text: str) -> ET.Element:
    assert "style=" not in text
    return ET.fromstring(text)  # noqa: S314 - our own output


def test_line_chart() -> None:
    svg = line_chart(
        "Demand <20s> & more",
        ["1", "2", "3", "4"],
        [
            Line("actual", [1, None, 3, 4], markers=True),
            Line("forecast", [1, 2, 3, 5], dashed=True),
        ],
        [Band("90%", [0, 1, 2, 3], [2, 3, 4, 6])],
        [Rule(2.5, "minimum")],
        marker_at=2,
    )
    root = _parse(svg)
    assert root.find(f"{NS}title").text == "Demand <20s> & more"  # type: ignore[union-attr]
    assert len(root.findall(f"{NS}polyline")) == 3  # the gap splits "actual" in two
    assert len(root.findall(f"{NS}polygon")) == 1
    assert root.get("aria-label") == "Demand <20s> & more"


def test_bar_chart_and_route_map() -> None:
    bars = _parse(bar_chart("Policies", ["a", "b"], [("x", [1.0, 2.0]), ("y", [3.0, 0.0])]))
    assert len(bars.findall(f"{NS}rect")) >= 5
    base = MapPoint(52.5, 13.4, "base")
    stops = [MapPoint(52.51, 13.41, "T1"), MapPoint(52.52, 13.39, "T2")]
    routes = _parse(route_map("Routes", [("Ann", base, stops)], [MapPoint(52.4, 13.3, "T3")]))
    assert len(routes.findall(f"{NS}circle")) == 3
    empty = _parse(route_map("Routes", []))
    assert "No visits" in ET.tostring(empty, encoding="unicode")

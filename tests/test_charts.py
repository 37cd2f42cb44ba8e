import xml.etree.ElementTree as ET

from calls.reports.charts import (
    bar_list_chart,
    column_chart,
    compact_number,
    nice_ceiling,
    stacked_bar,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(str(svg))  # raises on anything that is not well-formed SVG/XML


def bars(svg: str) -> list[ET.Element]:
    return [r for r in parse(svg).iter(f"{SVG}rect") if "bar" in r.get("class", "").split()]


def texts(svg: str) -> list[str]:
    return ["".join(t.itertext()) for t in parse(svg).iter(f"{SVG}text")]


def test_numbers_on_axes_stay_short():
    assert compact_number(0) == "0"
    assert compact_number(9_999) == "9,999"
    assert compact_number(12_345) == "12.3k"
    assert compact_number(3_000_000) == "3.0M"
    assert compact_number(5_000_000_000) == "5.0B"
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 11, 2_400_000)] == [1, 1, 5, 10, 20, 5_000_000]


def test_column_chart_with_no_data_says_so_and_draws_no_bar():
    svg = column_chart([], title="Attempts per hour")
    assert parse(svg).get("data-empty") == "true"
    assert "No data yet" in texts(svg)
    assert bars(svg) == []
    zeros = column_chart([("10:00", 0), ("11:00", 0)], title="t", empty_text="No calls")
    assert "No calls" in texts(zeros)
    assert all(float(b.get("height")) == 0 for b in bars(zeros))


def test_column_chart_with_huge_values_keeps_bars_inside_the_frame():
    columns = [(f"{h:02d}:00", h * 125_000_000) for h in range(24)]
    svg = column_chart(columns, title="Big", height=200)
    drawn = bars(svg)
    assert len(drawn) == 24
    assert all(
        0 <= float(b.get("y")) and float(b.get("y")) + float(b.get("height")) <= 200 for b in drawn
    )
    tallest = max(drawn, key=lambda b: float(b.get("height")))
    assert tallest.get("data-value") == str(23 * 125_000_000)
    assert "5.0B" in texts(svg)  # the axis top, rounded up from 2.875 billion
    assert len([t for t in texts(svg) if t.endswith(":00")]) <= 12  # labels thinned out


def test_bar_list_chart_escapes_spoken_answers_and_gives_shares():
    svg = bar_list_chart([("<script>alert(1)</script>", 3), ("yes", 1)], title="Q1")
    assert "<script>" not in str(svg)
    drawn = bars(svg)
    assert [b.get("data-value") for b in drawn] == ["3", "1"]
    assert float(drawn[0].get("width")) > float(drawn[1].get("width")) > 0
    assert "3 (75%)" in texts(svg)


def test_bar_list_chart_with_no_answers():
    svg = bar_list_chart([], title="Q1")
    assert "No answers yet" in texts(svg) and parse(svg).get("data-empty") == "true"


def test_stacked_bar_splits_the_width_by_share_and_lists_every_segment():
    svg = stacked_bar(
        [("pending", 1_000_000, "#aaa"), ("completed", 3_000_000, "#0a0"), ("refused", 0, "#a00")],
        title="Contacts",
        width=400,
    )
    widths = [float(b.get("width")) for b in bars(svg)]
    assert widths == [100.0, 300.0]  # the empty segment takes no room
    legend = texts(svg)
    assert "pending: 1.0M · 25.0%" in legend
    assert "refused: 0 · 0.0%" in legend


def test_stacked_bar_with_nothing_in_it():
    svg = stacked_bar([("pending", 0, "#aaa")], title="Contacts", empty_text="No contacts yet")
    assert bars(svg) == [] and "No contacts yet" in texts(svg)

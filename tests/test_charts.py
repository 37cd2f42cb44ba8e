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
    assert "3.0B" in texts(svg)  # the axis top, rounded up from 2.875 billion by 1B steps
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
    assert not any(text.startswith("refused") for text in legend)  # nothing to show


def test_stacked_bar_with_nothing_in_it():
    svg = stacked_bar([("pending", 0, "#aaa")], title="Contacts", empty_text="No contacts yet")
    assert bars(svg) == [] and "No contacts yet" in texts(svg)


def test_y_axis_steps_by_one_two_or_five():
    from calls.reports.charts import axis_steps

    assert axis_steps(0) == [0, 1]
    assert axis_steps(3) == [0, 1, 2, 3]
    assert axis_steps(7) == [0, 2, 4, 6, 8]
    assert axis_steps(23) == [0, 5, 10, 15, 20, 25]
    assert axis_steps(101) == [0, 50, 100, 150]
    svg = column_chart([("10:00", 7), ("11:00", 2)], title="t")
    ticks = [
        "".join(t.itertext()) for t in parse(svg).iter(f"{SVG}text") if t.get("class") == "y-tick"
    ]
    assert ticks == ["0", "2", "4", "6", "8"]  # never 0, 3.5, 7


def test_the_current_hour_is_labelled_whatever_labels_are_thinned_out():
    columns = [(f"{h:02d}:00", h) for h in range(24)]  # 00:00 … 23:00, the last in progress
    svg = column_chart(columns, title="t", max_labels=8, current_label="now")
    labels = texts(svg)
    assert "23:00" in labels and "now" in labels
    current = [b for b in bars(svg) if "current" in b.get("class").split()]
    assert [b.get("data-value") for b in current] == ["23"]


def test_chart_fills_its_panel_and_legends_wrap_whole_labels():
    long = "Answered, not finished, a label much longer than a legend column"
    svg = stacked_bar(
        [(f"{long} {i}", 10 + i, "#0a0") for i in range(6)] + [("Nothing here", 0, "#a00")],
        title="Outcomes",
        width=400,
    )
    legend = [t for t in parse(svg).iter(f"{SVG}text") if t.get("class") == "legend"]
    assert len(legend) == 6  # the zero category is left out
    assert all(t.text.startswith(long) and "…" not in t.text for t in legend)
    rows = sorted({float(t.get("y")) for t in legend})
    assert len(rows) == 6  # too long for two a row: one under the other
    assert float(parse(svg).get("height")) >= rows[-1]
    assert 'width="960"' in str(column_chart([], title="t"))  # scaled to the panel by CSS


def test_bar_list_shares_are_of_all_answers():
    svg = bar_list_chart([("1 — basic", 1), ("2 — plus", 2)], title="Q", total=4)
    assert "1 (25%)" in texts(svg) and "2 (50%)" in texts(svg)

"""Server-rendered SVG charts for the back office: no JavaScript, no CDN, work offline.

Each function takes figures already aggregated in SQL and returns an SVG string marked safe for
templates. Every label is escaped (answers to speech questions are free text), and the charts
stay readable with no data (an empty frame that says so) and with huge numbers (axis labels in
compact form: 1.2M).
"""

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

FONT = 'font-family="system-ui, sans-serif" font-size="11"'
BAR_COLOUR = "#417690"  # the admin's own blue
EMPTY_COLOUR = "#e8e8e8"
TEXT_COLOUR = "#333"
GRID_COLOUR = "#ddd"


def compact_number(value: float) -> str:
    """1234 -> '1,234'; 12345 -> '12.3k'; 1234567 -> '1.2M': short enough for an axis."""
    value = float(value)
    if abs(value) < 10_000:
        return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            scaled = value / limit
            return f"{scaled:.0f}{suffix}" if abs(scaled) >= 100 else f"{scaled:.1f}{suffix}"
    return f"{value:,.0f}"  # pragma: no cover - unreachable


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at or above `value` (at least 1): a round axis top."""
    if value <= 1:
        return 1
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        top = step * 10**exponent
        if top >= value:
            return top
    return 10 ** (exponent + 1)  # pragma: no cover - the loop always returns


def shorten(label: str, length: int) -> str:
    return label if len(label) <= length else label[: length - 1] + "…"


def _svg(width: int, height: int, title: str, body: list[str], *, empty: bool) -> SafeString:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" data-empty="{"true" if empty else "false"}">'
        f"<title>{escape(title)}</title>"
    )
    return mark_safe(head + "".join(body) + "</svg>")


def _no_data(width: int, y: float, text: str) -> str:
    return (
        f'<text x="{width / 2:.1f}" y="{y:.1f}" text-anchor="middle" fill="#777" {FONT}>'
        f"{escape(text)}</text>"
    )


def column_chart(
    columns: Sequence[tuple[str, int]],
    *,
    title: str,
    width: int = 640,
    height: int = 200,
    empty_text: str = "No data yet",
    max_labels: int = 12,
) -> SafeString:
    """Vertical bars, one per (label, value), on a round y axis; e.g. attempts per hour."""
    left, right, top, bottom = 48, 8, 10, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v for _, v in columns), default=0)
    axis_top = nice_ceiling(peak)
    body = []
    # Gridlines and y labels; no half-way line where it would fall between whole numbers.
    for fraction in (0, 0.5, 1) if axis_top % 2 == 0 else (0, 1):
        y = top + plot_h * (1 - fraction)
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="{TEXT_COLOUR}" '
            f"{FONT}>{compact_number(axis_top * fraction)}</text>"
        )
    if columns:
        slot = plot_w / len(columns)
        bar_w = max(1.0, slot * 0.8)
        label_every = max(1, math.ceil(len(columns) / max_labels))
        for i, (label, value) in enumerate(columns):
            h = plot_h * value / axis_top
            x = left + i * slot + (slot - bar_w) / 2
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{BAR_COLOUR}" data-value="{value}">'
                f"<title>{escape(label)}: {value:,}</title></rect>"
            )
            if i % label_every == 0:
                body.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
                    f'fill="{TEXT_COLOUR}" {FONT}>{escape(shorten(label, 8))}</text>'
                )
    empty = peak == 0
    if empty:
        body.append(_no_data(width, top + plot_h / 2, empty_text))
    return _svg(width, height, title, body, empty=empty)


def bar_list_chart(
    bars: Sequence[tuple[str, int]],
    *,
    title: str,
    width: int = 640,
    empty_text: str = "No answers yet",
) -> SafeString:
    """Horizontal bars with the label on the left and count and share on the right: reads well
    with long labels (spoken answers) and any number of bars."""
    label_w, value_w, row_h, pad = 170, 110, 22, 6
    bar_area = width - label_w - value_w
    total = sum(v for _, v in bars)
    peak = max((v for _, v in bars), default=0)
    height = max(1, len(bars)) * row_h + 2 * pad
    body = []
    for i, (label, value) in enumerate(bars):
        y = pad + i * row_h
        w = bar_area * value / peak if peak else 0
        share = f"{100 * value / total:.0f}%" if total else "–"
        body.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" fill="{TEXT_COLOUR}" '
            f"{FONT}>{escape(shorten(label, 26))}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{bar_area}" height="{row_h - 6}" '
            f'fill="{EMPTY_COLOUR}"/>'
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
            f'fill="{BAR_COLOUR}" data-value="{value}"><title>{escape(label)}: {value:,}</title>'
            f"</rect>"
            f'<text x="{label_w + bar_area + 6}" y="{y + 15}" fill="{TEXT_COLOUR}" {FONT}>'
            f"{compact_number(value)} ({share})</text>"
        )
    empty = total == 0
    if not bars:
        body.append(_no_data(width, pad + 15, empty_text))
    return _svg(width, height, title, body, empty=empty)


def stacked_bar(
    segments: Sequence[tuple[str, int, str]],
    *,
    title: str,
    width: int = 640,
    empty_text: str = "Nothing yet",
) -> SafeString:
    """One horizontal bar split into (label, value, colour) segments, with a legend giving each
    count and share; segments with no rows take no room but keep their place in the legend."""
    bar_h, legend_row, per_row = 22, 18, 3
    total = sum(v for _, v, _ in segments)
    legend_rows = max(1, math.ceil(len(segments) / per_row))
    height = bar_h + 8 + legend_rows * legend_row
    body = [f'<rect x="0" y="0" width="{width}" height="{bar_h}" fill="{EMPTY_COLOUR}"/>']
    x = 0.0
    for label, value, colour in segments:
        if not total or not value:
            continue
        w = width * value / total
        body.append(
            f'<rect class="bar segment" x="{x:.2f}" y="0" width="{w:.2f}" height="{bar_h}" '
            f'fill="{colour}" data-value="{value}"><title>{escape(label)}: {value:,} '
            f"({100 * value / total:.1f}%)</title></rect>"
        )
        x += w
    if not total:
        body.append(_no_data(width, bar_h - 7, empty_text))
    column_w = width / per_row
    for i, (label, value, colour) in enumerate(segments):
        lx = (i % per_row) * column_w
        ly = bar_h + 8 + (i // per_row) * legend_row
        share = f" · {100 * value / total:.1f}%" if total else ""
        body.append(
            f'<rect x="{lx:.1f}" y="{ly + 2}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{lx + 14:.1f}" y="{ly + 11}" fill="{TEXT_COLOUR}" {FONT}>'
            f"{escape(shorten(label, 22))}: {compact_number(value)}{share}</text>"
        )
    return _svg(width, height, title, body, empty=not total)

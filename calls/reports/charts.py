"""Server-rendered SVG charts for the back office: no JavaScript, no CDN, work offline.

Each function takes figures already aggregated in SQL and returns an SVG string marked safe for
templates. Every label is escaped (answers to speech questions are free text), and the charts
stay readable with no data (an empty frame that says so) and with huge numbers (axis labels in
compact form: 1.2M). They are drawn WIDTH wide and scaled by the page's CSS to the width of
their panel; a y axis steps by 1, 2 or 5 × 10^k; legends list only what is there and are never
cut (they wrap to the next line instead).
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
CURRENT_COLOUR = "#205067"  # the column of the hour in progress, darker
WIDTH = 960  # about a panel's width at 1366 px with the admin's sidebar open
CHAR_WIDTH = 6.2  # average width of an 11 px system-ui character, to lay out legends


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


def axis_steps(peak: float, *, most: int = 5) -> list[int]:
    """The y axis's tick values for counts up to `peak`: 0 and then multiples of a step of
    1, 2 or 5 × 10^k (never a fraction of a call), at most `most` steps, the last at or above
    `peak`. 7 -> 0, 2, 4, 6, 8; 23 -> 0, 5, …, 25; 0 -> 0, 1."""
    step = 1
    while math.ceil(max(peak, 1) / step) > most:
        step = nice_ceiling(step + 1)  # 1 -> 2 -> 5 -> 10 -> 20 …
    top = step * math.ceil(max(peak, 1) / step)
    return list(range(0, int(top) + 1, int(step)))


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
    width: int = WIDTH,
    height: int = 200,
    empty_text: str = "No data yet",
    max_labels: int = 12,
    current_label: str = "",
) -> SafeString:
    """Vertical bars, one per (label, value), on a y axis of round steps; e.g. calls per hour.
    With `current_label`, the last column is the one in progress: drawn darker and labelled
    with that word under its own label (every other label is counted back from it)."""
    left, right, top = 48, 8, 10
    bottom = 34 if current_label else 22
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v for _, v in columns), default=0)
    ticks = axis_steps(peak)
    axis_top = ticks[-1]
    body = []
    for tick in ticks:
        y = top + plot_h * (1 - tick / axis_top)
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
            f'<text class="y-tick" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" '
            f'fill="{TEXT_COLOUR}" {FONT}>{compact_number(tick)}</text>'
        )
    if columns:
        slot = plot_w / len(columns)
        bar_w = max(1.0, slot * 0.8)
        label_every = max(1, math.ceil(len(columns) / max_labels))
        last = len(columns) - 1
        label_y = top + plot_h + 14
        for i, (label, value) in enumerate(columns):
            h = plot_h * value / axis_top
            x = left + i * slot + (slot - bar_w) / 2
            current = bool(current_label) and i == last
            body.append(
                f'<rect class="bar{" current" if current else ""}" x="{x:.1f}" '
                f'y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{CURRENT_COLOUR if current else BAR_COLOUR}" data-value="{value}">'
                f"<title>{escape(label)}: {value:,}</title></rect>"
            )
            if (last - i) % label_every == 0:
                body.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{label_y:.1f}" text-anchor="middle" '
                    f'fill="{TEXT_COLOUR}" {FONT}>{escape(label)}</text>'
                )
            if current:
                body.append(
                    f'<text class="current-label" x="{x + bar_w / 2:.1f}" y="{label_y + 13:.1f}" '
                    f'text-anchor="middle" fill="{CURRENT_COLOUR}" font-weight="600" {FONT}>'
                    f"{escape(current_label)}</text>"
                )
    empty = peak == 0
    if empty:
        body.append(_no_data(width, top + plot_h / 2, empty_text))
    return _svg(width, height, title, body, empty=empty)


def text_width(text: str) -> float:
    return len(text) * CHAR_WIDTH


def bar_list_chart(
    bars: Sequence[tuple[str, int]],
    *,
    title: str,
    width: int = WIDTH,
    total: int | None = None,
    empty_text: str = "No answers yet",
) -> SafeString:
    """Horizontal bars with the label on the left and count and share on the right: reads well
    with long labels (spoken answers) and any number of bars. Shares are of `total` (all the
    answers, also those not drawn), by default the sum of the bars. The label column is as wide
    as the longest label up to 40 % of the chart; a longer label is shortened, whole in its
    tooltip."""
    value_w, row_h, pad = 110, 22, 6
    longest = max((text_width(label) for label, _ in bars), default=0)
    label_w = int(min(max(120, longest + 12), 0.4 * width))
    fits = int((label_w - 12) / CHAR_WIDTH)
    bar_area = width - label_w - value_w
    if total is None:
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
            f"{FONT}><title>{escape(label)}</title>{escape(shorten(label, fits))}</text>"
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
    width: int = WIDTH,
    empty_text: str = "Nothing yet",
) -> SafeString:
    """One horizontal bar split into (label, value, colour) segments, with a legend giving each
    count and share. Segments with no rows take no room and are left out of the legend; the
    legend's entries are laid out one after the other and wrap, whole, to the next line."""
    bar_h, legend_row, gap = 22, 18, 18
    total = sum(v for _, v, _ in segments)
    shown = [(label, value, colour) for label, value, colour in segments if value]
    legend, lx, ly = [], 0.0, bar_h + 8
    for label, value, colour in shown:
        text = f"{label}: {compact_number(value)} · {100 * value / total:.1f}%"
        item_w = 14 + text_width(text)
        if lx > 0 and lx + item_w > width:
            lx, ly = 0.0, ly + legend_row
        legend.append(
            f'<rect x="{lx:.1f}" y="{ly + 2}" width="10" height="10" fill="{colour}"/>'
            f'<text class="legend" x="{lx + 14:.1f}" y="{ly + 11}" fill="{TEXT_COLOUR}" '
            f"{FONT}>{escape(text)}</text>"
        )
        lx += item_w + gap
    height = ly + legend_row if shown else bar_h + 4
    body = [f'<rect x="0" y="0" width="{width}" height="{bar_h}" fill="{EMPTY_COLOUR}"/>']
    x = 0.0
    for label, value, colour in shown:
        w = width * value / total
        body.append(
            f'<rect class="bar segment" x="{x:.2f}" y="0" width="{w:.2f}" height="{bar_h}" '
            f'fill="{colour}" data-value="{value}"><title>{escape(label)}: {value:,} '
            f"({100 * value / total:.1f}%)</title></rect>"
        )
        x += w
    if not total:
        body.append(_no_data(width, bar_h - 7, empty_text))
    return _svg(width, int(height), title, body + legend, empty=not total)

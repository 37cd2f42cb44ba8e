"""Template filters for the back office pages."""

from django import template

register = template.Library()


@register.filter
def as_percent(value: float | None) -> str:
    """0.4567 -> '45.7%'; None (nothing to divide by) -> '–'."""
    if value is None:
        return "–"
    return f"{100 * value:.1f}%"

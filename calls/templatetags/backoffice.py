"""Template filters and tags for the back office pages."""

from django import template

register = template.Library()

CONTROL_BUTTONS = [
    ("start", "Start calling", False),
    ("pause", "Pause", False),
    ("resume", "Resume", False),
    ("cancel", "Cancel campaign…", True),
]


@register.filter
def as_percent(value: float | None) -> str:
    """0.4567 -> '45.7%'; None (nothing to divide by) -> '–'."""
    if value is None:
        return "–"
    return f"{100 * value:.1f}%"


@register.inclusion_tag("admin/voicesurvey/_campaign_controls.html", takes_context=True)
def campaign_controls(context, campaign, next_url: str):
    """The control buttons of `campaign`; after the action the browser goes to `next_url`."""
    return {
        "campaign": campaign,
        "buttons": CONTROL_BUTTONS,
        "allowed": [action for action, _, _ in CONTROL_BUTTONS if campaign.can(action)],
        "next": next_url,
        "csrf_token": context.get("csrf_token"),
    }

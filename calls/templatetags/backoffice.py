"""Template filters and tags for the back office pages."""

from django import template

from calls.reports.dashboard import CONTROL_BUTTONS, allowed_actions, percent

register = template.Library()


register.filter("as_percent", percent)  # {{ 0.4567|as_percent }} -> "45.7%"


@register.inclusion_tag("admin/voicesurvey/_campaign_controls.html", takes_context=True)
def campaign_controls(context, campaign, next_url: str):
    """The control buttons of `campaign`; after the action the browser goes to `next_url`."""
    return {
        "campaign": campaign,
        "buttons": CONTROL_BUTTONS,
        "allowed": allowed_actions(campaign),
        "next": next_url,
        "csrf_token": context.get("csrf_token"),
    }

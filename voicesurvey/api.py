"""The /api/v1/ router. Campaign actions that belong to other apps (the contact import, stats,
results, the cancel that hangs up live calls) are mixed into the campaign viewset here, so
campaigns never imports contacts or calls."""

from django.contrib.auth.decorators import login_required
from django.urls import include, path, re_path, reverse_lazy
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from calls.api import (
    AnswerViewSet,
    CallAttemptViewSet,
    CampaignCancelAction,
    CampaignResultsActions,
    ProviderAccountViewSet,
    StatsViewSet,
)
from calls.booking.api import ScheduledCallViewSet
from campaigns.api import CampaignViewSet as CampaignBaseViewSet
from contacts.api import CampaignContactImportActions, ContactViewSet, ExclusionViewSet
from hooks.api import WebhookDeliveryViewSet, WebhookSubscriptionViewSet
from voicesurvey.api_errors import api_not_found


class CampaignViewSet(
    CampaignCancelAction,
    CampaignContactImportActions,
    CampaignResultsActions,
    CampaignBaseViewSet,
):
    __doc__ = CampaignBaseViewSet.__doc__


router = DefaultRouter()
router.trailing_slash = "/?"  # both /campaigns/1 and /campaigns/1/ (and results.csv without one)
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("contacts", ContactViewSet, basename="contact")
router.register("exclusions", ExclusionViewSet, basename="exclusion")
router.register("attempts", CallAttemptViewSet, basename="attempt")
router.register("answers", AnswerViewSet, basename="answer")
router.register("stats", StatsViewSet, basename="stats")
router.register("scheduled-calls", ScheduledCallViewSet, basename="scheduled-call")
router.register(
    "webhook-subscriptions", WebhookSubscriptionViewSet, basename="webhook-subscription"
)
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("provider-accounts", ProviderAccountViewSet, basename="provider-account")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI is a page for people: a visitor who is not signed in goes to the admin's login.
    path(
        "docs/",
        login_required(
            SpectacularSwaggerView.as_view(url_name="schema"), login_url=reverse_lazy("admin:login")
        ),
        name="swagger-ui",
    ),
    re_path(r"^.*$", api_not_found),
]

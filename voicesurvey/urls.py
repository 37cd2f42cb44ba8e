from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from voicesurvey.accounts.views import time_zone_view
from voicesurvey.health import healthz

# The product's own name, where Django would say "Django administration".
admin.site.site_header = "voicesurvey"
admin.site.site_title = "voicesurvey"
admin.site.index_title = _("Back office")

urlpatterns = [
    path("admin/time-zone/", admin.site.admin_view(time_zone_view), name="operator_time_zone"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("webhooks/", include("calls.urls")),
    path("api/", include("voicesurvey.api")),
]

# Under /api/ these answer in the API's error shape; elsewhere Django's pages.
handler404 = "voicesurvey.api_errors.not_found"
handler500 = "voicesurvey.api_errors.server_error"

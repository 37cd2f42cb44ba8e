from django.urls import path

from calls.webhooks import views as webhooks

app_name = "webhooks"

# calls.telephony.base.call_urls builds the first two; calls.webhooks.survey.gather_url the third.
urlpatterns = [
    path("status/<str:call_id>/", webhooks.status_callback, name="status"),
    path("voice/<str:call_id>/", webhooks.voice, name="voice"),
    path("gather/<str:call_id>/<int:position>/", webhooks.gather, name="gather"),
]

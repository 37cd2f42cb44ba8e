from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "voicesurvey.accounts"
    label = "accounts"
    verbose_name = "API access"

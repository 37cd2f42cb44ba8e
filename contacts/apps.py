from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ContactsConfig(AppConfig):
    name = "contacts"

    def ready(self):
        from contacts.tallies import ensure_sqlite_triggers

        post_migrate.connect(ensure_sqlite_triggers, sender=self)

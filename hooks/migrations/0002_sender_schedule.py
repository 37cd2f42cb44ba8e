"""Register the webhook sweep as a django-q2 schedule (idempotent: keyed on its name), for
set-ups where a cluster runs; run_scheduler sends deliveries itself (hooks/sending.py)."""

from django.db import migrations

SCHEDULE_NAME = "webhook deliveries"
SCHEDULE_FUNC = "hooks.sending.run_sweep"


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    fields = {
        "func": SCHEDULE_FUNC,
        "schedule_type": "I",  # Schedule.MINUTES
        "minutes": 1,
        "repeats": -1,
        "cluster": None,  # any cluster may run it
    }
    schedule = Schedule.objects.filter(name=SCHEDULE_NAME).order_by("pk").first()
    if schedule is None:
        Schedule.objects.create(name=SCHEDULE_NAME, **fields)
    else:
        Schedule.objects.filter(pk=schedule.pk).update(**fields)
        Schedule.objects.filter(name=SCHEDULE_NAME).exclude(pk=schedule.pk).delete()


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("hooks", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]

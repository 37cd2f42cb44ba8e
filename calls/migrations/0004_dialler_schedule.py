"""Register the dialler tick as a django-q2 schedule (idempotent: keyed on its name)."""

from django.db import migrations

SCHEDULE_NAME = "dialler tick"
SCHEDULE_FUNC = "calls.schedules.run_dialler_for_a_minute"


def create_dialler_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    schedule = Schedule.objects.filter(name=SCHEDULE_NAME).order_by("pk").first()
    fields = {
        "func": SCHEDULE_FUNC,
        "schedule_type": "I",  # Schedule.MINUTES
        "minutes": 1,
        "repeats": -1,
        "cluster": None,  # any cluster may run it
    }
    if schedule is None:
        Schedule.objects.create(name=SCHEDULE_NAME, **fields)
    else:
        Schedule.objects.filter(pk=schedule.pk).update(**fields)
        Schedule.objects.filter(name=SCHEDULE_NAME).exclude(pk=schedule.pk).delete()


def remove_dialler_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0003_attempt_dashboard_covering_idx"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_dialler_schedule, remove_dialler_schedule)]

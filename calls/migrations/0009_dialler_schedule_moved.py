"""The dialler's django-q2 task moved with the tick into calls.dialler (issue 13): point the
schedule registered by 0004 at its new dotted path, so a running qcluster keeps ticking."""

from django.db import migrations

SCHEDULE_NAME = "dialler tick"
OLD_FUNC = "calls.schedules.run_dialler_for_a_minute"
NEW_FUNC = "calls.dialler.qcluster.run_dialler_for_a_minute"


def point_at(func):
    def update(apps, schema_editor):
        Schedule = apps.get_model("django_q", "Schedule")
        Schedule.objects.filter(name=SCHEDULE_NAME).update(func=func)

    return update


class Migration(migrations.Migration):
    dependencies = [("calls", "0008_shared_dial_pace")]

    operations = [migrations.RunPython(point_at(NEW_FUNC), point_at(OLD_FUNC))]

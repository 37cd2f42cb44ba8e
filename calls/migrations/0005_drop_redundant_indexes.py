import django.db.models.deletion
from django.db import migrations, models


def drop_pattern_indexes(apps, schema_editor):
    """PostgreSQL only: Django gives each unique CharField a second, `varchar_pattern_ops`
    index for LIKE 'prefix%' lookups. Nothing looks attempts up by a prefix of their call id
    or SID (the admin's search is a contains, which these indexes do not serve), so they only
    cost writes."""
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("calls", "CallAttempt")
    for column in ("call_id", "provider_call_sid"):
        name = schema_editor._create_index_name(model._meta.db_table, [column], suffix="_like")
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):

    dependencies = [
        ('calls', '0004_dialler_schedule'),
        ('campaigns', '0001_initial'),
        ('contacts', '0003_drop_redundant_indexes'),
    ]

    operations = [
        migrations.AlterField(
            model_name='callattempt',
            name='campaign',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='attempts', to='campaigns.campaign'),
        ),
        migrations.AlterField(
            model_name='callattempt',
            name='contact',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='attempts', to='contacts.contact'),
        ),
        migrations.AlterField(
            model_name='callattempt',
            name='scheduled_call',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='attempts', to='calls.scheduledcall'),
        ),
        migrations.AddIndex(
            model_name='callattempt',
            index=models.Index(condition=models.Q(('scheduled_call__isnull', False)), fields=['scheduled_call'], name='attempt_scheduled_call_idx'),
        ),
        migrations.RunPython(drop_pattern_indexes, migrations.RunPython.noop),
    ]

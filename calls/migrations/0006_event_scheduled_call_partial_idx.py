
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('calls', '0005_drop_redundant_indexes'),
    ]

    operations = [
        migrations.AlterField(
            model_name='callevent',
            name='scheduled_call',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='events', to='calls.scheduledcall'),
        ),
        migrations.AddIndex(
            model_name='callevent',
            index=models.Index(condition=models.Q(('scheduled_call__isnull', False)), fields=['scheduled_call'], name='event_scheduled_call_idx'),
        ),
    ]


from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('contacts', '0003_drop_redundant_indexes'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='contact',
            name='contact_dialable_idx',
        ),
    ]

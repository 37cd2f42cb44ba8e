import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0001_initial'),
        ('contacts', '0002_contact_claim_idx'),
    ]

    operations = [
        migrations.AlterField(
            model_name='contact',
            name='campaign',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='contacts', to='campaigns.campaign'),
        ),
    ]

"""The Bot model now belongs to agents (agents 0003); only the model state leaves, the table stays."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("bots", "0002_llmusage"),
        ("agents", "0003_bot"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="Bot")]),
    ]

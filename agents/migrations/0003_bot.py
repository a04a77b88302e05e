"""The Bot model moves from the bots app to agents; its table `bots_bot` and its rows stay where they are."""

import django.utils.timezone
from django.db import migrations, models


def content_type_follow(apps, schema_editor):
    """The admin's permissions and history of bots follow the model to its new app."""
    _content_type_move(apps, schema_editor, source="bots", target="agents")


def content_type_return(apps, schema_editor):
    _content_type_move(apps, schema_editor, source="agents", target="bots")


def _content_type_move(apps, schema_editor, *, source: str, target: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    content_types = content_type.objects.using(schema_editor.connection.alias)
    if not content_types.filter(app_label=target, model="bot").exists():
        content_types.filter(app_label=source, model="bot").update(app_label=target)


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0002_agent_runtime"),
        ("bots", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Bot",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "channel",
                            models.CharField(
                                choices=[("csgclaw", "Csgclaw"), ("feishu", "Feishu")], max_length=16
                            ),
                        ),
                        ("bot_id", models.CharField(max_length=128, verbose_name="id")),
                        ("name", models.CharField(max_length=255)),
                        ("description", models.TextField(blank=True, default="")),
                        ("role", models.CharField(max_length=16)),
                        ("agent_id", models.CharField(blank=True, default="", max_length=128)),
                        ("user_id", models.CharField(blank=True, default="", max_length=128)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        "db_table": "bots_bot",
                        "ordering": ["created_at", "bot_id", "channel"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("channel", "bot_id"), name="bots_bot_channel_id_unique"
                            )
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(content_type_follow, content_type_return),
    ]

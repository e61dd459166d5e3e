from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_login_failure_by_address"),
    ]

    operations = [
        migrations.AddField(
            model_name="classroom",
            name="test_answers",
            field=models.CharField(
                choices=[
                    ("after_hand_in", "As soon as the test is handed in"),
                    ("after_deadline", "After the quiz's deadline (as soon as it is handed in if the quiz has none)"),
                    ("never", "Never"),
                ],
                default="after_deadline",
                help_text="When students see a test's right answers, explanations and key points.",
                max_length=20,
            ),
        ),
    ]

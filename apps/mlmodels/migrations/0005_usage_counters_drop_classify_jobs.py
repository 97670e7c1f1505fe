"""Usage counters on models, and the end of ``model.infer`` jobs.

Classifying one image no longer runs a job (warm inference, apps.inference): the
``model.infer`` jobs of earlier versions are deleted with their events, their stored
images (``image_key``, an upload of the job's owner) and their artifacts. Nothing of a
model depends on them.
"""

from django.db import migrations, models


def delete_classification_jobs(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    jobs = list(Job.objects.filter(kind="model.infer").values_list("pk", "params"))
    if not jobs:
        return
    from apps.core.storage import get_store

    store = get_store()
    for pk, params in jobs:
        image = (params or {}).get("image_key")
        try:
            if isinstance(image, str) and image.startswith("uploads/"):
                store.delete(image)
            store.delete_prefix(f"jobs/{pk}/")
            store.discard_prefix(f"_staging/jobs/{pk}/")
        except Exception:  # noqa: BLE001  an unreachable store leaves bytes, never the rows
            pass
    Job.objects.filter(pk__in=[pk for pk, _ in jobs]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0001_initial"),
        ("mlmodels", "0004_run_custom_code"),
    ]

    operations = [
        migrations.AddField(
            model_name="trainedmodel",
            name="last_used_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="trainedmodel",
            name="request_count",
            field=models.PositiveBigIntegerField(
                default=0, help_text="Single images classified with it (warm inference, no job)."
            ),
        ),
        migrations.RunPython(delete_classification_jobs, migrations.RunPython.noop),
    ]

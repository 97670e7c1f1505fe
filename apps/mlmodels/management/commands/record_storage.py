"""Record the snapshots and uploads stored before the storage ledger existed (ADR 0020).

Run once after upgrading to the release that counts them; running it again records only
what is still missing. Snapshots count for their model's owner and team, uploads for the
user their key names (those of deleted users are left to the sweeper).
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apps.core import uploads
from apps.core.storage import get_store
from apps.mlmodels import snapshots
from apps.mlmodels.models import TrainedModel
from apps.usage import accounting


class Command(BaseCommand):
    help = "Record in the storage ledger the model snapshots and uploads stored before it existed."

    def handle(self, *args, **options):
        store = get_store()
        counts = {"snapshots": 0, "uploads": 0}
        for model in TrainedModel.objects.only("pk", "owner_id", "team_id").iterator():
            for key in store.list(snapshots.prefix(model.pk)):
                counts["snapshots"] += accounting.record_existing(
                    key, store.size(key), owner_id=model.owner_id, team_id=model.team_id
                )
        users = set(get_user_model().objects.values_list("pk", flat=True))
        for key in store.list(uploads.PREFIX):
            owner_id = uploads.owner_id_of(key)
            if owner_id in users:
                counts["uploads"] += accounting.record_existing(
                    key, store.size(key), owner_id=owner_id
                )
        self.stdout.write(
            f"Recorded {counts['snapshots']} snapshot(s) and {counts['uploads']} upload(s)."
        )

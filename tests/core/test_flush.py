"""The flush that ends a transactional test (``_flush_by_delete`` in the root conftest.py)
leaves what Django's leaves: every table empty, the content types and permissions as the
migrations and ``post_migrate`` wrote them (kept, with their ids), so that no test sees
another's rows. (A flush that resets the sequences is Django's own: not tried here, where it
would give the next tests the ids of earlier tests' objects, whose files the store keeps.)"""

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection

from apps.accounts.models import ApiToken, Membership, Team
from apps.jobs.models import Job

KEPT = {"django_content_type", "auth_permission"}


def rows_by_table() -> dict[str, int]:
    tables = connection.introspection.django_table_names(only_existing=True)
    with connection.cursor() as cursor:
        counts = {}
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


def types_and_permissions() -> tuple[set, set]:
    return (
        set(ContentType.objects.values_list("pk", "app_label", "model")),
        set(Permission.objects.values_list("pk", "codename", "content_type")),
    )


def test_a_flush_empties_every_table_and_keeps_types_and_permissions(
    transactional_db, django_user_model
):
    before = types_and_permissions()
    assert Permission.objects.filter(codename="run_custom_code").exists()
    user = django_user_model.objects.create_user("flo", password="pw")
    team = Team.objects.create(name="Flush", slug="flush")
    Membership.objects.create(team=team, user=user, role="admin")  # refers to both
    Job.objects.create(owner=user, name="j", kind="worker.check", team=team)
    ApiToken.issue(user, "t")
    group = Group.objects.create(name="editors")
    group.permissions.add(Permission.objects.get(codename="run_custom_code"))
    user.user_permissions.add(Permission.objects.get(codename="run_custom_code"))

    # As TransactionTestCase flushes (the command alone resets the sequences).
    call_command("flush", verbosity=0, interactive=False, reset_sequences=False)

    assert {table: n for table, n in rows_by_table().items() if n and table not in KEPT} == {}
    assert types_and_permissions() == before

"""The jobs page: every visible job, newest first, by status and kind, live on page one."""

import re

from apps.jobs import views
from apps.jobs.models import Job


def rows(client, **query) -> tuple[list[str], str]:
    page = client.get("/jobs/", query).content.decode()
    table = page.split('id="job-list"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<a href="/jobs/\d+/">([^<]+)</a>', table), page


def test_the_job_list_pages_and_filters_what_the_user_may_see(client, people, monkeypatch):
    def make(owner, name, **fields):
        return Job.objects.create(owner=owner, name=name, **{"kind": "worker.check", **fields})

    make(people.owner, "first", status="done")
    make(people.owner, "second", status="error")
    make(people.owner, "third", status="queued", kind="model.train")
    make(people.other, "theirs", status="done")
    client.force_login(people.owner)

    names, page = rows(client)
    assert names == ["third", "second", "first"]
    assert 'data-prepend="true"' in page  # new jobs appear here, live
    names, page = rows(client, status="error")
    assert names == ["second"] and 'data-prepend="false"' in page
    assert rows(client, kind="model.train")[0] == ["third"]
    assert "No jobs match." in rows(client, status="aborted")[1]
    monkeypatch.setattr(views, "LIST_PAGE", 2)
    names, page = rows(client, page=2)
    assert names == ["first"] and 'data-prepend="false"' in page and "Page 2 of 2" in page

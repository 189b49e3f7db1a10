"""HEAD answers wherever GET does (RFC 9110), with the GET's status and headers and no body, and
has no effect a GET would have beyond reading: a HEAD on a download is not a download."""

from __future__ import annotations

from tests.archive import export_and_download


async def test_head_answers_like_get_without_a_body(client):
    for path in ("/", "/login", "/healthz", "/static/app.css"):
        get, head = await client.get(path), await client.http.request("HEAD", path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"", path
        assert head.headers.get("content-type") == get.headers.get("content-type"), path
    assert (await client.http.request("HEAD", "/no-such-page")).status_code == 404


async def test_head_on_a_download_is_not_audited_and_sends_nothing(client_for, make_org, su):
    org = await make_org()
    c = await client_for(org.owner)
    job_id, data, _ = await export_and_download(c, org)
    downloads = "SELECT count(*) FROM audit_event WHERE org_id = $1 AND action = 'export.downloaded'"
    assert await su.fetchval(downloads, org.id) == 1
    head = await c.http.request("HEAD", f"/orgs/{org.slug}/exports/{job_id}/download")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "application/zip" and int(head.headers["content-length"]) == len(data)
    assert await su.fetchval(downloads, org.id) == 1  # still the one real download

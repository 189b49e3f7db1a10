async def test_dashboard_for_owner(make_org, client_for):
    org = await make_org()
    c = await client_for(org.owner)
    r = await c.get(f"/orgs/{org.slug}")
    assert r.status_code == 200, r.text
    assert org.name in r.text

"""SECURITY 42: schemathesis (a property-based API tester no one here wrote) against the live
server's ``/api/v1/openapi.json`` with org A's token while org B (with its own token) holds canary
strings: no 500, every response conforms to its documented status code, content type and schema,
and no response contains org B's canary (a check of ours, ``schemathesis_hooks.py``)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from portal.tenancy.permissions import GRANTABLE
from tests.factories import add_api_token, add_role, seed
from tests.servers import portal_server

HERE = Path(__file__).resolve().parent
EXAMPLES = os.environ.get("SCHEMATHESIS_EXAMPLES", "30")


@pytest.fixture(scope="module")
def live(database):
    with portal_server(database, "schemathesis.log", API_RATE="1000000") as url:  # the fuzzer, not the rate limit
        yield url


async def _schemathesis(live: str, slug: str, token: str, canary: str, tmp_path: Path, *extra: str) -> tuple[int, str]:
    config = tmp_path / "schemathesis.toml"
    # A schema-valid body may still be refused by a rule no schema can state (an address that
    # can't receive mail, a seat limit below the members already there): 422, not a failure.
    config.write_text(
        f'[parameters]\n"path.slug" = "{slug}"\n\n'
        '[checks.positive_data_acceptance]\nexpected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]\n'
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{live}/api/v1/openapi.json",
        "--url", live, "--header", f"Authorization: Bearer {token}", "--checks", "all", "--seed", "1", "--no-color", *extra,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks", "PORTAL_CANARY": canary,
             "PYTHONPATH": str(HERE.parents[1])},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 600)
    return proc.returncode, out.decode(errors="replace")


async def test_schemathesis_finds_nothing(live, make_world, make_member, su, tmp_path, app):
    """Org A's token holds a custom role with every grantable permission, so every operation is
    reachable; org B carries its canary in every free-text field of every kind of thing."""
    mine, theirs = await make_world(), await make_world()
    canary = f"CANARY-{theirs.org.slug}"
    await seed(su, make_member, theirs.org, canary)
    await su.execute("UPDATE agent SET description = $2 WHERE org_id = $1", theirs.org.id, canary)
    await su.execute("INSERT INTO agent (org_id, name, model) VALUES ($1, $2, 'gpt-4.1')", theirs.org.id, canary)
    everything = await add_role(su, mine.org.id, "Automation", GRANTABLE)
    _, token = await add_api_token(su, mine.org, "custom", custom_role_id=everything)
    await add_api_token(su, theirs.org, "member")
    code, report = await _schemathesis(live, mine.org.slug, token, canary, tmp_path, "--max-examples", EXAMPLES)
    assert code == 0, report[-6000:]
    operations = sum(len(ops) for ops in app.openapi_schema.to_schema()["paths"].values())
    assert "Stateful" in report and f"{operations} selected" in report, report[-3000:]


async def test_schemathesis_finds_nothing_with_an_agent_s_token(live, make_world, su, tmp_path):
    """The agent's own operations, with its token, while another agent of the same org and org B
    carry the canary: an agent sees nothing of either."""
    mine, theirs = await make_world(), await make_world()
    canary = f"CANARY-{theirs.org.slug}"
    await su.execute("UPDATE agent SET description = $2 WHERE org_id = $1 AND id <> $3", mine.org.id, canary, mine.agent_used)
    await su.execute("UPDATE agent SET description = $2 WHERE org_id = $1", theirs.org.id, canary)
    await su.execute("UPDATE connection SET name = $2 WHERE org_id = $1", mine.org.id, canary)  # named by no workflow of its
    _, token = await add_api_token(su, mine.org, agent_id=mine.agent_used)
    code, report = await _schemathesis(
        live, mine.org.slug, token, canary, tmp_path, "--max-examples", EXAMPLES, "--include-path-regex", "/agent(/|$)"
    )
    assert code == 0, report[-6000:]
    assert "4 selected" in report, report[-3000:]


async def test_the_canary_check_is_live(live, make_world, su, tmp_path):
    """The canary check finds a planted leak: a canary that org A's own agents carry."""
    w = await make_world()
    planted = f"PLANTED-{w.org.slug}"
    await su.execute("UPDATE agent SET description = $2 WHERE org_id = $1", w.org.id, planted)
    _, token = await add_api_token(su, w.org, "member")
    code, report = await _schemathesis(live, w.org.slug, token, planted, tmp_path, "--max-examples", "5", "--phases", "fuzzing")
    assert code != 0 and "another organization's data in the response" in report, report[-3000:]

import asyncio

import pytest

from tests.factories import create_workspace, signup
from tests.runs_helpers import RunningWorker, make_prompt, parse_sse


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"mock_ttft_ms": 5, "mock_token_ms": 2})


async def test_run_streams_and_completes(client, app):
    owner = await signup(client)
    ws = await create_workspace(owner)
    prompt = await make_prompt(client, ws)
    async with RunningWorker(app):
        r = await client.post(
            f"/workspaces/{ws}/runs", json={"prompt_id": prompt["id"], "variables": {"words": "a b c"}}
        )
        assert r.status_code == 202, r.text
        run_id = r.json()["id"]
        events = await client.get(r.json()["events_url"].removeprefix("/api/v1"))
        parsed = parse_sse(events.text)
        names = [e["event"] for e in parsed]
        assert names[0] == "run.queued" and names[-1] == "run.completed", names
        text = "".join(e["data"]["text"] for e in parsed if e["event"] == "run.delta")
        final = (await client.get(f"/workspaces/{ws}/runs/{run_id}")).json()
        assert final["status"] == "succeeded"
        assert text == final["output"] == "Say a b c "
        assert final["usage"] == {"input_tokens": 4, "output_tokens": 4, "estimated": False}
        assert final["cost_usd"] == "0.000072"
        await asyncio.sleep(0)

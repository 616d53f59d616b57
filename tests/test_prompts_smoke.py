from tests.factories import create_workspace, signup

VERSION = {
    "system": "You are {{persona}}.",
    "messages": [{"role": "user", "content": "Summarize: {{text}}"}],
    "model_config": {
        "provider": "mock",
        "model": "mock-1",
        "max_tokens": 256,
        "temperature": 0.7,
        "top_p": None,
        "stop_sequences": [],
    },
    "message": "first draft",
}


async def test_prompt_version_flow(client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    p = (await client.post(f"/workspaces/{ws}/prompts", json={"name": "summarizer"})).json()
    r = await client.post(f"/workspaces/{ws}/prompts/{p['id']}/versions", json=VERSION)
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["number"] == 1 and v["variables"] == ["persona", "text"]
    again = await client.post(f"/workspaces/{ws}/prompts/{p['id']}/versions", json=VERSION)
    assert again.status_code == 200 and again.json()["id"] == v["id"]
    r2 = await client.post(f"/workspaces/{ws}/prompts/{p['id']}/versions", json={**VERSION, "system": "Be {{persona}}"})
    assert r2.json()["number"] == 2
    d = await client.get(f"/workspaces/{ws}/prompts/{p['id']}/versions/1/diff/2")
    assert d.status_code == 200 and d.json()["system"]["changed"]
    assert (
        await client.put(f"/workspaces/{ws}/prompts/{p['id']}/labels/production", json={"version": 1})
    ).status_code == 200
    b = await client.get(f"/workspaces/{ws}/prompts/by-name/summarizer", params={"label": "production"})
    assert b.status_code == 200 and b.json()["number"] == 1, b.text
    nm = await client.get(
        f"/workspaces/{ws}/prompts/by-name/summarizer",
        params={"label": "production"},
        headers={"If-None-Match": b.headers["etag"]},
    )
    assert nm.status_code == 304
    assert (await client.put(f"/workspaces/{ws}/prompts/{p['id']}/versions/1", json={})).status_code == 405
    c = await client.post(f"/workspaces/{ws}/prompts/{p['id']}/versions/1/comments", json={"body": "nice"})
    assert c.status_code == 201, c.text
    e = await client.get(f"/workspaces/{ws}/prompts/{p['id']}/export")
    assert e.status_code == 200, e.text
    doc = e.json()
    doc["prompt"]["name"] = "copy"
    i = await client.post(f"/workspaces/{ws}/prompts/import", json=doc)
    assert i.status_code == 201, i.text
    assert (await client.delete(f"/workspaces/{ws}/prompts/{p['id']}")).status_code == 204

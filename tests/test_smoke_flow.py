from tests.factories import create_api_key, create_workspace, signup


async def test_signup_workspace_key_flow(client, make_client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    me = (await client.get("/me")).json()
    assert me["workspaces"] == [{"id": ws, "name": "Acme", "slug": me["workspaces"][0]["slug"], "role": "owner"}]
    key = await create_api_key(owner, ws)
    bearer = make_client()
    r = await bearer.get(f"/workspaces/{ws}", headers={"Authorization": f"Bearer {key['key']}"})
    assert r.status_code == 200, r.text

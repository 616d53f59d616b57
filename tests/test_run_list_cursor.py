"""The run list's cursor at scale: runs sharing one created_at (one transaction's now()) page without loss or
repetition, and a page after the cursor reads from the cursor onward (see docs/decisions/storage-at-scale.md)."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.factories import create_workspace, signup
from tests.runs_helpers import make_prompt


async def test_runs_with_the_same_created_at_page_in_id_order_without_loss_or_repeat(client, db_engine):
    owner = await signup(client)
    ws = await create_workspace(owner)
    prompt = await make_prompt(client, ws)
    ids = []
    for _ in range(7):
        response = await client.post(
            f"/workspaces/{ws}/runs", json={"prompt_id": prompt["id"], "variables": {"words": "x"}}
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    # Five of them share one instant, as runs created in one transaction would; two are older and newer.
    async with db_engine.begin() as conn:
        await conn.execute(
            text("UPDATE run SET created_at = '2026-01-02T03:04:05+00' WHERE id = ANY(:ids)"),
            {"ids": [uuid.UUID(i) for i in ids[1:6]]},
        )
        await conn.execute(text("UPDATE run SET created_at = '2026-01-01T00:00:00+00' WHERE id = :id"), {"id": ids[0]})
        await conn.execute(text("UPDATE run SET created_at = '2026-01-03T00:00:00+00' WHERE id = :id"), {"id": ids[6]})
    tied = sorted(ids[1:6], key=uuid.UUID, reverse=True)
    expected = [ids[6], *tied, ids[0]]

    for limit in (1, 2, 3, 4):
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            response = await client.get(f"/workspaces/{ws}/runs", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["items"]) <= limit
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected, limit

"""Password reset by email against a real SMTP server on loopback (aiosmtpd) that the tests start: the
forgot-password answer never tells whether an account exists, the email carries a one-time link that
completes the reset through the API, and nothing is sent (nor logged) that should not be."""

from __future__ import annotations

import asyncio
import email
import logging
import re
import time
from collections.abc import Iterator
from email.message import Message
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller

from tests.factories import PASSWORD, assert_problem, signup
from tests.processes import free_port

PUBLIC_URL = "https://playground.example.org"
NEW_PASSWORD = "a brand new passphrase"


class Inbox:
    """What the SMTP server received: every message, with the envelope's recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd calls it by this name
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"

    async def wait_for(self, count: int, seconds: float = 10.0) -> list[tuple[list[str], Message]]:
        deadline = time.monotonic() + seconds
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} emails arrived, expected {count}"
            await asyncio.sleep(0.05)
        return self.messages


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[Controller]:
    controller = Controller(Inbox(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def inbox(smtp_server) -> Inbox:
    smtp_server.handler.messages.clear()
    return smtp_server.handler


@pytest.fixture
def settings(settings, smtp_server):
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_server.port,
            "smtp_from": "Prompt Playground <noreply@playground.example.org>",
            "smtp_starttls": False,  # the loopback test server speaks plain SMTP
            "public_url": PUBLIC_URL,
        }
    )


def link_in(message: Message) -> str:
    body = message.get_payload(decode=True).decode()
    [link] = re.findall(r"https?://\S+", body)
    return link


async def test_a_forgotten_password_is_reset_through_the_emailed_link(client, make_client, inbox):
    me = await signup(client, email="grace@example.com")
    anonymous = make_client()
    asked = await anonymous.post("/auth/forgot-password", json={"email": "Grace@Example.com"})
    assert asked.status_code == 202 and asked.json() == {"delivery": "email"}

    [(recipients, message)] = await inbox.wait_for(1)
    assert recipients == ["grace@example.com"] and message["To"] == "grace@example.com"
    assert message["From"] == "Prompt Playground <noreply@playground.example.org>"
    assert "Reset your Prompt Playground password" in message["Subject"]
    link = urlsplit(link_in(message))
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"{PUBLIC_URL}/reset-password"
    token = parse_qs(link.query)["token"][0]

    reset = await anonymous.post("/auth/password-reset", json={"token": token, "new_password": NEW_PASSWORD})
    assert reset.status_code == 204
    assert_problem(await client.get("/me"), 401)  # every session signed out
    login = await make_client().post("/auth/login", json={"email": me.email, "password": NEW_PASSWORD})
    assert login.status_code == 200
    old = await make_client().post("/auth/login", json={"email": me.email, "password": PASSWORD})
    assert_problem(old, 401)
    again = await anonymous.post("/auth/password-reset", json={"token": token, "new_password": "yet another one"})
    assert_problem(again, 400, "reset-token-invalid")  # the link works once


async def test_the_answer_is_the_same_for_unknown_addresses_and_nothing_is_sent(client, make_client, inbox):
    await signup(client, email="known@example.com")
    anonymous = make_client()
    unknown = await anonymous.post("/auth/forgot-password", json={"email": "nobody@example.com"})
    known = await anonymous.post("/auth/forgot-password", json={"email": "known@example.com"})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json() == {"delivery": "email"}
    [(recipients, _)] = await inbox.wait_for(1)
    await asyncio.sleep(0.3)  # had the unknown one sent anything, it would have arrived by now too
    assert recipients == ["known@example.com"] and len(inbox.messages) == 1
    assert_problem(await anonymous.post("/auth/forgot-password", json={"email": "not an email"}), 422)


async def test_a_disabled_account_gets_no_link(client, make_client, inbox):
    admin = await signup(client)
    user = await signup(make_client(), email="off@example.com")
    assert (await admin.client.patch(f"/admin/users/{user.id}", json={"disabled": True})).status_code == 200
    assert (await make_client().post("/auth/forgot-password", json={"email": user.email})).status_code == 202
    await asyncio.sleep(0.5)
    assert inbox.messages == []


async def test_one_account_gets_at_most_three_links_an_hour(client, make_client, inbox):
    await signup(client, email="flooded@example.com")
    for _ in range(5):
        answer = await make_client().post("/auth/forgot-password", json={"email": "flooded@example.com"})
        assert answer.status_code == 202  # quietly: a 429 here would tell that the account exists
    await inbox.wait_for(3)
    await asyncio.sleep(0.3)
    assert len(inbox.messages) == 3


async def test_a_mail_server_that_is_down_neither_holds_the_answer_nor_logs_the_link(client, make_client, app, caplog):
    await signup(client, email="down@example.com")
    app.state.settings = app.state.settings.model_copy(update={"smtp_port": free_port()})  # nobody listens
    caplog.set_level(logging.INFO)
    started = time.monotonic()
    answer = await make_client().post("/auth/forgot-password", json={"email": "down@example.com"})
    assert answer.status_code == 202 and time.monotonic() - started < 2
    deadline = time.monotonic() + 10
    while "password reset email could not be sent" not in caplog.text:
        assert time.monotonic() < deadline, "the failed delivery was not logged"
        await asyncio.sleep(0.05)
    assert "token" not in caplog.text and "reset-password" not in caplog.text


async def test_without_smtp_the_answer_points_to_an_admin_and_the_admin_path_stays(client, make_client, app, inbox):
    admin = await signup(client)
    user = await signup(make_client(), email="lin@example.com")
    app.state.settings = app.state.settings.model_copy(update={"smtp_host": None})
    answer = await make_client().post("/auth/forgot-password", json={"email": user.email})
    assert answer.status_code == 202 and answer.json() == {"delivery": "admin"}
    token = (await admin.client.post(f"/admin/users/{user.id}/password-reset")).json()["token"]
    reset = await make_client().post("/auth/password-reset", json={"token": token, "new_password": NEW_PASSWORD})
    assert reset.status_code == 204
    await asyncio.sleep(0.3)
    assert inbox.messages == []

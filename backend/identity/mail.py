"""Password reset links by email, when SMTP is configured: sent off the request (a slow or absent mail
server never holds an answer up, nor tells anyone whether an address has an account)."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage

from backend.core.settings import Settings

logger = logging.getLogger(__name__)

# Deliveries under way: a task nobody references may be collected before it finishes.
_sending: set[asyncio.Task[None]] = set()


def smtp_configured(settings: Settings) -> bool:
    return bool(settings.smtp_host and settings.smtp_from)


def reset_message(settings: Settings, to: str, name: str, link: str, hours: int) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "Reset your Prompt Playground password"
    message["From"] = settings.smtp_from
    message["To"] = to
    message.set_content(
        f"Hello {name},\n\n"
        "Someone (hopefully you) asked to reset the password of your Prompt Playground account.\n"
        f"Choose a new password here; the link works once, within {hours} hours:\n\n{link}\n\n"
        "If you did not ask for this, ignore this email: your password stays as it is.\n"
    )
    return message


def _send(settings: Settings, message: EmailMessage) -> None:
    assert settings.smtp_host is not None
    context = ssl.create_default_context()
    if settings.smtp_port == 465:  # implicit TLS (SMTPS)
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=20, context=context)
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=20)
    with smtp:
        if settings.smtp_port != 465 and settings.smtp_starttls:
            smtp.starttls(context=context)
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password or "")
        smtp.send_message(message)


async def _deliver(settings: Settings, message: EmailMessage) -> None:
    try:
        await asyncio.to_thread(_send, settings, message)
    except Exception as exc:  # the link's token must never reach a log: the type of failure only
        logger.warning("password reset email could not be sent (%s)", type(exc).__name__)


def send_in_background(settings: Settings, message: EmailMessage) -> None:
    task = asyncio.create_task(_deliver(settings, message), name="password-reset-email")
    _sending.add(task)
    task.add_done_callback(_sending.discard)

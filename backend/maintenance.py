"""Periodic housekeeping run by workers (and by `up`): jobs that must happen even when nobody asks."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.crypto.service import Keyring
from backend.lifecycle import exports
from backend.lifecycle import service as lifecycle
from backend.workspaces import service as workspaces

logger = logging.getLogger(__name__)


async def run_once(sessionmaker: async_sessionmaker[AsyncSession], keyring: Keyring | None = None) -> dict[str, int]:
    purged = 0
    while batch := await workspaces.purge_deleted_workspaces(sessionmaker):
        purged += batch
    expired = 0
    while batch := await lifecycle.expire_run_contents(sessionmaker):
        expired += batch
        await asyncio.sleep(0)  # short transactions, one after another: the product keeps its turn
    done = {"workspaces_purged": purged, "run_contents_expired": expired}
    done["exports_removed"] = await exports.remove_expired(sessionmaker)
    if keyring is not None:  # exports whose generator died (its process stopped) are finished here
        done["exports_resumed"] = await exports.resume_stalled(sessionmaker, keyring)
    return done


async def maintenance_loop(
    sessionmaker: async_sessionmaker[AsyncSession], keyring: Keyring | None = None, *, interval: float = 60.0
) -> None:
    while True:
        try:
            done = await run_once(sessionmaker, keyring)
            if any(done.values()):
                logger.info("maintenance: %s", done)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("maintenance pass failed; retrying in %.0fs", interval)
        await asyncio.sleep(interval)

"""Routes of comparisons: create a grid of runs, list, read, stream, cancel, rerun a cell, diff, evaluate."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/workspaces/{ws}/comparisons", tags=["comparisons"])

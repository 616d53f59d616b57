"""Routes of prompts, versions, labels, diffs, comments, export and import."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response, status
from fastapi.responses import JSONResponse

from backend.core.database import DbSession
from backend.core.pagination import Page, decode_cursor, encode_cursor
from backend.prompts import schemas, service
from backend.prompts.errors import VersionImmutable
from backend.prompts.models import Prompt, PromptVersion, VersionComment
from backend.workspaces.dependencies import (
    AppKeyring,
    CurrentActor,
    WorkspaceAdmin,
    WorkspaceEditor,
    WorkspaceViewer,
)

router = APIRouter(prefix="/workspaces/{ws}/prompts", tags=["prompts"])
# Version numbers are PostgreSQL integers: a bigger one is a 422, not an overflow in the driver (a 500).
MAX_NUMBER = 2_147_483_647
VersionNumber = Annotated[int, Query(ge=1, le=MAX_NUMBER)]
PathNumber = Annotated[int, Path(ge=1, le=MAX_NUMBER)]


def _prompt_out(prompt: Prompt) -> schemas.PromptOut:
    return schemas.PromptOut(
        id=prompt.id,
        name=prompt.name,
        description=prompt.description,
        archived=prompt.archived,
        latest_version=prompt.version_count or None,
        created_by=prompt.created_by,
        updated_by=prompt.updated_by,
        created_at=prompt.created_at,
        updated_at=prompt.updated_at,
    )


def _summary(version: PromptVersion, parent: int | None) -> dict[str, Any]:
    return {
        "id": version.id,
        "prompt_id": version.prompt_id,
        "number": version.number,
        "content_hash": version.content_hash.hex(),
        "model_config": version.model_config,
        "variables": version.variables,
        "message": version.message,
        "parent_version": parent,
        "created_by": version.created_by,
        "created_at": version.created_at,
    }


async def version_out(session, keyring, version: PromptVersion) -> schemas.VersionOut:
    parents = await service.parent_numbers(session, [version])
    content = await service.version_content(session, keyring, version)
    return schemas.VersionOut(
        **_summary(version, parents.get(version.parent_id)),
        system=content["system"],
        messages=content["messages"],
        tools=content["tools"],
        tool_choice=content["tool_choice"],
        output_schema=content["output_schema"],
    )


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison: W/"x" matches "x", and * matches any current representation."""
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or etag in [tag.removeprefix("W/") for tag in tags]


def _etag(version: PromptVersion) -> str:
    # A version never changes, so its id and content hash identify every byte of the answer.
    return f'"{version.id.hex}-{version.content_hash.hex()[:16]}"'


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.PromptOut)
async def create_prompt(body: schemas.PromptIn, access: WorkspaceEditor, session: DbSession) -> schemas.PromptOut:
    """Create a prompt (editor+); names are unique per workspace."""
    return _prompt_out(await service.create_prompt(session, access, body.name, body.description))


@router.get("", response_model=Page[schemas.PromptOut])
async def list_prompts(
    access: WorkspaceViewer,
    session: DbSession,
    include_archived: bool = False,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[schemas.PromptOut]:
    """Prompts of the workspace, most recently changed first."""
    after = decode_cursor(cursor) if cursor else None
    prompts = await service.list_prompts(
        session, access, include_archived=include_archived, after=after, limit=limit + 1
    )
    next_cursor = encode_cursor(prompts[limit - 1].updated_at, prompts[limit - 1].id) if len(prompts) > limit else None
    return Page[schemas.PromptOut](items=[_prompt_out(p) for p in prompts[:limit]], next_cursor=next_cursor)


@router.post("/import", status_code=status.HTTP_201_CREATED, response_model=schemas.PromptOut)
async def import_prompt(
    body: schemas.PromptExport, access: WorkspaceEditor, actor: CurrentActor, session: DbSession, keyring: AppKeyring
) -> schemas.PromptOut:
    """Recreate a prompt from an export document (editor+): new ids, same content, order and labels."""
    return _prompt_out(await service.import_prompt(session, keyring, access, body, actor))


@router.get("/by-name/{name:path}", response_model=schemas.VersionOut)
async def get_by_name(
    name: str,
    access: WorkspaceViewer,
    session: DbSession,
    keyring: AppKeyring,
    label: Annotated[str | None, Query(pattern=schemas.LABEL_PATTERN)] = None,
    version: VersionNumber | None = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The version a label points at (or `?version=N`, or the latest), for applications; ETag / 304."""
    found = await service.resolve_by_name(session, access, schemas.nfc_name(name) or name, label=label, number=version)
    etag = _etag(found)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if if_none_match and _matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    out = await version_out(session, keyring, found)
    return JSONResponse(out.model_dump(mode="json", by_alias=True), headers=headers)


@router.get("/{prompt_id:uuid}", response_model=schemas.PromptOut)
async def get_prompt(prompt_id: uuid.UUID, access: WorkspaceViewer, session: DbSession) -> schemas.PromptOut:
    """One prompt's metadata."""
    return _prompt_out(await service.get_prompt(session, access, prompt_id))


@router.patch("/{prompt_id:uuid}", response_model=schemas.PromptOut)
async def update_prompt(
    prompt_id: uuid.UUID, body: schemas.PromptPatch, access: WorkspaceEditor, session: DbSession
) -> schemas.PromptOut:
    """Rename, describe, archive or unarchive a prompt (editor+)."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    return _prompt_out(await service.update_prompt(session, access, prompt_id, changes))


@router.delete("/{prompt_id:uuid}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_prompt(
    prompt_id: uuid.UUID, access: WorkspaceAdmin, actor: CurrentActor, session: DbSession
) -> Response:
    """Delete a prompt with all its versions, labels, comments and runs (admin+); audited."""
    await service.delete_prompt(session, access, prompt_id, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{prompt_id:uuid}/export", response_model=schemas.PromptExport)
async def export_prompt(
    prompt_id: uuid.UUID, access: WorkspaceViewer, session: DbSession, keyring: AppKeyring
) -> schemas.PromptExport:
    """A portable JSON document with the prompt, all its versions and its labels."""
    return await service.export_prompt(session, keyring, access, prompt_id)


@router.post("/{prompt_id:uuid}/versions", response_model=schemas.VersionOut, status_code=status.HTTP_201_CREATED)
async def create_version(
    prompt_id: uuid.UUID,
    body: schemas.VersionIn,
    response: Response,
    access: WorkspaceEditor,
    session: DbSession,
    keyring: AppKeyring,
) -> schemas.VersionOut:
    """Save a new version (editor+): 201; content identical to an existing version returns that one (200)."""
    prompt = await service.get_prompt(session, access, prompt_id)
    version, created = await service.save_version(session, keyring, access, prompt, body, body.message)
    if not created:
        response.status_code = status.HTTP_200_OK
    return await version_out(session, keyring, version)


@router.get("/{prompt_id:uuid}/versions", response_model=list[schemas.VersionSummary])
async def list_versions(
    prompt_id: uuid.UUID, access: WorkspaceViewer, session: DbSession
) -> list[schemas.VersionSummary]:
    """Versions of a prompt, newest first, without their contents."""
    versions = await service.list_versions(session, access, prompt_id)
    parents = await service.parent_numbers(session, versions)
    return [schemas.VersionSummary(**_summary(v, parents.get(v.parent_id))) for v in versions]


@router.get("/{prompt_id:uuid}/versions/{number}", response_model=schemas.VersionOut)
async def get_version(
    prompt_id: uuid.UUID, number: PathNumber, access: WorkspaceViewer, session: DbSession, keyring: AppKeyring
) -> schemas.VersionOut:
    """One version with its contents."""
    return await version_out(session, keyring, await service.get_version(session, access, prompt_id, number))


@router.put("/{prompt_id:uuid}/versions/{number}", status_code=405, response_model=None)
@router.patch("/{prompt_id:uuid}/versions/{number}", status_code=405, response_model=None)
@router.delete("/{prompt_id:uuid}/versions/{number}", status_code=405, response_model=None)
async def modify_version(prompt_id: uuid.UUID, number: PathNumber, access: WorkspaceEditor) -> None:
    """Versions are immutable: always 405. Save a new version instead."""
    raise VersionImmutable(
        f"Version {number} cannot be changed or deleted; save a new version instead",
        headers={"Allow": "GET"},
    )


@router.get("/{prompt_id:uuid}/versions/{a}/diff/{b}")
async def diff_versions(
    prompt_id: uuid.UUID, a: PathNumber, b: PathNumber, access: WorkspaceViewer, session: DbSession, keyring: AppKeyring
) -> dict[str, Any]:
    """Per-field differences between two versions, with unified text diffs."""
    return await service.diff(session, keyring, access, prompt_id, a, b)


# Labels


@router.put("/{prompt_id:uuid}/labels/{label}", response_model=schemas.LabelOut)
async def move_label(
    prompt_id: uuid.UUID,
    label: str,
    body: schemas.LabelIn,
    access: WorkspaceEditor,
    actor: CurrentActor,
    session: DbSession,
) -> schemas.LabelOut:
    """Point a label (`production`, `staging`, any [a-z0-9-]{1,40}) at a version (editor+); audited."""
    await service.move_label(session, access, prompt_id, label, body.version, actor)
    return next(out for out in await _labels(session, access, prompt_id) if out.name == label)


async def _labels(session, access, prompt_id: uuid.UUID) -> list[schemas.LabelOut]:
    return [
        schemas.LabelOut(
            name=label.name,
            version=number,
            updated_by=label.updated_by,
            updated_at=label.updated_at,
            history=[
                schemas.LabelMoveOut(
                    from_version=m.from_number, to_version=m.to_number, moved_by=m.moved_by, moved_at=m.moved_at
                )
                for m in history
            ],
        )
        for label, number, history in await service.labels(session, access, prompt_id)
    ]


@router.get("/{prompt_id:uuid}/labels", response_model=list[schemas.LabelOut])
async def list_labels(prompt_id: uuid.UUID, access: WorkspaceViewer, session: DbSession) -> list[schemas.LabelOut]:
    """Labels of a prompt with the history of their moves."""
    return await _labels(session, access, prompt_id)


# Comments


async def comment_out(session, keyring, comment: VersionComment, number: int) -> schemas.CommentOut:
    return schemas.CommentOut(
        id=comment.id,
        version=number,
        author_id=comment.author_id,
        body=await keyring.open_text(session, comment, "body"),
        resolved=comment.resolved,
        resolved_by=comment.resolved_by,
        created_at=comment.created_at,
        edited_at=comment.edited_at,
    )


@router.post(
    "/{prompt_id:uuid}/versions/{number}/comments",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.CommentOut,
)
async def add_comment(
    prompt_id: uuid.UUID,
    number: PathNumber,
    body: schemas.CommentIn,
    access: WorkspaceViewer,
    session: DbSession,
    keyring: AppKeyring,
) -> schemas.CommentOut:
    """Comment on a version (any member, viewers included)."""
    comment, number = await service.add_comment(session, keyring, access, prompt_id, number, body.body)
    return await comment_out(session, keyring, comment, number)


@router.get("/{prompt_id:uuid}/versions/{number}/comments", response_model=list[schemas.CommentOut])
async def list_comments(
    prompt_id: uuid.UUID, number: PathNumber, access: WorkspaceViewer, session: DbSession, keyring: AppKeyring
) -> list[schemas.CommentOut]:
    """Comments on a version, oldest first."""
    comments = await service.list_comments(session, access, prompt_id, number)
    return [await comment_out(session, keyring, c, number) for c in comments]


@router.patch("/{prompt_id:uuid}/versions/{number}/comments/{comment_id}", response_model=schemas.CommentOut)
async def edit_comment(
    prompt_id: uuid.UUID,
    number: PathNumber,
    comment_id: uuid.UUID,
    body: schemas.CommentPatch,
    access: WorkspaceViewer,
    session: DbSession,
    keyring: AppKeyring,
) -> schemas.CommentOut:
    """Edit your comment's body; resolve or reopen it (its author, or editor+)."""
    comment = await service.edit_comment(
        session, keyring, access, prompt_id, number, comment_id, body=body.body, resolved=body.resolved
    )
    return await comment_out(session, keyring, comment, number)


@router.delete("/{prompt_id:uuid}/versions/{number}/comments/{comment_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_comment(
    prompt_id: uuid.UUID, number: PathNumber, comment_id: uuid.UUID, access: WorkspaceViewer, session: DbSession
) -> Response:
    """Delete a comment (its author, or admin+)."""
    await service.delete_comment(session, access, prompt_id, number, comment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

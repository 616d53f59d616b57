"""Prompts and their immutable versions: saving (numbered, deduplicated), reading, rendering, labels,
diffs, comments, export and import. Other domains (runs) use `save_version`, `get_version_by_id`,
`version_content` and `render_version` from here."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.catalogue.service import config_problems, feature_problems
from backend.core.database import mark_sanctioned
from backend.core.errors import Conflict, Forbidden, Invalid, InvalidFields
from backend.crypto.service import Keyring
from backend.lifecycle import service as lifecycle
from backend.prompts import rendering
from backend.prompts import repository as repo
from backend.prompts.errors import PromptNameTaken, PromptNotFound, VersionNotFound
from backend.prompts.models import Prompt, PromptLabel, PromptLabelMove, PromptVersion, VersionComment
from backend.prompts.schemas import LABEL_PATTERN, PromptExport, VersionContent
from backend.workspaces.service import Actor, WorkspaceAccess, record_audit, require_at_least

_LABEL_RE = re.compile(LABEL_PATTERN.removeprefix("^").removesuffix("$"))




# Prompts


async def create_prompt(session: AsyncSession, access: WorkspaceAccess, name: str, description: str) -> Prompt:
    prompt = Prompt(
        workspace_id=access.workspace.id,
        name=name,
        description=description,
        created_by=access.principal.user.id,
        updated_by=access.principal.user.id,
    )
    try:
        async with session.begin_nested():
            session.add(prompt)
            await session.flush()
    except IntegrityError as exc:
        raise PromptNameTaken(f"A prompt named '{name}' already exists in this workspace") from exc
    return prompt


async def get_prompt(
    session: AsyncSession, access: WorkspaceAccess, prompt_id: uuid.UUID, *, for_update: bool = False
) -> Prompt:
    prompt = await repo.get_prompt(session, access.workspace.id, prompt_id, for_update=for_update)
    if prompt is None:
        raise PromptNotFound(f"Prompt {prompt_id} not found")
    return prompt


async def list_prompts(
    session: AsyncSession, access: WorkspaceAccess, *, include_archived: bool, after, limit: int
) -> list[Prompt]:
    return await repo.list_prompts(
        session, access.workspace.id, include_archived=include_archived, after=after, limit=limit
    )


async def update_prompt(
    session: AsyncSession, access: WorkspaceAccess, prompt_id: uuid.UUID, changes: dict[str, Any]
) -> Prompt:
    prompt = await get_prompt(session, access, prompt_id, for_update=True)
    for field, value in changes.items():
        setattr(prompt, field, value)
    prompt.updated_by = access.principal.user.id
    prompt.updated_at = func.now()
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise PromptNameTaken(f"A prompt named '{changes.get('name')}' already exists in this workspace") from exc
    await session.refresh(prompt)
    return prompt


async def delete_prompt(session: AsyncSession, access: WorkspaceAccess, prompt_id: uuid.UUID, actor: Actor) -> None:
    """The audited deletion path: the prompt with its versions, labels and comments (and, later, runs)."""
    require_at_least(access, "admin", "Deleting a prompt")
    prompt = await get_prompt(session, access, prompt_id, for_update=True)
    from backend.runs import service as runs  # runs build on prompts; imported here to keep that one-way

    unfinished = await runs.unfinished_runs(session, access.workspace.id, prompt.id)
    if unfinished:
        # Their reservations and tokens must be settled before their rows can go.
        raise Conflict(f"{unfinished} runs of this prompt are queued or running; cancel them first")
    await mark_sanctioned(session, "delete")
    await record_audit(
        session,
        workspace_id=access.workspace.id,
        actor=actor,
        action="prompt.deleted",
        target_type="prompt",
        target_id=prompt.id,
        before={"name": prompt.name, "versions": prompt.version_count},
    )
    await lifecycle.discard_archives(session, access.workspace.id)
    await repo.delete_prompt(session, prompt)
    await session.flush()


# Versions


def _config_dict(content: VersionContent) -> dict[str, Any]:
    return content.config.model_dump()


async def save_version(
    session: AsyncSession,
    keyring: Keyring,
    access: WorkspaceAccess,
    prompt: Prompt,
    content: VersionContent,
    message: str = "",
) -> tuple[PromptVersion, bool]:
    """Saves content as the prompt's next version, or returns the existing identical one.

    Returns (version, created). Numbers are handed out under the prompt's row lock: concurrent saves
    queue up for a moment and get 1, 2, 3 … with no gap and no duplicate.
    """
    config = _config_dict(content)
    messages = [m.model_dump() for m in content.messages]
    extras = content.extras()
    problems = config_problems(config, ["body", "model_config"])
    problems += feature_problems(config, extras, messages, ["body", "model_config"])
    variables = rendering.variables_of(content.system, messages)
    if len(variables) > rendering.MAX_VARIABLES:
        problems.append((["body"], f"at most {rendering.MAX_VARIABLES} distinct variables per version"))
    if problems:
        raise InvalidFields(problems)
    material = rendering.content_hash_material(content.system, messages, config, extras)
    content_hash = await keyring.content_hash(session, access.workspace.id, material)

    # FOR NO KEY UPDATE: a save waits for other saves, not for every run of the prompt being accepted.
    if await repo.get_prompt(session, access.workspace.id, prompt.id, for_update=True, key_share=True) is None:
        raise PromptNotFound(f"Prompt {prompt.id} was deleted")
    existing = await repo.get_version_by_hash(session, prompt.id, content_hash)
    if existing is not None:
        return existing, False
    await session.refresh(prompt)
    parent = await repo.get_version(session, access.workspace.id, prompt.id, prompt.version_count)
    number = prompt.version_count + 1
    version = PromptVersion(
        id=uuid.uuid4(),
        workspace_id=access.workspace.id,
        prompt_id=prompt.id,
        number=number,
        content_hash=content_hash,
        model_config=config,
        variables=variables,
        message=message,
        parent_id=parent.id if parent else None,
        created_by=access.principal.user.id,
    )
    await keyring.seal_field(session, version, "system", content.system)
    await keyring.seal_field(session, version, "messages", json.dumps(messages, ensure_ascii=False))
    if extras:
        await keyring.seal_field(session, version, "extras", json.dumps(extras, ensure_ascii=False))
    session.add(version)
    prompt.version_count = number
    prompt.updated_at = func.now()
    prompt.updated_by = access.principal.user.id
    await session.flush()
    await session.refresh(prompt)
    return version, True


async def get_version(
    session: AsyncSession, access: WorkspaceAccess, prompt_id: uuid.UUID, number: int
) -> PromptVersion:
    return await version_of(session, await get_prompt(session, access, prompt_id), number)


async def version_of(session: AsyncSession, prompt: Prompt, number: int) -> PromptVersion:
    """A version of a prompt the caller has already been allowed to see."""
    version = await repo.get_version(session, prompt.workspace_id, prompt.id, number)
    if version is None:
        raise VersionNotFound(f"Prompt {prompt.id} has no version {number}")
    return version


async def get_version_by_id(session: AsyncSession, workspace_id: uuid.UUID, version_id: uuid.UUID) -> PromptVersion:
    version = await repo.get_version_by_id(session, workspace_id, version_id)
    if version is None:
        raise VersionNotFound(f"Version {version_id} not found")
    return version


async def list_versions(session: AsyncSession, access: WorkspaceAccess, prompt_id: uuid.UUID) -> list[PromptVersion]:
    await get_prompt(session, access, prompt_id)
    return await repo.list_versions(session, access.workspace.id, prompt_id)


async def parent_numbers(session: AsyncSession, versions: list[PromptVersion]) -> dict[uuid.UUID, int]:
    return await repo.version_numbers(session, [v.parent_id for v in versions if v.parent_id])


async def version_content(session: AsyncSession, keyring: Keyring, version: PromptVersion) -> dict[str, Any]:
    """The decrypted content of a version: {system, messages, model_config, tools, tool_choice, output_schema}."""
    extras = json.loads(await keyring.open_text(session, version, "extras")) if version.extras is not None else {}
    return {
        "system": await keyring.open_text(session, version, "system"),
        "messages": json.loads(await keyring.open_text(session, version, "messages")),
        "model_config": version.model_config,
        "tools": extras.get("tools", []),
        "tool_choice": extras.get("tool_choice"),
        "output_schema": extras.get("output_schema"),
    }


async def render_version(
    session: AsyncSession, keyring: Keyring, version: PromptVersion, values: dict[str, Any]
) -> rendering.RenderedPrompt:
    """The one renderer runs use: a missing or unknown variable is a 422 naming it."""
    return render_content(await version_content(session, keyring, version), values)


def render_content(content: dict[str, Any], values: dict[str, Any]) -> rendering.RenderedPrompt:
    try:
        return rendering.render(content["system"], content["messages"], values)
    except rendering.RenderError as exc:
        raise InvalidFields([(["body", *loc], msg) for loc, msg in exc.problems]) from exc


async def resolve_by_name(
    session: AsyncSession, access: WorkspaceAccess, name: str, *, label: str | None, number: int | None
) -> PromptVersion:
    prompt = await repo.get_prompt_by_name(session, access.workspace.id, name)
    if prompt is None:
        raise PromptNotFound(f"No prompt named '{name}'")
    if label is not None and number is not None:
        raise Invalid(["query", "label"], "give either label or version, not both")
    if label is not None:
        version = await repo.version_by_label(session, access.workspace.id, prompt.id, label)
        if version is None:
            raise VersionNotFound(f"Prompt '{name}' has no label '{label}'")
        return version
    version = await repo.get_version(session, access.workspace.id, prompt.id, number or prompt.version_count)
    if version is None:
        raise VersionNotFound(f"Prompt '{name}' has no version {number or ''}".rstrip())
    return version


async def diff(
    session: AsyncSession, keyring: Keyring, access: WorkspaceAccess, prompt_id: uuid.UUID, a: int, b: int
) -> dict[str, Any]:
    first = await get_version(session, access, prompt_id, a)
    second = await get_version(session, access, prompt_id, b)
    result = rendering.diff_versions(
        await version_content(session, keyring, first), await version_content(session, keyring, second)
    )
    return {"from_version": a, "to_version": b, **result}


# Labels


async def move_label(
    session: AsyncSession, access: WorkspaceAccess, prompt_id: uuid.UUID, name: str, number: int, actor: Actor
) -> PromptLabel:
    if not _LABEL_RE.fullmatch(name):
        raise Invalid(["path", "label"], "labels are 1 to 40 of a-z, 0-9 and -")
    prompt = await get_prompt(session, access, prompt_id, for_update=True)
    version = await get_version(session, access, prompt_id, number)
    label = await repo.get_label(session, prompt.id, name, for_update=True)
    previous = None
    if label is None:
        label = PromptLabel(workspace_id=access.workspace.id, prompt_id=prompt.id, name=name, version_id=version.id)
        session.add(label)
    else:
        previous = (await repo.version_numbers(session, [label.version_id])).get(label.version_id)
        if label.version_id == version.id:
            return label
        label.version_id = version.id
        label.updated_at = func.now()
    label.updated_by = access.principal.user.id
    session.add(
        PromptLabelMove(
            workspace_id=access.workspace.id,
            prompt_id=prompt.id,
            label=name,
            from_number=previous,
            to_number=number,
            moved_by=access.principal.user.id,
        )
    )
    await record_audit(
        session,
        workspace_id=access.workspace.id,
        actor=actor,
        action="label.moved",
        target_type="prompt",
        target_id=prompt.id,
        before={"label": name, "version": previous},
        after={"label": name, "version": number},
    )
    await session.flush()
    await session.refresh(label)
    return label


async def labels(
    session: AsyncSession, access: WorkspaceAccess, prompt_id: uuid.UUID
) -> list[tuple[PromptLabel, int, list[PromptLabelMove]]]:
    prompt = await get_prompt(session, access, prompt_id)
    history = await repo.label_history(session, prompt.id)
    return [
        (label, number, [move for move in history if move.label == label.name])
        for label, number in await repo.list_labels(session, prompt.id)
    ]


# Comments


async def add_comment(
    session: AsyncSession, keyring: Keyring, access: WorkspaceAccess, prompt_id: uuid.UUID, number: int, body: str
) -> tuple[VersionComment, int]:
    """Any member may comment, viewers included: reviewing is what they are there for."""
    version = await get_version(session, access, prompt_id, number)
    comment = VersionComment(
        id=uuid.uuid4(), workspace_id=access.workspace.id, version_id=version.id, author_id=access.principal.user.id
    )
    await keyring.seal_field(session, comment, "body", body)
    session.add(comment)
    await session.flush()
    await session.refresh(comment)
    return comment, number


async def list_comments(
    session: AsyncSession, access: WorkspaceAccess, prompt_id: uuid.UUID, number: int
) -> list[VersionComment]:
    version = await get_version(session, access, prompt_id, number)
    return await repo.list_comments(session, access.workspace.id, version.id)


async def _comment(
    session: AsyncSession, access: WorkspaceAccess, prompt_id: uuid.UUID, number: int, comment_id: uuid.UUID
) -> VersionComment:
    from backend.core.errors import NotFound

    version = await get_version(session, access, prompt_id, number)
    comment = await repo.get_comment(session, access.workspace.id, version.id, comment_id)
    if comment is None:
        raise NotFound(f"Comment {comment_id} not found")
    return comment


async def edit_comment(
    session: AsyncSession,
    keyring: Keyring,
    access: WorkspaceAccess,
    prompt_id: uuid.UUID,
    number: int,
    comment_id: uuid.UUID,
    *,
    body: str | None,
    resolved: bool | None,
) -> VersionComment:
    comment = await _comment(session, access, prompt_id, number, comment_id)
    own = comment.author_id == access.principal.user.id
    if body is not None:
        if not own:
            raise Forbidden("Only the author can edit a comment")
        await keyring.seal_field(session, comment, "body", body)
        comment.edited_at = func.now()
    if resolved is not None:
        if not own and not access.at_least("editor"):
            raise Forbidden("Resolving someone else's comment needs the editor role or higher")
        comment.resolved = resolved
        comment.resolved_by = access.principal.user.id if resolved else None
    await session.flush()
    await session.refresh(comment)
    return comment


async def delete_comment(
    session: AsyncSession, access: WorkspaceAccess, prompt_id: uuid.UUID, number: int, comment_id: uuid.UUID
) -> None:
    comment = await _comment(session, access, prompt_id, number, comment_id)
    if comment.author_id != access.principal.user.id and not access.at_least("admin"):
        raise Forbidden("Deleting someone else's comment needs the admin role or higher")
    await session.delete(comment)
    await session.flush()


# Export and import


async def export_prompt(
    session: AsyncSession, keyring: Keyring, access: WorkspaceAccess, prompt_id: uuid.UUID
) -> PromptExport:
    prompt = await get_prompt(session, access, prompt_id)
    versions = sorted(await repo.list_versions(session, access.workspace.id, prompt.id), key=lambda v: v.number)
    exported = []
    for version in versions:
        content = await version_content(session, keyring, version)
        exported.append(
            {
                "number": version.number,
                "system": content["system"],
                "messages": content["messages"],
                "model_config": {k: v for k, v in version.model_config.items() if v is not None},
                "tools": content["tools"],
                "tool_choice": content["tool_choice"],
                "output_schema": content["output_schema"],
                "message": version.message,
                "created_at": version.created_at,
            }
        )
    return PromptExport.model_validate(
        {
            "prompt": {"name": prompt.name, "description": prompt.description, "archived": prompt.archived},
            "versions": exported,
            "labels": [{"name": label.name, "version": n} for label, n in await repo.list_labels(session, prompt.id)],
        }
    )


async def import_prompt(
    session: AsyncSession, keyring: Keyring, access: WorkspaceAccess, document: PromptExport, actor: Actor
) -> Prompt:
    """Recreates an exported prompt: new ids, the same content in the same order, the same labels."""
    numbers = [v.number for v in document.versions]
    if sorted(numbers) != list(range(1, len(numbers) + 1)):
        raise Invalid(["body", "versions"], "version numbers must be 1, 2, 3 … without gaps")
    known = set(numbers)
    for index, label in enumerate(document.labels):
        if label.version not in known:
            raise Invalid(["body", "labels", index, "version"], f"there is no version {label.version}")
    prompt = await create_prompt(session, access, document.prompt.name, document.prompt.description)
    by_number: dict[int, PromptVersion] = {}
    for exported in sorted(document.versions, key=lambda v: v.number):
        content = VersionContent.model_validate(
            {
                "system": exported.system,
                "messages": exported.messages,
                "model_config": exported.config,
                "tools": exported.tools,
                "tool_choice": exported.tool_choice,
                "output_schema": exported.output_schema,
            }
        )
        version, created = await save_version(session, keyring, access, prompt, content, exported.message)
        if not created:
            raise Invalid(["body", "versions", exported.number - 1], "duplicates the content of an earlier version")
        by_number[exported.number] = version
    for label in document.labels:
        await move_label(session, access, prompt.id, label.name, by_number[label.version].number, actor)
    prompt.archived = document.prompt.archived
    await session.flush()
    await session.refresh(prompt)
    return prompt


def text_diff(before: str, after: str, field: str) -> str:
    """A unified diff of two texts, as the version diffs show them (used by comparisons for outputs)."""
    return rendering._unified(before, after, field)

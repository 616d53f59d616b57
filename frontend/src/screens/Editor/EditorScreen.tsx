// The editor: a prompt's draft (system, messages, variables, model), Run with streaming output, Save version.
import { useEffect, useMemo, useState } from "react";
import { useParams, useSearchParams } from "react-router";
import { useQueryClient } from "@tanstack/react-query";
import { ApiError } from "../../api/client";
import { promptKeys, usePrompt, useSaveVersion, useVersion } from "../../api/prompts";
import { runStreamer, useCancelRun, useEstimate, useRun, useRunStream, useStartRun } from "../../api/runs";
import { useModels } from "../../api/usage";
import type { RunIn } from "../../api/types";
import { ErrorBox, Loading } from "../../components/States";
import { atLeast, useMembership } from "../../components/useWorkspaceRole";
import { templateTexts } from "../../lib/content";
import { canContinue, conversationWarning } from "../../lib/conversation";
import { continueDraft, draftContent, draftFromRun, draftFromVersion, isDirty } from "../../lib/draft";
import { useDebounced } from "../../lib/useDebounced";
import { extractVariables } from "../../lib/variables";
import { NotFoundScreen } from "../NotFound/NotFoundScreen";
import { VersionList } from "../Version/VersionList";
import { MessagesPanel } from "./MessagesPanel";
import { ModelPanel } from "./ModelPanel";
import { VariablesPanel } from "./VariablesPanel";
import { RunPanel } from "./RunPanel";
import { ToolsPanel } from "./ToolsPanel";
import { CodeDialog } from "../../components/CodeDialog";
import { SaveVersionForm } from "./SaveVersionForm";
import { UnsavedGuard } from "./UnsavedGuard";
import { useDraft } from "./useDraft";
import { useRunShortcut } from "./useRunShortcut";

export function EditorScreen() {
  const { ws = "", promptId = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const membership = useMembership();
  const canEdit = atLeast(membership, "editor");
  const client = useQueryClient();

  const prompt = usePrompt(ws, promptId);
  const wanted = params.get("version") ? Number(params.get("version")) : null;
  const baseNumber = wanted ?? prompt.data?.latest_version ?? null;
  const base = useVersion(ws, promptId, baseNumber);
  const fromRun = useRun(ws, params.get("run") ?? "");
  const ready = prompt.isSuccess && (baseNumber === null || base.isSuccess) && (!params.get("run") || !fromRun.isPending);
  const override = useMemo(() => {
    if (!wanted || !base.data) return undefined;
    // "Continue in editor" from a run: its conversation and answer, the next turn waiting.
    if (params.get("continue") && fromRun.data?.snapshot) return draftFromRun(base.data, fromRun.data);
    const values = (fromRun.data?.snapshot?.variables ?? {}) as Record<string, string>;
    return draftFromVersion(base.data, Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)])));
  }, [wanted, base.data, fromRun.data, params]);
  const { draft, setDraft, discard, stored } = useDraft(ws, promptId, base.data, ready, override);
  useEffect(() => {
    // An "open in editor" link has done its job once its content is the draft: reloads keep the draft.
    if (override && draft && params.size > 0) setParams({}, { replace: true });
  }, [override, draft, params, setParams]);

  const stream = useRunStream();
  useEffect(() => {
    runStreamer.resume(ws, promptId);
  }, [ws, promptId]);
  const myStream = stream && stream.promptId === promptId && stream.ws === ws ? stream : null;

  const names = useMemo(() => (draft ? extractVariables([draft.system, ...draft.messages.flatMap((m) => templateTexts(m.content))]) : []), [draft]);
  const body: RunIn | null = useMemo(() => {
    if (!draft) return null;
    const variables = Object.fromEntries(names.map((n) => [n, draft.variables[n] ?? ""]));
    return { prompt_id: promptId, draft: draftContent(draft), variables };
  }, [draft, names, promptId]);
  const estimate = useEstimate(ws, useDebounced(canEdit ? body : null, 400));
  const models = useModels(ws);
  const model = models.data?.find((m) => m.provider === draft?.model_config.provider && m.model === draft?.model_config.model);

  const [showCode, setShowCode] = useState(false);
  // A field of the tools panel that does not pass its checks: runs and saves wait until it is fixed.
  const [blocked, setBlocked] = useState<string | null>(null);
  const [continued, setContinued] = useState<string | null>(null); // the run last continued from
  const start = useStartRun(ws);
  const cancel = useCancelRun(ws);
  const save = useSaveVersion(ws, promptId);
  const live = myStream !== null && myStream.run === null;
  const run = () => {
    if (!body || live || start.isPending || !canEdit || blocked) return;
    start.mutate(body, {
      onSuccess: (accepted) => {
        runStreamer.watch(ws, accepted.id, promptId);
        void client.invalidateQueries({ queryKey: promptKeys.detail(ws, promptId) });
      },
    });
  };
  useRunShortcut(run);
  const finished = myStream?.run && (myStream.run.status === "succeeded" || myStream.run.status === "cancelled") ? myStream.run : null;
  const continuable = finished && canContinue(finished.output, myStream?.toolUses ?? []) ? finished : null;
  // Continued already (also before a reload): the draft holds this run's tool calls.
  const calls = myStream?.toolUses ?? [];
  const inDraft =
    calls.length > 0 &&
    calls.every((c) => draft?.messages.some((m) => Array.isArray(m.content) && m.content.some((b) => b.type === "tool_use" && b.id === c.id)));
  const wasContinued = continuable !== null && (continued === continuable.id || inDraft);
  const continueRun = () => {
    if (!continuable || !myStream) return;
    setDraft((d) => continueDraft(d, continuable.output, myStream.toolUses ?? []));
    setContinued(continuable.id);
    // Take the user to the turn waiting for them, the last message (the tool results to type, or the next).
    requestAnimationFrame(() => {
      const next = [...document.querySelectorAll(".messages .message")].pop();
      next?.scrollIntoView({ block: "center" });
      next?.querySelector<HTMLElement>("textarea, .cm-content")?.focus();
    });
  };

  if (prompt.error instanceof ApiError && prompt.error.status === 404) return <NotFoundScreen what="prompt" />;
  if (prompt.error || base.error) return <ErrorBox error={prompt.error ?? base.error} />;
  if (!draft || !prompt.data) return <Loading what="Loading the prompt" />;
  const dirty = isDirty(draft, base.data);
  // A draft equal to the version loaded is that version (also when a run of the draft just saved it).
  const shownBase = dirty ? draft.baseVersion : (base.data?.number ?? draft.baseVersion);

  return (
    <section className="page editor">
      <UnsavedGuard dirty={dirty} />
      <div className="page-head">
        <h1>{prompt.data.name}</h1>
        <button type="button" data-testid="get-code-button" disabled={!body} onClick={() => setShowCode(true)}>
          Get code
        </button>
        <span className="muted">
          {shownBase ? `v${shownBase}` : "new prompt"}
          {dirty ? " · edited" : ""}
        </span>
      </div>
      {!stored && (
        <p className="notice" role="status" data-testid="draft-not-stored">
          This draft is too large to keep on this device (its images): save a version so a reload does not lose it.
        </p>
      )}
      {showCode && body && <CodeDialog ws={ws} source={{ body }} onClose={() => setShowCode(false)} />}
      <div className="editor-grid">
        <MessagesPanel draft={draft} readOnly={!canEdit} setDraft={setDraft} onRun={run} />
        <div className="side">
          <ModelPanel
            ws={ws}
            config={draft.model_config}
            readOnly={!canEdit}
            onChange={(model_config) => setDraft((d) => ({ ...d, model_config }))}
            estimate={estimate.data}
            estimateError={estimate.error}
          />
          <ToolsPanel
            tools={draft.tools ?? []}
            toolChoice={draft.tool_choice ?? null}
            outputSchema={draft.output_schema ?? null}
            readOnly={!canEdit}
            onChange={(change) => setDraft((d) => ({ ...d, ...change }))}
            onProblem={setBlocked}
          />
          <VariablesPanel
            names={names}
            values={draft.variables}
            onChange={(name, value) => setDraft((d) => ({ ...d, variables: { ...d.variables, [name]: value } }))}
          />
          <RunPanel
            ws={ws}
            stream={myStream}
            model={model}
            estimatedInput={estimate.data?.input_tokens}
            canRun={canEdit}
            starting={start.isPending}
            stopping={cancel.isPending}
            error={start.error ?? cancel.error}
            onRun={run}
            onStop={() => myStream && cancel.mutate(myStream.runId)}
            blocked={blocked}
            warning={conversationWarning(draft.model_config.provider, draft.model_config.thinking_budget, draft.messages)}
            onContinue={canEdit && continuable && !wasContinued ? continueRun : undefined}
            continued={wasContinued}
          />
        </div>
      </div>
      {canEdit && (
        <SaveVersionForm
          dirty={dirty}
          blocked={blocked}
          saving={save.isPending}
          saved={save.data?.number}
          error={save.error}
          onDiscard={discard}
          onSave={(message) =>
            save.mutate(
              { ...draftContent(draft), message },
              // The content saved is the draft's (unless typing went on meanwhile): only its base moves.
              { onSuccess: (version) => setDraft((d) => ({ ...d, baseVersion: version.number })) },
            )
          }
        />
      )}
      <VersionList ws={ws} promptId={promptId} current={draft.baseVersion ?? undefined} />
    </section>
  );
}

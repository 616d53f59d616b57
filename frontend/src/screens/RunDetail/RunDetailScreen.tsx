// One run: pinned snapshot, output, usage, cost, timings, flags; open in editor, rerun; attaches to a live stream.
import { useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { useQueryClient } from "@tanstack/react-query";
import { ApiError } from "../../api/client";
import { asToolUse, formatUsd, runKeys, runStreamer, useCancelRun, useRerun, useRun, useRunStream } from "../../api/runs";
import { TERMINAL_STATUSES } from "../../api/types";
import { CodeDialog } from "../../components/CodeDialog";
import { RunExtras } from "../../components/RunExtras";
import { ErrorBox, Loading } from "../../components/States";
import { atLeast, useMembership } from "../../components/useWorkspaceRole";
import { canContinue } from "../../lib/conversation";
import { formatDate, formatMs } from "../../lib/format";
import { SaveAsTestCase } from "../Datasets/SaveAsTestCase";
import { NotFoundScreen } from "../NotFound/NotFoundScreen";
import { Snapshot } from "./Snapshot";

export function RunDetailScreen() {
  const { ws = "", runId = "" } = useParams();
  const run = useRun(ws, runId);
  const stream = useRunStream();
  const rerun = useRerun(ws);
  const cancel = useCancelRun(ws);
  const navigate = useNavigate();
  const [showCode, setShowCode] = useState(false);
  const client = useQueryClient();
  const canEdit = atLeast(useMembership(), "editor");
  const unfinished = run.data && !TERMINAL_STATUSES.includes(run.data.status);
  useEffect(() => {
    if (unfinished && run.data) runStreamer.watch(ws, runId, run.data.prompt_id);
  }, [unfinished, run.data, ws, runId]);
  const live = stream && stream.runId === runId ? stream : null;
  useEffect(() => {
    if (live?.run) void client.invalidateQueries({ queryKey: runKeys.detail(ws, runId) });
  }, [live?.run, client, ws, runId]);

  if (run.error instanceof ApiError && run.error.status === 404) return <NotFoundScreen what="run" />;
  if (run.error) return <ErrorBox error={run.error} />;
  if (!run.data) return <Loading what="Loading the run" />;
  const r = live?.run ?? run.data;
  const status = live && !live.run ? live.status : r.status;
  const output = live ? live.text : r.output;
  const toolUses = live ? (live.toolUses ?? []) : (r.tool_uses ?? []).map(asToolUse);
  const continuable =
    canEdit && r.snapshot !== null && (r.status === "succeeded" || r.status === "cancelled") && canContinue(r.output, toolUses);
  const temperature = Number((r.snapshot?.model_config as { temperature?: number } | undefined)?.temperature ?? 0);
  return (
    <section className="page">
      <div className="page-head">
        <h1>Run {r.id.slice(0, 8)}</h1>
        <span className={`status status-${status}`} data-testid="run-status">
          {status}
        </span>
        <Link className="button" to={`/w/${ws}/prompts/${r.prompt_id}?version=${r.version}&run=${r.id}`}>
          Open in editor
        </Link>
        {continuable && (
          <Link
            className="button"
            data-testid="continue-in-editor"
            to={`/w/${ws}/prompts/${r.prompt_id}?version=${r.version}&run=${r.id}&continue=1`}
            title="The conversation with this answer (and its tool calls) added, in the editor"
          >
            Continue in editor
          </Link>
        )}
        <button type="button" data-testid="get-code-button" onClick={() => setShowCode(true)}>
          Get code
        </button>
        {canEdit && (
          <button type="button" onClick={() => rerun.mutate(r.id, { onSuccess: (a) => navigate(`/w/${ws}/runs/${a.id}`) })}>
            Rerun
          </button>
        )}
        {canEdit && live && !live.run && (
          <button type="button" data-testid="stop-button" onClick={() => cancel.mutate(r.id)}>
            Stop
          </button>
        )}
      </div>
      {canEdit && r.snapshot !== null && TERMINAL_STATUSES.includes(r.status) && <SaveAsTestCase ws={ws} runId={r.id} />}
      {showCode && <CodeDialog ws={ws} source={{ runId: r.id }} onClose={() => setShowCode(false)} />}
      {temperature > 0 && <p className="muted">Temperature {temperature}: a rerun may answer differently.</p>}
      <ErrorBox error={rerun.error ?? cancel.error} />
      {r.error && <ErrorBox error={String(r.error.detail ?? r.error.message ?? JSON.stringify(r.error))} title="The run failed" />}
      <dl className="run-stats wide">
        <dt>Prompt</dt>
        <dd>
          <Link to={`/w/${ws}/prompts/${r.prompt_id}/versions/${r.version}`}>v{r.version}</Link>
        </dd>
        <dt>Model</dt>
        <dd>
          {r.provider} · {r.model}
        </dd>
        <dt>Tokens</dt>
        <dd>
          {r.usage.input_tokens ?? "—"} in · {live && !live.run ? live.deltas : (r.usage.output_tokens ?? "—")} out
          {r.usage.thinking_tokens ? ` (${r.usage.thinking_tokens} thinking)` : ""}
          {r.usage.estimated ? " (estimated)" : ""}
        </dd>
        <dt>Cost</dt>
        <dd data-testid="run-cost">{formatUsd(r.cost_usd)}</dd>
        <dt>TTFT</dt>
        <dd>{formatMs(r.ttft_ms)}</dd>
        <dt>Duration</dt>
        <dd>{formatMs(r.duration_ms)}</dd>
        <dt>Stop reason</dt>
        <dd>{r.stop_reason ?? "—"}</dd>
        <dt>Created</dt>
        <dd>{formatDate(r.created_at)}</dd>
        {r.rerun_of && (
          <>
            <dt>Rerun of</dt>
            <dd>
              <Link to={`/w/${ws}/runs/${r.rerun_of}`}>{r.rerun_of.slice(0, 8)}</Link>
            </dd>
          </>
        )}
      </dl>
      <h2>Output</h2>
      <RunExtras
        thinking={live ? live.thinking ?? "" : (r.thinking ?? "")}
        toolUses={toolUses}
        outputValid={r.output_valid}
        live={!!live && !live.run}
      />
      <pre className="run-output" data-testid="run-output" tabIndex={0} aria-label="Output">
        {output}
      </pre>
      {r.flags.length > 0 && (
        <>
          <h2>Flags</h2>
          <ul>
            {r.flags.map((f, i) => (
              <li key={i}>
                <span className="label-chip">{String(f.kind ?? "flag")}</span> {String(f.detector ?? "")} in the{" "}
                {String(f.where ?? "")} {f.field ? `(${String(f.field)})` : ""}
              </li>
            ))}
          </ul>
        </>
      )}
      <Snapshot snapshot={r.snapshot} />
    </section>
  );
}

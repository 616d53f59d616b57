// Run / Stop and the streaming output with status, live token count, cost and time to first token.
import { Link } from "react-router";
import type { WorkspaceModel } from "../../api/types";
import { costMicros, formatUsd, liveOutputTokens, type StreamState } from "../../api/runs";
import { ErrorBox } from "../../components/States";
import { RunExtras } from "../../components/RunExtras";
import { formatMs } from "../../lib/format";

type Props = {
  ws: string;
  stream: StreamState | null;
  model: WorkspaceModel | undefined;
  estimatedInput: number | undefined;
  canRun: boolean;
  starting: boolean;
  stopping: boolean;
  error: unknown;
  onRun: () => void;
  onStop: () => void;
  blocked?: string | null; // why the draft cannot run as it is
  warning?: string | null; // why a provider will likely refuse it
  onContinue?: () => void; // the finished run's answer into the draft, the next turn waiting
  continued?: boolean;
};

export function RunPanel(props: Props) {
  const { ws, stream, model, estimatedInput, canRun, starting, stopping, error, onRun, onStop, blocked = null, warning = null, onContinue, continued } = props;
  const live = stream !== null && stream.run === null;
  const tokens = stream ? liveOutputTokens(stream) : 0;
  const input = stream?.inputTokens ?? estimatedInput ?? 0;
  const cost = stream?.run ? formatUsd(stream.run.cost_usd) : stream ? formatUsd(costMicros(input, tokens, model?.price), true) : "—";
  const ttft = stream?.run?.ttft_ms ?? (stream?.firstTokenAtMs ? stream.firstTokenAtMs - stream.startedAtMs : null);
  const status = starting ? "starting" : (stream?.status ?? "idle");
  return (
    <section className="panel run-panel" aria-label="Run">
      <div className="run-actions">
        <button type="button" className="primary" data-testid="run-button" disabled={!canRun || starting || live || !!blocked} onClick={onRun}>
          Run <kbd>Ctrl/⌘ + Enter</kbd>
        </button>
        <button type="button" data-testid="stop-button" disabled={!live || stopping} onClick={onStop}>
          {stopping ? "Stopping…" : "Stop"}
        </button>
        <span className={`status status-${status}`} data-testid="run-status" role="status" aria-live="polite">
          {status}
        </span>
      </div>
      <dl className="run-stats">
        <dt>Tokens</dt>
        <dd data-testid="run-tokens">
          {stream ? `${input} in · ${tokens} out${stream.run?.usage.estimated ? " (estimated)" : ""}` : "—"}
        </dd>
        <dt>Cost</dt>
        <dd data-testid="run-cost">{cost}</dd>
        <dt>TTFT</dt>
        <dd>{formatMs(ttft)}</dd>
        <dt>Duration</dt>
        <dd>{formatMs(stream?.run?.duration_ms)}</dd>
      </dl>
      {blocked && (
        <p className="field-error" role="status" data-testid="run-blocked">
          Fix the tools and output panel first: {blocked}
        </p>
      )}
      {warning && (
        <p className="flagged" role="status" data-testid="run-warning">
          {warning}
        </p>
      )}
      {!canRun && <p className="muted">Viewers can read this prompt and its runs; editors run and save.</p>}
      {stream && stream.flags.length > 0 && (
        <p className="flagged" role="status" data-testid="run-flags">
          Flagged:{" "}
          {stream.flags
            .map((f) => f as { kind?: string; detector?: string; where?: string })
            .map((f) => `${f.kind}/${f.detector} (${f.where})`)
            .join(", ")}
        </p>
      )}
      <ErrorBox error={error} title="Could not run" />
      {stream?.error && <ErrorBox error={stream.error} />}
      {stream?.run?.error && <ErrorBox error={String(stream.run.error.detail ?? stream.run.error.message ?? "The run failed")} title="The run failed" />}
      {stream && (
        <RunExtras thinking={stream.thinking ?? ""} toolUses={stream.toolUses ?? []} outputValid={stream.run?.output_valid} live={live} />
      )}
      <pre className="run-output" data-testid="run-output" aria-label="Output" aria-live="off" tabIndex={0}>
        {stream?.text ?? ""}
      </pre>
      {(onContinue || continued) && (
        <p className="continue-row">
          <button type="button" data-testid="continue-button" disabled={!onContinue} onClick={onContinue}>
            Continue
          </button>{" "}
          <span className="muted small" role="status">
            {continued
              ? "The answer is in the conversation: write the next turn, then run again."
              : stream?.toolUses?.length
                ? "Add the answer and its tool calls to the conversation, and type each tool's result."
                : "Add the answer to the conversation and write the next turn."}
          </span>
        </p>
      )}
      {stream && (
        <p className="muted">
          Run <Link to={`/w/${ws}/runs/${stream.runId}`}>{stream.runId.slice(0, 8)}</Link>
          {stream.run?.stop_reason ? ` · stopped by ${stream.run.stop_reason}` : ""}
        </p>
      )}
    </section>
  );
}

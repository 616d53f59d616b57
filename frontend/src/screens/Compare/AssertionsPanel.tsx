// The grid's checks: rule-based (contains, does not contain, regex, valid JSON, equals expected) evaluated
// by the server on each read, and model-graded ones (a rubric prompt run on each output, with its own cost),
// marked as such; pass rate of each check per version.
import { type FormEvent, useEffect, useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import {
  type AssertionIn,
  type Comparison,
  cellView,
  comparisonKeys,
  passRate,
  useAddAssertion,
  useDeleteAssertion,
  useGrade,
  versionAggregates,
} from "../../api/comparisons";
import { usePrompts } from "../../api/prompts";
import { formatUsd } from "../../api/runs";
import { ErrorBox } from "../../components/States";
import { describeAssertion } from "./GridCell";

const KINDS: { kind: AssertionIn["kind"]; label: string; needsValue: boolean }[] = [
  { kind: "contains", label: "Output contains", needsValue: true },
  { kind: "not_contains", label: "Output does not contain", needsValue: true },
  { kind: "regex", label: "Output matches regex", needsValue: true },
  { kind: "is_json", label: "Output is valid JSON", needsValue: false },
  { kind: "equals_expected", label: "Output equals the expected one", needsValue: false },
  { kind: "model_graded", label: "Model-graded (a rubric prompt)", needsValue: false },
];

const GRADING_WATCH_MS = 60_000;

export function AssertionsPanel({ ws, comparison: c, canEdit, running }: { ws: string; comparison: Comparison; canEdit: boolean; running: boolean }) {
  const add = useAddAssertion(ws, c.id);
  const remove = useDeleteAssertion(ws, c.id);
  const grade = useGrade(ws, c.id);
  const prompts = usePrompts(ws);
  const client = useQueryClient();
  const [kind, setKind] = useState<AssertionIn["kind"]>("contains");
  const [value, setValue] = useState("");
  const [rubric, setRubric] = useState("");
  const [gradingSince, setGradingSince] = useState<number | null>(null);
  const needsValue = KINDS.find((k) => k.kind === kind)?.needsValue ?? false;
  const aggregates = versionAggregates(c.cells.map((cell) => cellView(cell, undefined)));
  const hasGraded = c.assertions.some((a) => a.model_graded);

  // Grading runs finish on their own: look at the summary again until their verdicts are in (a minute at most).
  const pendingGrades = c.cells.some((cell) => cell.assertions?.some((r) => r.model_graded && r.grader_run_id && r.passed === null));
  useEffect(() => {
    if (gradingSince === null) return;
    if (!pendingGrades && Date.now() - gradingSince > 3000) return setGradingSince(null);
    if (Date.now() - gradingSince > GRADING_WATCH_MS) return setGradingSince(null);
    const t = setTimeout(() => void client.invalidateQueries({ queryKey: comparisonKeys.detail(ws, c.id), exact: true }), 1500);
    return () => clearTimeout(t);
  }, [gradingSince, pendingGrades, c, client, ws]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const body: AssertionIn =
      kind === "model_graded" ? { kind, prompt_id: rubric } : needsValue ? { kind, value } : { kind };
    add.mutate(body, { onSuccess: () => setValue("") });
  };
  return (
    <section className="panel" aria-label="Checks" data-testid="compare-assertions">
      <h2 className="panel-title">Checks</h2>
      {c.assertions.length === 0 && <p className="muted">No checks yet. Add one to see pass rates per version.</p>}
      {c.assertions.length > 0 && (
        <table className="table compact" aria-label="Checks and pass rates">
          <thead>
            <tr>
              <th>Check</th>
              {aggregates.map((v) => (
                <th key={v.version}>v{v.version}</th>
              ))}
              <th />
            </tr>
          </thead>
          <tbody>
            {c.assertions.map((a) => (
              <tr key={a.id} data-testid={`assertion-${a.id}`}>
                <td>
                  {a.model_graded && <span className="model-graded">model-graded</span>} {describeAssertion(a)}
                  {a.model_graded && (
                    <span className="muted small">
                      {" "}
                      {prompts.data?.items.find((p) => p.id === a.grader_prompt_id)?.name ?? "rubric"}
                      {a.grader_version ? ` v${a.grader_version}` : " (latest)"}
                    </span>
                  )}
                </td>
                {aggregates.map((v) => {
                  const rate = v.byAssertion[a.id];
                  const r = rate ? passRate(rate) : null;
                  return (
                    <td key={v.version} data-testid={`assertion-rate-${a.id}-${v.version}`}>
                      {r === null || !rate ? "—" : `${Math.round(r * 100)}% (${rate.passed}/${rate.evaluated})`}
                    </td>
                  );
                })}
                <td>
                  {canEdit && (
                    <button type="button" className="link" onClick={() => remove.mutate(a.id)} disabled={remove.isPending} aria-label={`Remove check ${describeAssertion(a)}`}>
                      Remove
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {hasGraded && canEdit && (
        <p className="run-actions">
          <button
            type="button"
            onClick={() => grade.mutate(undefined, { onSuccess: () => setGradingSince(Date.now()) })}
            disabled={grade.isPending || running}
            title={running ? "When every cell has finished" : undefined}
            data-testid="compare-grade"
          >
            Run model-graded checks
          </button>
          <span className="muted small">
            Each succeeded cell not graded yet is judged by one run of the rubric (its own cost: {formatUsd(c.totals.grading_cost_usd)} so far).
          </span>
          {grade.data && <span className="small">{grade.data.gradings.length} grading runs started.</span>}
        </p>
      )}
      <ErrorBox error={grade.error} title="Grading not started" />
      {canEdit && (
        <form className="inline-form" onSubmit={submit} aria-label="Add a check">
          <label>
            Check
            <select value={kind} onChange={(e) => setKind(e.target.value as AssertionIn["kind"])} data-testid="assertion-kind">
              {KINDS.map((k) => (
                <option key={k.kind} value={k.kind}>
                  {k.label}
                </option>
              ))}
            </select>
          </label>
          {needsValue && (
            <label>
              {kind === "regex" ? "Pattern" : "Text"}
              <input required value={value} onChange={(e) => setValue(e.target.value)} data-testid="assertion-value" maxLength={kind === "regex" ? 500 : 10_000} />
            </label>
          )}
          {kind === "model_graded" && (
            <label>
              Rubric prompt (uses {"{{output}}"}, answers PASS or FAIL)
              <select required value={rubric} onChange={(e) => setRubric(e.target.value)} data-testid="assertion-rubric">
                <option value="">Choose a prompt…</option>
                {(prompts.data?.items ?? [])
                  .filter((p) => p.id !== c.prompt_id)
                  .map((p) => (
                    <option key={p.id} value={p.id}>
                      {p.name}
                    </option>
                  ))}
              </select>
            </label>
          )}
          <button type="submit" disabled={add.isPending} data-testid="assertion-add">
            Add check
          </button>
        </form>
      )}
      <ErrorBox error={add.error ?? remove.error} title="Check not saved" />
    </section>
  );
}

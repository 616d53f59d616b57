// A new comparison: a prompt, some of its versions, models (none chosen: each version's own), and the
// cases: a dataset or rows typed in. The server's refusals (402 budget, 422 naming the field) show as they are.
import { type FormEvent, useState } from "react";
import { Link, useNavigate } from "react-router";
import { useCreateComparison, usePromptVersions } from "../../api/comparisons";
import { useDatasets } from "../../api/datasets";
import { usePrompts } from "../../api/prompts";
import { useModels } from "../../api/usage";
import { casesOf, RowsEditor, type RowsInput } from "../Datasets/RowsEditor";
import { emptyTable } from "../Datasets/rows";
import { CreateError } from "./CreateError";

type Source = "dataset" | "rows" | "none";

export function NewComparisonForm({ ws, initialPrompt, initialDataset }: { ws: string; initialPrompt: string | null; initialDataset: string | null }) {
  const prompts = usePrompts(ws);
  const datasets = useDatasets(ws);
  const models = useModels(ws);
  const [promptId, setPromptId] = useState(initialPrompt ?? "");
  const versions = usePromptVersions(ws, promptId);
  const [chosenVersions, setChosenVersions] = useState<number[]>([]);
  const [chosenModels, setChosenModels] = useState<string[]>([]);
  const [source, setSource] = useState<Source>("dataset");
  const [datasetId, setDatasetId] = useState(initialDataset ?? "");
  const [rows, setRows] = useState<RowsInput>({ mode: "table", table: emptyTable() });
  const [name, setName] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const create = useCreateComparison(ws);
  const navigate = useNavigate();

  const datasetItems = datasets.data?.pages.flatMap((p) => p.items) ?? [];
  const dataset = datasetItems.find((d) => d.id === datasetId);
  const versionItems = promptId ? (versions.data ?? []) : [];
  const needed = [...new Set(versionItems.filter((v) => chosenVersions.includes(v.number)).flatMap((v) => v.variables))];
  const typed = source === "rows" ? casesOf(rows) : null;
  const missing =
    source === "dataset" && dataset
      ? needed.filter((v) => !dataset.variables.includes(v))
      : typed && typeof typed !== "string" && typed.rows.length
        ? needed.filter((v) => typed.rows.some((row) => !(v in row)))
        : [];
  const available = (models.data ?? []).filter((m) => m.available);
  const rowCount = source === "dataset" ? (dataset?.row_count ?? 0) : source === "rows" ? countRows(rows) : 1;
  const cellCount = chosenVersions.length * Math.max(chosenModels.length, 1) * rowCount;

  const toggle = <T,>(list: T[], item: T) => (list.includes(item) ? list.filter((x) => x !== item) : [...list, item]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!promptId) return setProblem("Choose a prompt.");
    if (chosenVersions.length === 0) return setProblem("Choose at least one version.");
    const body: Parameters<typeof create.mutate>[0] = {
      prompt_id: promptId,
      versions: [...chosenVersions].sort((a, b) => a - b),
      name,
      assertions: [],
    };
    if (chosenModels.length) body.models = chosenModels.map((key) => ({ provider: key.split("/")[0] ?? "", model: key.slice(key.indexOf("/") + 1) }));
    if (source === "dataset") {
      if (!datasetId) return setProblem("Choose a dataset, or type the cases in.");
      body.dataset_id = datasetId;
    } else if (source === "rows") {
      const cases = casesOf(rows);
      if (typeof cases === "string") return setProblem(cases);
      if (cases.rows.length === 0) return setProblem("Add at least one case.");
      body.rows = cases.rows;
      if (cases.expected) body.expected = cases.expected;
    }
    setProblem(null);
    create.mutate(body, { onSuccess: (c) => navigate(`/w/${ws}/compare/${c.id}`) });
  };

  return (
    <form className="panel new-comparison" onSubmit={submit} aria-label="New comparison" data-testid="new-comparison">
      <h2 className="panel-title">New comparison</h2>
      <div className="field-row">
        <label className="field">
          Prompt
          <select
            value={promptId}
            onChange={(e) => {
              setPromptId(e.target.value);
              setChosenVersions([]);
            }}
            data-testid="compare-prompt"
          >
            <option value="">Choose a prompt…</option>
            {(prompts.data?.items ?? []).map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          Name (optional)
          <input value={name} onChange={(e) => setName(e.target.value)} data-testid="compare-name" />
        </label>
      </div>
      {promptId && (
        <fieldset className="choices" data-testid="compare-versions">
          <legend>Versions</legend>
          {promptId && versions.isPending && <span className="muted">Loading versions…</span>}
          {versionItems.length === 0 && versions.data && <span className="muted">This prompt has no saved version yet.</span>}
          {versionItems.map((v) => (
            <label key={v.number} className="checkbox">
              <input type="checkbox" checked={chosenVersions.includes(v.number)} onChange={() => setChosenVersions(toggle(chosenVersions, v.number))} data-testid={`compare-version-${v.number}`} />
              v{v.number}
              <span className="muted small">
                {String((v.model_config as { model?: string }).model ?? "")} {v.message ? `· ${v.message}` : ""}
              </span>
            </label>
          ))}
        </fieldset>
      )}
      <fieldset className="choices" data-testid="compare-models">
        <legend>Models</legend>
        <span className="muted small">None chosen: each version runs on its own model.</span>
        {available.map((m) => {
          const key = `${m.provider}/${m.model}`;
          return (
            <label key={key} className="checkbox">
              <input type="checkbox" checked={chosenModels.includes(key)} onChange={() => setChosenModels(toggle(chosenModels, key))} />
              {m.label || m.model} <span className="muted small">{m.provider}</span>
            </label>
          );
        })}
      </fieldset>
      <fieldset className="choices">
        <legend>Cases</legend>
        <div className="tabs" role="group" aria-label="Cases from">
          <button type="button" aria-pressed={source === "dataset"} onClick={() => setSource("dataset")}>
            A dataset
          </button>
          <button type="button" aria-pressed={source === "rows"} onClick={() => setSource("rows")}>
            Typed in
          </button>
          <button type="button" aria-pressed={source === "none"} onClick={() => setSource("none")}>
            One case, no variables
          </button>
        </div>
        {source === "dataset" && datasets.data && datasetItems.length === 0 && (
          <p className="muted">
            No datasets yet: <Link to={`/w/${ws}/datasets`}>import or type one</Link>, or type the cases in here.
          </p>
        )}
        {source === "dataset" && (
          <label>
            Dataset
            <select value={datasetId} onChange={(e) => setDatasetId(e.target.value)} data-testid="compare-dataset">
              <option value="">Choose a dataset…</option>
              {datasetItems.map((d) => (
                <option key={d.id} value={d.id}>
                  {d.name} ({d.row_count} cases)
                </option>
              ))}
            </select>
          </label>
        )}
        {source === "rows" && <RowsEditor value={rows} onChange={setRows} idPrefix="compare-rows" />}
        {missing.length > 0 && (
          <p className="field-error">
            {source === "dataset" ? "The dataset has" : "Some cases have"} no {missing.join(", ")}, which the chosen versions use.
          </p>
        )}
      </fieldset>
      <p className="muted" data-testid="compare-cell-count">
        {cellCount} {cellCount === 1 ? "cell" : "cells"} (versions × models × cases){cellCount > 500 ? " — at most 500" : ""}
      </p>
      {problem && (
        <p className="field-error" role="alert">
          {problem}
        </p>
      )}
      <button type="submit" className="primary" disabled={create.isPending} data-testid="compare-start">
        Start comparison
      </button>
      <CreateError error={create.error} />
    </form>
  );
}

function countRows(input: RowsInput): number {
  const cases = casesOf(input);
  return typeof cases === "string" ? 0 : cases.rows.length;
}

// "Save as test case" for a finished run: its pinned variable values appended to a dataset, optionally
// with its output as the expected one (POST .../datasets/{id}/rows {run_id, output_as_expected}).
import { useState } from "react";
import { Link } from "react-router";
import { useAddRow, useDatasets } from "../../api/datasets";
import { ErrorBox } from "../../components/States";

export function SaveAsTestCase({ ws, runId }: { ws: string; runId: string }) {
  const [open, setOpen] = useState(false);
  const [datasetId, setDatasetId] = useState("");
  const [outputAsExpected, setOutputAsExpected] = useState(false);
  const datasets = useDatasets(ws);
  const add = useAddRow(ws);
  const items = datasets.data?.pages.flatMap((p) => p.items) ?? [];
  const chosen = datasetId || items[0]?.id || "";
  if (!open)
    return (
      <button type="button" onClick={() => setOpen(true)} data-testid="save-test-case-button">
        Save as test case
      </button>
    );
  return (
    <div className="save-test-case panel" role="group" aria-label="Save as test case" data-testid="save-test-case">
      {datasets.data && items.length === 0 ? (
        <p className="muted">
          No dataset yet: <Link to={`/w/${ws}/datasets`}>create one</Link> first.
        </p>
      ) : (
        <div className="inline-form">
          <label>
            Dataset
            <select value={chosen} onChange={(e) => setDatasetId(e.target.value)} data-testid="save-test-case-dataset">
              {items.map((d) => (
                <option key={d.id} value={d.id}>
                  {d.name} ({d.row_count})
                </option>
              ))}
            </select>
          </label>
          <label className="checkbox">
            <input type="checkbox" checked={outputAsExpected} onChange={(e) => setOutputAsExpected(e.target.checked)} />
            Its output is the expected one
          </label>
          <button
            type="button"
            className="primary"
            disabled={!chosen || add.isPending}
            onClick={() => add.mutate({ datasetId: chosen, row: { run_id: runId, output_as_expected: outputAsExpected } })}
            data-testid="save-test-case-submit"
          >
            Save
          </button>
          <button type="button" onClick={() => (add.reset(), setOpen(false))}>
            Close
          </button>
        </div>
      )}
      {add.data && (
        <p className="notice" role="status">
          Saved as case {add.data.index + 1} of <Link to={`/w/${ws}/datasets/${chosen}`}>{items.find((d) => d.id === chosen)?.name ?? "the dataset"}</Link>.
        </p>
      )}
      <ErrorBox error={add.error} title="Not saved" />
    </div>
  );
}

// A dataset from a CSV file: header row = variable names, optionally one column of expected outputs.
import { type FormEvent, useRef, useState } from "react";
import { useNavigate } from "react-router";
import { useImportDataset } from "../../api/datasets";
import { ErrorBox } from "../../components/States";

export function ImportCsvForm({ ws }: { ws: string }) {
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState("");
  const [expectedColumn, setExpectedColumn] = useState("");
  const input = useRef<HTMLInputElement>(null);
  const importing = useImportDataset(ws);
  const navigate = useNavigate();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    importing.mutate({ file, name, expectedColumn }, { onSuccess: (d) => navigate(`/w/${ws}/datasets/${d.id}`) });
  };
  return (
    <form className="panel" onSubmit={submit} aria-label="Import a CSV file">
      <h2 className="panel-title">Import a CSV file</h2>
      <p className="muted small">The first line names the variables; each next line is one case. UTF-8.</p>
      <label>
        CSV file
        <input
          ref={input}
          type="file"
          accept=".csv,text/csv"
          required
          onChange={(e) => {
            setFile(e.target.files?.[0] ?? null);
            importing.reset();
          }}
          data-testid="dataset-import-file"
        />
      </label>
      <div className="field-row">
        <label className="field">
          Name (default: the file's)
          <input value={name} onChange={(e) => setName(e.target.value)} data-testid="dataset-import-name" />
        </label>
        <label className="field">
          Column of expected outputs
          <input value={expectedColumn} onChange={(e) => setExpectedColumn(e.target.value)} placeholder="e.g. expected" />
        </label>
      </div>
      <button type="submit" className="primary" disabled={!file || importing.isPending} data-testid="dataset-import-submit">
        Import
      </button>
      <div data-testid="dataset-import-error">
        <ErrorBox error={importing.error} title="The file was not imported" />
      </div>
    </form>
  );
}

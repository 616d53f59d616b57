// A dataset typed in: a name and its cases (table or JSON).
import { type FormEvent, useState } from "react";
import { useNavigate } from "react-router";
import { useCreateDataset } from "../../api/datasets";
import { ErrorBox } from "../../components/States";
import { casesOf, RowsEditor, type RowsInput } from "./RowsEditor";
import { emptyTable } from "./rows";

export function NewDatasetForm({ ws }: { ws: string }) {
  const [name, setName] = useState("");
  const [input, setInput] = useState<RowsInput>({ mode: "table", table: emptyTable() });
  const [problem, setProblem] = useState<string | null>(null);
  const create = useCreateDataset(ws);
  const navigate = useNavigate();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const cases = casesOf(input);
    if (typeof cases === "string") return setProblem(cases);
    if (cases.rows.length === 0) return setProblem("Add at least one case.");
    setProblem(null);
    create.mutate(
      { name, rows: cases.rows, expected: cases.expected },
      { onSuccess: (d) => navigate(`/w/${ws}/datasets/${d.id}`) },
    );
  };
  return (
    <form className="panel" onSubmit={submit} aria-label="New dataset">
      <h2 className="panel-title">New dataset</h2>
      <label>
        Name
        <input required value={name} onChange={(e) => setName(e.target.value)} data-testid="dataset-name" />
      </label>
      <RowsEditor value={input} onChange={setInput} idPrefix="dataset-rows" />
      {problem && (
        <p className="field-error" role="alert">
          {problem}
        </p>
      )}
      <button type="submit" className="primary" disabled={create.isPending} data-testid="dataset-create">
        Create dataset
      </button>
      <ErrorBox error={create.error} title="The dataset was not created" />
    </form>
  );
}

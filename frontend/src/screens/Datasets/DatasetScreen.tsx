// One dataset: its cases (variables and expected outputs), a case added by hand, compare on it, delete.
import { type FormEvent, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { ApiError } from "../../api/client";
import { useQueryClient } from "@tanstack/react-query";
import { type DatasetDetail, datasetKeys, useAddRow, useDataset, useDeleteDataset } from "../../api/datasets";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { atLeast, useMembership } from "../../components/useWorkspaceRole";
import { formatDate } from "../../lib/format";
import { NotFoundScreen } from "../NotFound/NotFoundScreen";

export function DatasetScreen() {
  const { ws = "", datasetId = "" } = useParams();
  const dataset = useDataset(ws, datasetId);
  const canEdit = atLeast(useMembership(), "editor");
  if (dataset.error instanceof ApiError && dataset.error.status === 404) return <NotFoundScreen what="dataset" />;
  if (dataset.error) return <ErrorBox error={dataset.error} />;
  if (!dataset.data) return <Loading what="Loading the dataset" />;
  const d = dataset.data;
  return (
    <section className="page">
      <div className="page-head">
        <h1>{d.name}</h1>
        <span className="muted" data-testid="dataset-summary">
          {d.row_count} {d.row_count === 1 ? "case" : "cases"} · variables {d.variables.join(", ") || "none"} · created{" "}
          {formatDate(d.created_at)}
        </span>
        <Link className="button" to={`/w/${ws}/compare?dataset=${d.id}`}>
          Compare versions on it
        </Link>
        {canEdit && <DeleteDataset ws={ws} dataset={d} />}
      </div>
      {d.rows.length === 0 ? (
        <Empty>No cases yet.</Empty>
      ) : (
        <div className="table-scroll">
          <table className="table spaced" aria-label="Cases" data-testid="dataset-rows">
            <thead>
              <tr>
                <th>#</th>
                {d.variables.map((v) => (
                  <th key={v}>{v}</th>
                ))}
                {d.expected && <th>Expected output</th>}
              </tr>
            </thead>
            <tbody>
              {d.rows.map((row, i) => (
                <tr key={i}>
                  <td>{i + 1}</td>
                  {d.variables.map((v) => (
                    <td key={v}>
                      <pre>{row[v] ?? ""}</pre>
                    </td>
                  ))}
                  {d.expected && (
                    <td>
                      <pre>{d.expected[i] ?? "—"}</pre>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {canEdit && <AddRowForm ws={ws} dataset={d} />}
    </section>
  );
}

function DeleteDataset({ ws, dataset }: { ws: string; dataset: DatasetDetail }) {
  const [confirming, setConfirming] = useState(false);
  const remove = useDeleteDataset(ws);
  const navigate = useNavigate();
  const client = useQueryClient();
  const deleted = () => {
    navigate(`/w/${ws}/datasets`);
    client.removeQueries({ queryKey: datasetKeys.detail(ws, dataset.id), exact: true });
  };
  if (!confirming)
    return (
      <button type="button" onClick={() => setConfirming(true)}>
        Delete
      </button>
    );
  return (
    <span className="confirm" role="group" aria-label="Confirm deletion">
      Delete “{dataset.name}” and its {dataset.row_count} cases? Comparisons made with it keep their cases.
      <button type="button" className="danger" onClick={() => remove.mutate(dataset.id, { onSuccess: deleted })} disabled={remove.isPending}>
        Delete for good
      </button>
      <button type="button" onClick={() => setConfirming(false)}>
        Keep it
      </button>
      <ErrorBox error={remove.error} />
    </span>
  );
}

function AddRowForm({ ws, dataset }: { ws: string; dataset: DatasetDetail }) {
  const blank = () => Object.fromEntries(dataset.variables.map((v) => [v, ""]));
  const [values, setValues] = useState<Record<string, string>>(blank);
  const [newName, setNewName] = useState("");
  const [expected, setExpected] = useState("");
  const add = useAddRow(ws);
  const names = Object.keys(values);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    add.mutate(
      { datasetId: dataset.id, row: { variables: values, expected: expected === "" ? null : expected, output_as_expected: false } },
      {
        onSuccess: () => {
          setValues(Object.fromEntries(names.map((v) => [v, ""])));
          setExpected("");
        },
      },
    );
  };
  return (
    <form className="panel" onSubmit={submit} aria-label="Add a case">
      <h2 className="panel-title">Add a case</h2>
      <div className="field-row wrap">
        {names.map((name) => (
          <label className="field" key={name}>
            {name}
            <textarea rows={2} value={values[name] ?? ""} onChange={(e) => setValues({ ...values, [name]: e.target.value })} data-testid={`dataset-add-${name}`} />
          </label>
        ))}
        <label className="field">
          Expected output (optional)
          <textarea rows={2} value={expected} onChange={(e) => setExpected(e.target.value)} data-testid="dataset-add-expected" />
        </label>
      </div>
      <div className="run-actions">
        <label className="field inline">
          New variable
          <input value={newName} onChange={(e) => setNewName(e.target.value)} placeholder="name" />
        </label>
        <button
          type="button"
          disabled={!/^[A-Za-z0-9_]{1,64}$/.test(newName) || newName in values}
          onClick={() => {
            setValues({ ...values, [newName]: "" });
            setNewName("");
          }}
        >
          Add variable
        </button>
        <button type="submit" className="primary" disabled={add.isPending} data-testid="dataset-add-submit">
          Add case
        </button>
      </div>
      <ErrorBox error={add.error} title="The case was not added" />
    </form>
  );
}

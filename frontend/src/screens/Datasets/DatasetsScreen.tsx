// Datasets of test cases: the list, a CSV import (the server's line-numbered error shown as it is) and a
// dataset typed in as a table or JSON.
import { Link, useParams } from "react-router";
import { useDatasets } from "../../api/datasets";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { atLeast, useMembership } from "../../components/useWorkspaceRole";
import { formatDate } from "../../lib/format";
import { ImportCsvForm } from "./ImportCsvForm";
import { NewDatasetForm } from "./NewDatasetForm";

export function DatasetsScreen() {
  const { ws = "" } = useParams();
  const datasets = useDatasets(ws);
  const canEdit = atLeast(useMembership(), "editor");
  const items = datasets.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section className="page">
      <div className="page-head">
        <h1>Datasets</h1>
        <span className="muted">Test cases to run versions side by side on.</span>
      </div>
      {datasets.isPending && <Loading what="Loading datasets" />}
      <ErrorBox error={datasets.error} />
      {datasets.data && items.length === 0 && <Empty>No datasets yet. Import a CSV file or type some cases below.</Empty>}
      {items.length > 0 && (
        <table className="table spaced" aria-label="Datasets" data-testid="dataset-list">
          <thead>
            <tr>
              <th>Name</th>
              <th>Cases</th>
              <th>Variables</th>
              <th>Expected outputs</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {items.map((d) => (
              <tr key={d.id}>
                <td>
                  <Link to={`/w/${ws}/datasets/${d.id}`}>{d.name}</Link>
                </td>
                <td>{d.row_count}</td>
                <td>{d.variables.join(", ") || "—"}</td>
                <td>{d.has_expected ? "yes" : "—"}</td>
                <td>{formatDate(d.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {datasets.hasNextPage && (
        <button type="button" onClick={() => void datasets.fetchNextPage()} disabled={datasets.isFetchingNextPage}>
          Load more
        </button>
      )}
      {canEdit && (
        <div className="two-columns">
          <ImportCsvForm ws={ws} />
          <NewDatasetForm ws={ws} />
        </div>
      )}
    </section>
  );
}

import { useState } from "react";
import { Link, useParams } from "react-router";
import { usePrompts } from "../../api/prompts";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { atLeast, useMembership } from "../../components/useWorkspaceRole";
import { formatDate } from "../../lib/format";
import { NewPromptForm } from "./NewPromptForm";

export function PromptsScreen() {
  const { ws = "" } = useParams();
  const membership = useMembership();
  const prompts = usePrompts(ws);
  const [search, setSearch] = useState("");
  const needle = search.trim().toLowerCase();
  const items = (prompts.data?.items ?? []).filter(
    (p) => !needle || p.name.toLowerCase().includes(needle) || p.description.toLowerCase().includes(needle),
  );
  return (
    <section className="page">
      <div className="page-head">
        <h1>Prompts</h1>
        <label className="search">
          <span className="visually-hidden">Search prompts</span>
          <input type="search" placeholder="Search prompts" value={search} onChange={(e) => setSearch(e.target.value)} />
        </label>
      </div>
      {atLeast(membership, "editor") && <NewPromptForm ws={ws} />}
      {prompts.isPending && <Loading what="Loading prompts" />}
      <ErrorBox error={prompts.error} />
      {prompts.data && items.length === 0 && (
        <Empty>{needle ? `No prompt matches “${search}”.` : "No prompts yet: create the first one above."}</Empty>
      )}
      {items.length > 0 && (
        <table className="table" aria-label="Prompts">
          <thead>
            <tr>
              <th>Name</th>
              <th>Description</th>
              <th>Latest version</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {items.map((p) => (
              <tr key={p.id}>
                <td>
                  <Link to={`/w/${ws}/prompts/${p.id}`}>{p.name}</Link>
                </td>
                <td>{p.description}</td>
                <td>{p.latest_version ?? "—"}</td>
                <td>{formatDate(p.updated_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

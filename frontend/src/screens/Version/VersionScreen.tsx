// One version: its content, labels, a diff against any other version, and its comment thread.
import { Link, useParams } from "react-router";
import { ApiError } from "../../api/client";
import { usePrompt, useVersion } from "../../api/prompts";
import { ErrorBox, Loading } from "../../components/States";
import { contentText } from "../../lib/content";
import { formatDate } from "../../lib/format";
import { NotFoundScreen } from "../NotFound/NotFoundScreen";
import { Comments } from "./Comments";
import { Labels } from "./Labels";
import { VersionDiff } from "./VersionDiff";
import { VersionList } from "./VersionList";

export function VersionScreen() {
  const { ws = "", promptId = "", number = "" } = useParams();
  const n = Number(number);
  const prompt = usePrompt(ws, promptId);
  const version = useVersion(ws, promptId, Number.isInteger(n) && n > 0 ? n : null);
  const error = prompt.error ?? version.error;
  if (error instanceof ApiError && error.status === 404) return <NotFoundScreen what="version" />;
  if (error) return <ErrorBox error={error} />;
  if (!prompt.data || !version.data) return <Loading what="Loading the version" />;
  const v = version.data;
  return (
    <section className="page">
      <div className="page-head">
        <h1>
          <Link to={`/w/${ws}/prompts/${promptId}`}>{prompt.data.name}</Link> · v{v.number}
        </h1>
        <Link className="button" to={`/w/${ws}/prompts/${promptId}?version=${v.number}`}>
          Open in editor
        </Link>
      </div>
      <p className="muted">
        {v.message || "No message"} · {formatDate(v.created_at)} · variables: {v.variables.join(", ") || "none"}
      </p>
      <div className="two-columns">
        <div>
          <section className="panel" aria-label="Content">
            <h2 className="panel-title">System</h2>
            <pre className="content">{v.system || "—"}</pre>
            {v.messages.map((m, i) => (
              <div key={i}>
                <h3 className="panel-title">{String(m.role)}</h3>
                <pre className="content">{contentText(m.content)}</pre>
              </div>
            ))}
            <h3 className="panel-title">Model</h3>
            <pre className="content">{JSON.stringify(v.model_config, null, 2)}</pre>
          </section>
          <VersionDiff ws={ws} promptId={promptId} version={v} latest={prompt.data.latest_version ?? v.number} />
        </div>
        <div>
          <Labels ws={ws} promptId={promptId} number={v.number} />
          <Comments ws={ws} promptId={promptId} number={v.number} />
          <VersionList ws={ws} promptId={promptId} current={v.number} />
        </div>
      </div>
    </section>
  );
}

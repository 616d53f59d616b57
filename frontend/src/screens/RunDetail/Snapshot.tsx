import { contentText } from "../../lib/content";

type Block = { type?: string; source?: { media_type?: string; data?: string } };

// The pinned request: rendered messages (images shown), variable values, tools and output schema, effective
// model configuration.
export function Snapshot({ snapshot }: { snapshot: Record<string, unknown> | null }) {
  if (!snapshot) return null;
  const messages = (snapshot.messages ?? []) as { role: string; content: unknown }[];
  return (
    <section className="panel" aria-label="Snapshot">
      <h2 className="panel-title">Pinned snapshot</h2>
      <h3>Variables</h3>
      <pre className="content">{JSON.stringify(snapshot.variables ?? {}, null, 2)}</pre>
      <h3>System</h3>
      <pre className="content">{String(snapshot.system ?? "") || "—"}</pre>
      {messages.map((m, i) => (
        <div key={i} data-testid={`snapshot-message-${i}`}>
          <h3>{m.role}</h3>
          <pre className="content">{contentText(m.content)}</pre>
          {Array.isArray(m.content) &&
            (m.content as Block[])
              .filter((b) => b.type === "image" && b.source?.data)
              .map((b, j) => (
                <img key={j} className="snapshot-image" src={`data:${b.source?.media_type};base64,${b.source?.data}`} alt={`Image ${j + 1} of the ${m.role} message ${i + 1}`} />
              ))}
        </div>
      ))}
      {Array.isArray(snapshot.tools) && snapshot.tools.length > 0 && (
        <>
          <h3>Tools{snapshot.tool_choice ? ` (choice: ${JSON.stringify(snapshot.tool_choice)})` : ""}</h3>
          <pre className="content">{JSON.stringify(snapshot.tools, null, 2)}</pre>
        </>
      )}
      {snapshot.output_schema ? (
        <>
          <h3>Output schema</h3>
          <pre className="content">{JSON.stringify(snapshot.output_schema, null, 2)}</pre>
        </>
      ) : null}
      <h3>Model configuration</h3>
      <pre className="content">{JSON.stringify(snapshot.model_config ?? {}, null, 2)}</pre>
    </section>
  );
}

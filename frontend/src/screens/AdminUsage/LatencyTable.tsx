import { useState } from "react";
import { useLatency } from "../../api/usage";
import { Empty, ErrorBox } from "../../components/States";
import { formatMs } from "../../lib/format";

export function LatencyTable({ ws, names }: { ws: string; names: Record<string, string> }) {
  const [by, setBy] = useState<"model" | "prompt">("model");
  const latency = useLatency(ws, by);
  return (
    <section className="panel" aria-label="Latency">
      <h2 className="panel-title">Latency by {by} (p50 / p95, histogram bucket bounds)</h2>
      <div className="tabs" role="group" aria-label="Latency by">
        {(["model", "prompt"] as const).map((b) => (
          <button key={b} type="button" aria-pressed={b === by} onClick={() => setBy(b)}>
            By {b}
          </button>
        ))}
      </div>
      <ErrorBox error={latency.error} />
      {latency.data?.length === 0 && <Empty>No finished runs yet.</Empty>}
      {latency.data && latency.data.length > 0 && (
        <table className="table compact">
          <thead>
            <tr>
              <th>{by === "model" ? "Model" : "Prompt"}</th>
              <th>TTFT p50</th>
              <th>TTFT p95</th>
              <th>Duration p50</th>
              <th>Duration p95</th>
            </tr>
          </thead>
          <tbody>
            {latency.data.map((row) => (
              <tr key={row.key}>
                <td>{names[row.key] ?? row.key}</td>
                <td>{formatMs(row.ttft_ms.p50)}</td>
                <td>{formatMs(row.ttft_ms.p95)}</td>
                <td>{formatMs(row.duration_ms.p50)}</td>
                <td>{formatMs(row.duration_ms.p95)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

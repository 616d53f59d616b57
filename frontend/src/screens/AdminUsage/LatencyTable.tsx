import { useLatency } from "../../api/usage";
import { Empty, ErrorBox } from "../../components/States";
import { formatMs } from "../../lib/format";

export function LatencyTable({ ws }: { ws: string }) {
  const latency = useLatency(ws, "model");
  return (
    <section className="panel" aria-label="Latency">
      <h2 className="panel-title">Latency by model</h2>
      <ErrorBox error={latency.error} />
      {latency.data?.length === 0 && <Empty>No finished runs yet.</Empty>}
      {latency.data && latency.data.length > 0 && (
        <table className="table compact">
          <thead>
            <tr>
              <th>Model</th>
              <th>TTFT p50</th>
              <th>TTFT p95</th>
              <th>Duration p50</th>
              <th>Duration p95</th>
            </tr>
          </thead>
          <tbody>
            {latency.data.map((row) => (
              <tr key={row.key}>
                <td>{row.key}</td>
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

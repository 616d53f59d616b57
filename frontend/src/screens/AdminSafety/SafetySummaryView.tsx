import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { SafetySummary } from "../../api/safety";

const COLORS: Record<string, string> = { pii: "#4f46e5", secret: "#b42318", injection: "#b54708", refusal: "#067647" };

/** Open flags by kind, flags per day and kind (the last `days` days), refusal rate per model. */
export function SafetySummaryView({ summary }: { summary: SafetySummary }) {
  const kinds = Object.keys(COLORS);
  const days = new Map<string, Record<string, number | string>>();
  for (const row of summary.by_day) {
    const day = days.get(row.day) ?? { day: row.day };
    day[row.kind] = row.count;
    days.set(row.day, day);
  }
  const data = [...days.values()].sort((a, b) => String(a.day).localeCompare(String(b.day)));
  return (
    <>
      <div className="kpis">
        {kinds.map((k) => (
          <div className="kpi" key={k}>
            <span>Open {k}</span>
            <strong>{summary.open[k] ?? 0}</strong>
          </div>
        ))}
      </div>
      <div className="chart" role="figure" aria-label={`Flags per day, last ${summary.days} days`}>
        {data.length === 0 ? (
          <p className="state empty">No flags in the last {summary.days} days.</p>
        ) : (
          <ResponsiveContainer width="100%" height={220}>
            <BarChart data={data} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
              <CartesianGrid strokeDasharray="3 3" />
              <XAxis dataKey="day" />
              <YAxis allowDecimals={false} />
              <Tooltip />
              <Legend />
              {kinds.map((k) => (
                <Bar key={k} dataKey={k} stackId="flags" fill={COLORS[k]} maxBarSize={48} isAnimationActive={false} />
              ))}
            </BarChart>
          </ResponsiveContainer>
        )}
      </div>
      {summary.refusal_rate.length > 0 && (
        <table className="table compact spaced" aria-label="Refusal rate per model">
          <thead>
            <tr>
              <th>Model</th>
              <th>Runs</th>
              <th>Refusals</th>
              <th>Rate</th>
            </tr>
          </thead>
          <tbody>
            {summary.refusal_rate.map((r) => (
              <tr key={`${r.provider}/${r.model}`}>
                <td>
                  {r.provider}/{r.model}
                </td>
                <td>{r.runs}</td>
                <td>{r.refusals}</td>
                <td>{(r.rate * 100).toFixed(1)}%</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

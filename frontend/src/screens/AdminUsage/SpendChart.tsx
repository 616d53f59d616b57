import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { UsageRow } from "../../api/types";
import { Empty } from "../../components/States";

type Props = { rows: UsageRow[]; groupBy: string; names: Record<string, string> };

export function SpendChart({ rows, groupBy, names }: Props) {
  const label = (key: string) => names[key] ?? key;
  const short = (text: string) => (text.length > 18 ? `${text.slice(0, 16)}…` : text);
  const data = rows.map((r) => ({ key: short(label(r.key)), cost: Number(r.cost_usd), runs: r.runs }));
  return (
    <div className="chart" data-testid="usage-chart" aria-label={`Spend by ${groupBy}`} role="figure">
      {data.length === 0 ? (
        <Empty>No runs in this period yet.</Empty>
      ) : (
        <ResponsiveContainer width="100%" height={280}>
          <BarChart data={data} margin={{ top: 8, right: 16, bottom: 8, left: 16 }}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis dataKey="key" />
            <YAxis tickFormatter={(v: number) => `$${v}`} />
            <Tooltip formatter={(value) => [`$${Number(value).toFixed(6)}`, "spend"]} />
            <Bar dataKey="cost" fill="#4f46e5" maxBarSize={56} isAnimationActive={false} />
          </BarChart>
        </ResponsiveContainer>
      )}
      <table className="table compact" aria-label={`Spend by ${groupBy}`}>
        <thead>
          <tr>
            <th>{groupBy}</th>
            <th>Runs</th>
            <th>Tokens in / out</th>
            <th>Spend</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.key}>
              <td>{label(r.key)}</td>
              <td>{r.runs}</td>
              <td>
                {r.input_tokens} / {r.output_tokens}
              </td>
              <td>${r.cost_usd}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

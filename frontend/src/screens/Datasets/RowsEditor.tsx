// Test cases typed in: a table (a column per variable, a row per case, optionally an expected output) or
// JSON. Used for a new dataset and for a comparison's ad-hoc cases.
import { useState } from "react";
import { type Cases, casesFromJson, casesFromTable, type Table } from "./rows";

export type RowsInput = { mode: "table"; table: Table } | { mode: "json"; json: string };

export function casesOf(input: RowsInput): Cases | string {
  return input.mode === "table" ? casesFromTable(input.table) : casesFromJson(input.json);
}

export function RowsEditor({ value, onChange, idPrefix }: { value: RowsInput; onChange: (v: RowsInput) => void; idPrefix: string }) {
  const [lastTable, setLastTable] = useState<Table | null>(value.mode === "table" ? value.table : null);
  const switchTo = (mode: "table" | "json") => {
    if (mode === value.mode) return;
    if (value.mode === "table") {
      setLastTable(value.table);
      const cases = casesFromTable(value.table);
      const json = typeof cases === "string" ? "[]" : JSON.stringify(cases.expected ? cases : cases.rows, null, 2);
      onChange({ mode: "json", json });
    } else {
      onChange({ mode: "table", table: lastTable ?? { columns: ["input"], rows: [[""]], expected: null } });
    }
  };
  return (
    <div className="rows-editor">
      <div className="tabs" role="group" aria-label="Enter the cases as">
        <button type="button" aria-pressed={value.mode === "table"} onClick={() => switchTo("table")}>
          Table
        </button>
        <button type="button" aria-pressed={value.mode === "json"} onClick={() => switchTo("json")}>
          JSON
        </button>
      </div>
      {value.mode === "json" ? (
        <label>
          Cases as JSON
          <textarea
            className="json-box"
            rows={8}
            value={value.json}
            onChange={(e) => onChange({ mode: "json", json: e.target.value })}
            data-testid={`${idPrefix}-json`}
            placeholder={'[{"question": "…"}]  or  {"rows": [...], "expected": [...]}'}
          />
        </label>
      ) : (
        <TableEditor table={value.table} onChange={(table) => onChange({ mode: "table", table })} idPrefix={idPrefix} />
      )}
    </div>
  );
}

function TableEditor({ table, onChange, idPrefix }: { table: Table; onChange: (t: Table) => void; idPrefix: string }) {
  const setColumn = (i: number, name: string) => onChange({ ...table, columns: table.columns.map((c, j) => (j === i ? name : c)) });
  const setCell = (r: number, c: number, v: string) =>
    onChange({ ...table, rows: table.rows.map((row, i) => (i === r ? row.map((x, j) => (j === c ? v : x)) : row)) });
  const setExpected = (r: number, v: string) => onChange({ ...table, expected: (table.expected ?? []).map((x, i) => (i === r ? v : x)) });
  const addColumn = () =>
    onChange({ ...table, columns: [...table.columns, `var${table.columns.length + 1}`], rows: table.rows.map((r) => [...r, ""]) });
  const removeColumn = (i: number) =>
    onChange({ ...table, columns: table.columns.filter((_, j) => j !== i), rows: table.rows.map((r) => r.filter((_, j) => j !== i)) });
  const addRow = () =>
    onChange({ ...table, rows: [...table.rows, table.columns.map(() => "")], expected: table.expected ? [...table.expected, ""] : null });
  const removeRow = (i: number) =>
    onChange({ ...table, rows: table.rows.filter((_, j) => j !== i), expected: table.expected?.filter((_, j) => j !== i) ?? null });
  const toggleExpected = () => onChange({ ...table, expected: table.expected ? null : table.rows.map(() => "") });
  return (
    <div className="rows-table">
      <table className="table compact" aria-label="Cases">
        <thead>
          <tr>
            <th>#</th>
            {table.columns.map((name, i) => (
              <th key={i}>
                <span className="column-head">
                  <input
                    aria-label={`Variable name of column ${i + 1}`}
                    value={name}
                    onChange={(e) => setColumn(i, e.target.value)}
                    data-testid={`${idPrefix}-column-${i}`}
                  />
                  {table.columns.length > 1 && (
                    <button type="button" className="link" aria-label={`Remove column ${name}`} onClick={() => removeColumn(i)}>
                      ×
                    </button>
                  )}
                </span>
              </th>
            ))}
            {table.expected && <th>Expected output</th>}
            <th />
          </tr>
        </thead>
        <tbody>
          {table.rows.map((row, r) => (
            <tr key={r}>
              <td>{r + 1}</td>
              {row.map((v, c) => (
                <td key={c}>
                  <textarea
                    rows={1}
                    aria-label={`Row ${r + 1}, ${table.columns[c] ?? ""}`}
                    value={v}
                    onChange={(e) => setCell(r, c, e.target.value)}
                    data-testid={`${idPrefix}-cell-${r}-${c}`}
                  />
                </td>
              ))}
              {table.expected && (
                <td>
                  <textarea rows={1} aria-label={`Row ${r + 1}, expected output`} value={table.expected[r] ?? ""} onChange={(e) => setExpected(r, e.target.value)} />
                </td>
              )}
              <td>
                <button type="button" className="link" aria-label={`Remove row ${r + 1}`} onClick={() => removeRow(r)}>
                  ×
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="run-actions">
        <button type="button" onClick={addRow}>
          Add row
        </button>
        <button type="button" onClick={addColumn}>
          Add variable
        </button>
        <label className="checkbox">
          <input type="checkbox" checked={table.expected !== null} onChange={toggleExpected} />
          Expected outputs
        </label>
      </div>
    </div>
  );
}

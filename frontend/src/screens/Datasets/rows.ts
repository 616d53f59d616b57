// Test cases typed in by hand: a small table (variables as columns, an optional expected output) or JSON,
// turned into the API's `{rows, expected}` with a message naming what is wrong (pure: unit-tested).
export type Cases = { rows: Record<string, string>[]; expected: (string | null)[] | null };
export type Table = { columns: string[]; rows: string[][]; expected: string[] | null };

const NAME = /^[A-Za-z0-9_]{1,64}$/;

export function emptyTable(columns: string[] = ["input"]): Table {
  return { columns, rows: [columns.map(() => "")], expected: null };
}

export function casesFromTable(table: Table): Cases | string {
  const columns = table.columns.map((c) => c.trim());
  for (const [i, name] of columns.entries()) {
    if (!NAME.test(name)) return `Column ${i + 1}: "${name}" is not a variable name (letters, digits and _, up to 64)`;
    if (columns.indexOf(name) !== i) return `Column ${i + 1}: "${name}" is there twice`;
  }
  const keep = table.rows
    .map((row, i) => ({ row, expected: table.expected?.[i] ?? "" }))
    .filter(({ row, expected }) => row.some((v) => v !== "") || expected !== "");
  return {
    rows: keep.map(({ row }) => Object.fromEntries(columns.map((name, i) => [name, row[i] ?? ""]))),
    expected: table.expected ? keep.map(({ expected }) => (expected === "" ? null : expected)) : null,
  };
}

/** `[{"var": "value"}, ...]`, or `{"rows": [...], "expected": [...]}` as the API reads and answers it. */
export function casesFromJson(text: string): Cases | string {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return `Not JSON: ${e instanceof Error ? e.message : String(e)}`;
  }
  const object = data && typeof data === "object" && !Array.isArray(data) ? (data as Record<string, unknown>) : null;
  const rows = Array.isArray(data) ? data : object?.rows;
  if (!Array.isArray(rows)) return 'Give a list of rows, [{"name": "value"}, ...], or {"rows": [...], "expected": [...]}';
  for (const [i, row] of rows.entries()) {
    if (!row || typeof row !== "object" || Array.isArray(row)) return `Row ${i + 1} is not an object of variable values`;
    for (const [name, value] of Object.entries(row as Record<string, unknown>)) {
      if (!NAME.test(name)) return `Row ${i + 1}: "${name}" is not a variable name`;
      if (typeof value !== "string") return `Row ${i + 1}: the value of "${name}" is not a string`;
    }
  }
  let expected: (string | null)[] | null = null;
  if (object && object.expected !== undefined && object.expected !== null) {
    if (!Array.isArray(object.expected) || object.expected.length !== rows.length)
      return `"expected" needs one entry per row (${rows.length})`;
    if (object.expected.some((e) => e !== null && typeof e !== "string")) return '"expected" holds strings or null';
    expected = object.expected as (string | null)[];
  }
  return { rows: rows as Record<string, string>[], expected };
}

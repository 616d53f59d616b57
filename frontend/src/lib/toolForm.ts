// The tool editor's rows (name, description, input schema as text) and their checks, the server's rules
// told in the browser and tied to the field at fault (pure, except the meta-schema check: unit-tested).
import { jsonText, type Tools } from "./jsonField";
import { metaSchemaProblem, objectSchemaProblem } from "./schemaCheck";

export type ToolRow = { name: string; description: string; schema: string };
export type ToolErrors = { name?: string; description?: string; input_schema?: string };

export const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
export const MAX_TOOLS = 64;
const MAX_DESCRIPTION = 4096;

export const emptyRow = (): ToolRow => ({ name: "", description: "", schema: '{\n  "type": "object",\n  "properties": {}\n}' });

export function rowsOf(tools: Tools): ToolRow[] {
  return tools.map((t) => ({ name: t.name, description: t.description ?? "", schema: jsonText(t.input_schema) }));
}

/** Problems of parsed tools, one entry per tool (empty when it is fine): names, descriptions, schemas. */
export function toolErrors(tools: readonly { name: unknown; description?: unknown; input_schema: unknown }[]): ToolErrors[] {
  const counts = new Map<unknown, number>();
  for (const t of tools) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
  return tools.map((t) => {
    const errors: ToolErrors = {};
    if (typeof t.name !== "string" || !TOOL_NAME.test(t.name)) errors.name = "Name: 1 to 64 letters, digits, _ or -";
    else if ((counts.get(t.name) ?? 0) > 1) errors.name = `Name: "${t.name}" is used by another tool`;
    if (t.description !== undefined && typeof t.description !== "string") errors.description = "Description: must be text";
    else if (typeof t.description === "string" && t.description.length > MAX_DESCRIPTION)
      errors.description = `Description: at most ${MAX_DESCRIPTION} characters`;
    const schema = objectSchemaProblem(t.input_schema);
    if (schema) errors.input_schema = `Input schema ${schema}`;
    return errors;
  });
}

export const hasErrors = (errors: readonly ToolErrors[]) => errors.some((e) => Object.keys(e).length > 0);

/** The rows as tools when every field is right (sync checks), else each row's problems. */
export function checkRows(rows: readonly ToolRow[]): { tools: Tools | null; errors: ToolErrors[] } {
  const parsed = rows.map((row) => {
    try {
      return { ok: true as const, value: row.schema.trim() === "" ? undefined : (JSON.parse(row.schema) as unknown) };
    } catch (e) {
      return { ok: false as const, error: `Input schema: invalid JSON (${e instanceof Error ? e.message : String(e)})` };
    }
  });
  const errors = toolErrors(rows.map((row, i) => {
    const p = parsed[i];
    return { name: row.name, description: row.description, input_schema: p?.ok ? p.value : {} };
  }));
  parsed.forEach((p, i) => {
    const e = errors[i];
    if (!p.ok && e) e.input_schema = p.error;
    else if (p.ok && p.value === undefined && e) e.input_schema = "Input schema: required (an object schema)";
  });
  if (rows.length > MAX_TOOLS && errors[MAX_TOOLS]) errors[MAX_TOOLS].name = `At most ${MAX_TOOLS} tools`;
  if (hasErrors(errors)) return { tools: null, errors };
  const tools = rows.map((row, i) => {
    const p = parsed[i];
    return { name: row.name, description: row.description, input_schema: (p?.ok ? p.value : {}) as Record<string, unknown> };
  });
  return { tools, errors };
}

/** The meta-schema check of each tool's input schema (async): one entry per tool. */
export async function schemaErrors(tools: Tools): Promise<ToolErrors[]> {
  return Promise.all(
    tools.map(async (t) => {
      const problem = await metaSchemaProblem(t.input_schema);
      return problem ? { input_schema: `Input schema ${problem}` } : {};
    }),
  );
}

/** The first problem of some tools, said with which tool (for the JSON view's one error line). */
export function firstToolError(errors: readonly ToolErrors[]): string | null {
  for (const [i, e] of errors.entries()) {
    const message = e.name ?? e.description ?? e.input_schema;
    if (message) return `Tool ${i + 1}: ${message}`;
  }
  return null;
}

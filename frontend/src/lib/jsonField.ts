// Parsing the editor's JSON fields (tools, output schema) before they go into the draft (pure: unit-tested).
import type { VersionContent } from "../api/types";
import { isObject } from "./schemaCheck";
import { firstToolError, toolErrors } from "./toolForm";

export type Tools = NonNullable<VersionContent["tools"]>;
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

function parse(text: string): Parsed<unknown> {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    return { ok: false, error: `Invalid JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** A JSON array of {name, description?, input_schema}; empty text is no tools. Names, their uniqueness and
 * object schemas are checked here (the meta-schema asynchronously, by the caller). */
export function parseTools(text: string): Parsed<Tools> {
  if (text.trim() === "") return { ok: true, value: [] };
  const parsed = parse(text);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  if (!Array.isArray(value)) return { ok: false, error: "Tools must be a JSON array of {name, description, input_schema}" };
  for (const [i, tool] of value.entries()) {
    if (!isObject(tool) || typeof tool.name !== "string" || !isObject(tool.input_schema))
      return { ok: false, error: `Tool ${i + 1} needs a "name" and an "input_schema" object` };
  }
  const problem = firstToolError(toolErrors(value as { name: unknown; input_schema: unknown }[]));
  if (problem) return { ok: false, error: problem };
  return { ok: true, value: value.map((t) => ({ description: "", ...t })) as Tools };
}

/** A JSON Schema object; empty text is no output schema. */
export function parseSchema(text: string): Parsed<Record<string, unknown> | null> {
  if (text.trim() === "") return { ok: true, value: null };
  const parsed = parse(text);
  if (!parsed.ok) return parsed;
  if (!isObject(parsed.value)) return { ok: false, error: "The output schema must be a JSON object" };
  if (parsed.value.type !== "object") return { ok: false, error: 'The output schema must describe an object ("type": "object")' };
  return { ok: true, value: parsed.value };
}

export function jsonText(value: unknown): string {
  if (value === null || value === undefined || (Array.isArray(value) && value.length === 0)) return "";
  return JSON.stringify(value, null, 2);
}

// JSON Schemas typed in the editor (tool input schemas, the output schema), checked in the browser as the
// server checks them: an object schema, valid against the draft 2020-12 meta-schema. The meta-schema check
// uses @hyperjump/json-schema, which interprets schemas (ajv compiles them with `new Function`, which the
// app's Content-Security-Policy forbids).
import type { Json } from "@hyperjump/json-pointer";

const META_SCHEMA = "https://json-schema.org/draft/2020-12/schema";

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** What is wrong with a parsed value as an object schema, without the meta-schema (sync), or null. */
export function objectSchemaProblem(value: unknown): string | null {
  if (!isObject(value)) return "must be a JSON object (a JSON Schema)";
  if (value.type !== "object") return 'must describe an object ("type": "object")';
  if (JSON.stringify(value).length > 100_000) return "is larger than 100 KB";
  return null;
}

type Unit = { keyword?: string; instanceLocation?: string; errors?: Unit[] };

function deepest(units: Unit[]): Unit | undefined {
  let best: Unit | undefined;
  for (const unit of units) {
    const inner = unit.errors?.length ? deepest(unit.errors) : unit;
    if (inner && (!best || (inner.instanceLocation ?? "").length > (best.instanceLocation ?? "").length)) best = inner;
  }
  return best;
}

let validator: Promise<(value: Json, format: "BASIC") => { valid: boolean; errors?: Unit[] }> | null = null;

/** Whether `schema` is valid JSON Schema (draft 2020-12): null, or where and which rule it breaks. */
export async function metaSchemaProblem(schema: unknown): Promise<string | null> {
  validator ??= import("@hyperjump/json-schema/draft-2020-12").then(({ validate }) => validate(META_SCHEMA));
  const output = (await validator)(schema as Json, "BASIC");
  if (output.valid) return null;
  const unit = deepest(output.errors ?? []);
  const where = (unit?.instanceLocation ?? "#").replace(/^#/, "") || "the top level";
  const rule = (unit?.keyword ?? "").split("/").pop();
  return `is not a valid JSON Schema: ${where} breaks the "${rule || "schema"}" rule of the meta-schema`;
}

/** Both checks: the quick one first, then the meta-schema. */
export async function schemaProblem(value: unknown): Promise<string | null> {
  return objectSchemaProblem(value) ?? (await metaSchemaProblem(value));
}

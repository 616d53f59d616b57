import { describe, expect, it } from "vitest";
import { checkRows, emptyRow, firstToolError, rowsOf, schemaErrors } from "./toolForm";

const row = (name: string, schema = '{"type": "object"}', description = "") => ({ name, description, schema });

describe("tool rows", () => {
  it("become tools when every field is right", () => {
    const tools = [{ name: "get-weather_2", description: "Weather", input_schema: { type: "object", properties: { city: { type: "string" } } } }];
    expect(checkRows(rowsOf(tools))).toEqual({ tools, errors: [{}] });
    expect(checkRows([])).toEqual({ tools: [], errors: [] });
    expect(checkRows([{ ...emptyRow(), name: "t" }]).tools).toEqual([{ name: "t", description: "", input_schema: { type: "object", properties: {} } }]);
  });

  it("name the field at fault: name pattern, duplicates, JSON, an object schema", () => {
    const { tools, errors } = checkRows([
      row(""),
      row("x".repeat(65)),
      row("dup"),
      row("dup"),
      row("bad-json", "{"),
      row("array", '{"type": "array"}'),
      row("empty", " "),
      row("long", '{"type": "object"}', "d".repeat(4097)),
    ]);
    expect(tools).toBeNull();
    expect(errors[0]).toEqual({ name: "Name: 1 to 64 letters, digits, _ or -" });
    expect(errors[1]).toEqual({ name: "Name: 1 to 64 letters, digits, _ or -" });
    expect(errors[2]).toEqual({ name: 'Name: "dup" is used by another tool' });
    expect(errors[3]).toEqual({ name: 'Name: "dup" is used by another tool' });
    expect(errors[4]?.input_schema).toMatch(/^Input schema: invalid JSON \(/);
    expect(errors[5]).toEqual({ input_schema: 'Input schema must describe an object ("type": "object")' });
    expect(errors[6]).toEqual({ input_schema: "Input schema: required (an object schema)" });
    expect(errors[7]).toEqual({ description: "Description: at most 4096 characters" });
    expect(firstToolError(errors)).toBe("Tool 1: Name: 1 to 64 letters, digits, _ or -");
    expect(firstToolError([{}, {}])).toBeNull();
  });

  it("checks each input schema against the JSON Schema meta-schema", async () => {
    const errors = await schemaErrors([
      { name: "a", description: "", input_schema: { type: "object", properties: { q: { type: "string" } }, required: ["q"] } },
      { name: "b", description: "", input_schema: { type: "object", properties: { q: { type: "strng" } } } },
      { name: "c", description: "", input_schema: { type: "object", minProperties: -1 } },
    ]);
    expect(errors[0]).toEqual({});
    expect(errors[1]?.input_schema).toMatch(/^Input schema is not a valid JSON Schema: \/properties\/q\/type /);
    expect(errors[2]?.input_schema).toMatch(/\/minProperties/);
  });
});

// `{{name}}` placeholders, as the server reads them (letters, digits, underscore; spaces inside allowed).
export const VARIABLE_PATTERN = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** The distinct variable names of some texts, in order of first appearance. */
export function extractVariables(texts: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const text of texts) {
    for (const match of text.matchAll(VARIABLE_PATTERN)) {
      if (match[1]) seen.add(match[1]);
    }
  }
  return [...seen];
}

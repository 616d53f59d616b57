// `{{name}}` placeholders, as the server reads them (letters, digits, underscore; spaces inside allowed).
export const VARIABLE_PATTERN = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;
// A placeholder with an odd run of backslashes before it is escaped text, not a variable (rendering.py).
const WITH_ESCAPES = /(\\*)\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** The distinct variable names of some texts, in order of first appearance. */
export function extractVariables(texts: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const text of texts) {
    for (const match of text.matchAll(WITH_ESCAPES)) {
      if (match[2] && (match[1] ?? "").length % 2 === 0) seen.add(match[2]);
    }
  }
  return [...seen];
}

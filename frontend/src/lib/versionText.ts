// A version as one readable text, for diffs: system, each message, then the model configuration.
import type { Version } from "../api/types";
import { contentText } from "./content";

export function versionText(version: Version): string {
  const parts = [`## system\n${version.system}`];
  version.messages.forEach((m, i) => parts.push(`## message ${i + 1} (${String(m.role)})\n${contentText(m.content)}`));
  const config = Object.entries(version.model_config)
    .filter(([, v]) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
  parts.push(`## model\n${config.join("\n")}`);
  return parts.join("\n\n") + "\n";
}

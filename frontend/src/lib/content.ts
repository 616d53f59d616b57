// A message's content: plain text, or a list of blocks (text, image, tool use, tool result).
import type { Message } from "../api/types";

export type MessageContent = Message["content"];

/** Readable text of any content: the text blocks as they are, the other blocks named in brackets. */
export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return content === null || content === undefined ? "" : JSON.stringify(content);
  return content
    .map((block: Record<string, unknown>) => {
      switch (block?.type) {
        case "text":
          return String(block.text ?? "");
        case "image":
          return `[image ${(block.source as { media_type?: string } | undefined)?.media_type ?? ""}]`.replace(" ]", "]");
        case "tool_use":
          return `[tool use ${String(block.name ?? "")}: ${JSON.stringify(block.input ?? {})}]`;
        case "tool_result":
          return `[tool result${block.is_error ? " (error)" : ""}: ${String(block.content ?? "")}]`;
        default:
          return JSON.stringify(block);
      }
    })
    .join("\n");
}

/** Content the editor can take as it is: anything that arrived as a string (blocks are kept untouched). */
export function asContent(content: unknown): MessageContent {
  return typeof content === "string" || Array.isArray(content) ? (content as MessageContent) : "";
}

/** The texts of a message that may hold `{{variables}}`: the string, or its text blocks (as the server reads). */
export function templateTexts(content: unknown): string[] {
  if (typeof content === "string") return [content];
  if (!Array.isArray(content)) return [];
  return content.filter((b) => b?.type === "text" && typeof b.text === "string").map((b) => b.text as string);
}

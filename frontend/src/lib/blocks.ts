// Content blocks of a message (text, image, tool use, tool result) as the editor builds them, and the
// browser-side checks of an attached image: the server's rules (PNG, JPEG, GIF or WebP, at most 1 MiB
// decoded, contents matching the type), told before anything is sent.
import type { components } from "../api/schema";
import type { Message } from "../api/types";

type S = components["schemas"];
export type Block = S["TextBlock"] | S["ImageBlock"] | S["ToolUseBlock"] | S["ToolResultBlock"];
export type ImageBlock = S["ImageBlock"];
export type ImageMediaType = S["ImageSource"]["media_type"];

export const MAX_IMAGE_BYTES = 1024 * 1024;
// A run or save is one request, capped at 2 MiB: the images' base64 has to leave room for the rest.
export const MAX_IMAGES_BASE64_CHARS = 1_900_000;
export const IMAGE_ACCEPT = "image/png,image/jpeg,image/gif,image/webp";

const startsWith = (bytes: Uint8Array, text: string, at = 0) =>
  bytes.length >= at + text.length && [...text].every((c, i) => bytes[at + i] === c.charCodeAt(0));

/** The image type its first bytes say, or null when they are none of the four. */
export function sniffImageType(bytes: Uint8Array): ImageMediaType | null {
  if (startsWith(bytes, "\x89PNG\r\n\x1a\n")) return "image/png";
  if (startsWith(bytes, "\xff\xd8\xff")) return "image/jpeg";
  if (startsWith(bytes, "GIF87a") || startsWith(bytes, "GIF89a")) return "image/gif";
  if (startsWith(bytes, "RIFF") && startsWith(bytes, "WEBP", 8)) return "image/webp";
  return null;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

export type ImageCheck = { ok: true; mediaType: ImageMediaType } | { ok: false; error: string };

/** Whether a file may be attached: its size and what its bytes are (its declared type is not trusted). */
export function checkImage(name: string, bytes: Uint8Array): ImageCheck {
  const mediaType = sniffImageType(bytes);
  if (!mediaType) return { ok: false, error: `${name} is not a PNG, JPEG, GIF or WebP image.` };
  if (bytes.length > MAX_IMAGE_BYTES)
    return { ok: false, error: `${name} is ${formatBytes(bytes.length)}; an image can be at most 1 MiB.` };
  return { ok: true, mediaType };
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export function imageBlock(mediaType: ImageMediaType, bytes: Uint8Array): ImageBlock {
  return { type: "image", source: { type: "base64", media_type: mediaType, data: toBase64(bytes) } };
}

/** The base64 characters of every image in some messages (what they add to a request). */
export function imagesSize(messages: readonly Message[]): number {
  let total = 0;
  for (const m of messages) if (Array.isArray(m.content)) for (const b of m.content) if (b.type === "image") total += b.source.data.length;
  return total;
}

function readBytes(blob: Blob): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(new Uint8Array(reader.result as ArrayBuffer));
    reader.onerror = () => reject(reader.error ?? new Error("The file could not be read"));
    reader.readAsArrayBuffer(blob);
  });
}

/** An image file read and checked, as a block for `messages` (whose images count towards the limit). */
export async function readImage(file: File, messages: readonly Message[]): Promise<{ ok: true; block: ImageBlock } | { ok: false; error: string }> {
  // Refuse a huge file before reading it all: only its first bytes are needed to say so.
  const bytes = await readBytes(file.size > MAX_IMAGE_BYTES ? file.slice(0, 16) : file);
  const check = checkImage(file.name, bytes);
  if (!check.ok) return check;
  if (file.size > MAX_IMAGE_BYTES)
    return { ok: false, error: `${file.name} is ${formatBytes(file.size)}; an image can be at most 1 MiB.` };
  const block = imageBlock(check.mediaType, bytes);
  if (imagesSize(messages) + block.source.data.length > MAX_IMAGES_BASE64_CHARS)
    return { ok: false, error: `With ${file.name} the prompt's images would pass the 2 MiB a request may carry; remove an image first.` };
  return { ok: true, block };
}

/** Blocks of any content (a string becomes one text block). */
export function asBlocks(content: Message["content"]): Block[] {
  return typeof content === "string" ? [{ type: "text", text: content }] : content;
}

/** Content as sent: empty text blocks beside other blocks are dropped (providers refuse them). */
export function tidyContent(content: Message["content"]): Message["content"] {
  if (typeof content === "string") return content;
  const kept = content.filter((b) => b.type !== "text" || b.text.trim() !== "");
  return kept.length === 0 || kept.length === content.length ? content : kept;
}

/** Blocks back to the simplest content: no blocks or one text block is plain text again. */
export function simplify(blocks: Block[]): Message["content"] {
  if (blocks.length === 0) return "";
  if (blocks.length === 1 && blocks[0]?.type === "text") return blocks[0].text;
  return blocks;
}

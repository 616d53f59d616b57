// Continuing a conversation from a run (pure: unit-tested): the run's output becomes an assistant message
// (its text, then a tool_use block per tool call, the Messages API's shape the server validates), followed
// by a user message to write next: a tool_result block per call (the results to type in), else empty text.
import type { Message } from "../api/types";
import type { Block } from "./blocks";
import { isObject } from "./schemaCheck";

export type ToolCall = { id: string; name: string; input: unknown };

// As the server reads placeholders: a run of backslashes, then {{ name }} with spaces only.
const PLACEHOLDER = /(\\*)(\{\{ *[A-Za-z0-9_]+ *\}\})/g;

/** Text that renders to itself: a model's answer that says `{{x}}` must not become a variable. */
export function escapeTemplate(text: string): string {
  // k literal backslashes before a literal placeholder are written as 2k + 1 (see rendering.py).
  return text.replace(PLACEHOLDER, (_, slashes: string, placeholder: string) => "\\".repeat(2 * slashes.length + 1) + placeholder);
}

/** The assistant's turn of a run: its text and tool calls; null when it said and called nothing. */
export function assistantBlocks(output: string, toolCalls: readonly ToolCall[]): Block[] {
  const blocks: Block[] = [];
  if (output.trim() !== "") blocks.push({ type: "text", text: escapeTemplate(output) });
  for (const call of toolCalls) blocks.push({ type: "tool_use", id: call.id, name: call.name, input: isObject(call.input) ? call.input : {} });
  return blocks;
}

/** Whether a run has anything to continue from. */
export function canContinue(output: string, toolCalls: readonly ToolCall[]): boolean {
  return assistantBlocks(output, toolCalls).length > 0;
}

/** The messages with the run's answer appended (or, after an assistant prefill, joined to it) and the next
 * user turn waiting: tool results to fill in for its tool calls, otherwise an empty message. */
export function continueConversation(messages: readonly Message[], output: string, toolCalls: readonly ToolCall[]): Message[] {
  const answer = assistantBlocks(output, toolCalls);
  if (answer.length === 0) return [...messages];
  const last = messages[messages.length - 1];
  const head = [...messages];
  let blocks = answer;
  // A prompt that ends with an assistant message is a prefill: the model went on from it.
  if (last?.role === "assistant") {
    head.pop();
    const prefill: Block[] = typeof last.content === "string" ? (last.content ? [{ type: "text", text: last.content }] : []) : last.content;
    const [first, ...rest] = answer;
    const tail = prefill[prefill.length - 1];
    blocks =
      tail?.type === "text" && first?.type === "text"
        ? [...prefill.slice(0, -1), { type: "text", text: tail.text + first.text }, ...rest]
        : [...prefill, ...answer];
  }
  const assistant: Message = { role: "assistant", content: blocks.length === 1 && blocks[0]?.type === "text" ? blocks[0].text : blocks };
  const calls = answer.filter((b) => b.type === "tool_use");
  const next: Message = {
    role: "user",
    content: calls.length ? calls.map((c) => ({ type: "tool_result", tool_use_id: c.id, content: "", is_error: false })) : "",
  };
  return [...head, assistant, next];
}

/** A conversation a provider will refuse although the server accepts it, said before running, or null.
 * Anthropic wants a tool call's thinking block (with its signature) back when thinking is on; runs do not
 * keep signatures, so a continued tool call can only be run there with thinking off. */
export function conversationWarning(provider: string, thinkingBudget: number | null | undefined, messages: readonly Message[]): string | null {
  const calls = messages.some((m) => m.role === "assistant" && Array.isArray(m.content) && m.content.some((b) => b.type === "tool_use"));
  if (provider === "anthropic" && thinkingBudget && calls)
    return "Anthropic needs the thinking of a continued tool call sent back, which runs do not keep: clear the thinking budget to run this conversation.";
  return null;
}

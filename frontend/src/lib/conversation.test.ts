import { describe, expect, it } from "vitest";
import type { Message } from "../api/types";
import { assistantBlocks, canContinue, continueConversation, conversationWarning, escapeTemplate } from "./conversation";
import { extractVariables } from "./variables";

const call = { id: "toolu_mock_0123456789ab", name: "search", input: { query: "red apples" } };

describe("continueConversation", () => {
  it("turns tool calls into tool_use blocks and waits for a result for each", () => {
    const messages: Message[] = [{ role: "user", content: "Find {{topic}}" }];
    const other = { id: "call_2", name: "weather", input: { city: "Oslo" } };
    expect(continueConversation(messages, "Let me look.", [call, other])).toEqual([
      { role: "user", content: "Find {{topic}}" },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Let me look." },
          { type: "tool_use", id: call.id, name: "search", input: { query: "red apples" } },
          { type: "tool_use", id: "call_2", name: "weather", input: { city: "Oslo" } },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: call.id, content: "", is_error: false },
          { type: "tool_result", tool_use_id: "call_2", content: "", is_error: false },
        ],
      },
    ]);
    expect(messages).toHaveLength(1); // the input is not changed
  });

  it("keeps a plain answer plain, with an empty user turn next", () => {
    expect(continueConversation([{ role: "user", content: "Hi" }], "Hello there ", [])).toEqual([
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello there " },
      { role: "user", content: "" },
    ]);
  });

  it("joins the answer to an assistant prefill the model went on from", () => {
    const prefill: Message[] = [
      { role: "user", content: "Count" },
      { role: "assistant", content: "One," },
    ];
    expect(continueConversation(prefill, " two, three", [])).toEqual([
      { role: "user", content: "Count" },
      { role: "assistant", content: "One, two, three" },
      { role: "user", content: "" },
    ]);
    expect(continueConversation(prefill, "", [call])[1]).toEqual({
      role: "assistant",
      content: [{ type: "text", text: "One," }, { type: "tool_use", ...call }],
    });
  });

  it("has nothing to continue from an empty answer without calls; odd inputs become {}", () => {
    expect(canContinue("  ", [])).toBe(false);
    expect(continueConversation([{ role: "user", content: "x" }], "", [])).toEqual([{ role: "user", content: "x" }]);
    expect(canContinue("", [call])).toBe(true);
    expect(assistantBlocks("", [{ id: "t", name: "n", input: "not an object" }])).toEqual([{ type: "tool_use", id: "t", name: "n", input: {} }]);
  });

  it("escapes what looks like a variable in the answer, so it renders as written", () => {
    expect(escapeTemplate("use {{name}} and \\{{x}} or {{ y }}")).toBe("use \\{{name}} and \\\\\\{{x}} or \\{{ y }}");
    expect(extractVariables([escapeTemplate("say {{name}} twice: \\\\{{name}}")])).toEqual([]);
    const [, assistant] = continueConversation([{ role: "user", content: "x" }], "Hi {{you}}", []);
    expect(assistant?.content).toBe("Hi \\{{you}}");
  });
});

describe("conversationWarning", () => {
  const continued = continueConversation([{ role: "user", content: "Find" }], "", [call]);
  it("warns of an Anthropic tool call continued with thinking on, and of nothing else", () => {
    expect(conversationWarning("anthropic", 2048, continued)).toMatch(/clear the thinking budget/);
    expect(conversationWarning("anthropic", null, continued)).toBeNull();
    expect(conversationWarning("mock", 2048, continued)).toBeNull();
    expect(conversationWarning("anthropic", 2048, [{ role: "user", content: "Find" }])).toBeNull();
  });
});

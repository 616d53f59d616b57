import { useState } from "react";
import { describe, expect, it } from "vitest";
import { fireEvent, render, screen } from "@testing-library/react";
import { type Draft, emptyDraft } from "../../lib/draft";
import { MessagesPanel } from "./MessagesPanel";

function Harness({ initial }: { initial: Draft }) {
  const [draft, setDraft] = useState(initial);
  return (
    <>
      <MessagesPanel draft={draft} readOnly={false} setDraft={(update) => setDraft(update)} onRun={() => {}} />
      <output data-testid="state">{JSON.stringify(draft.messages)}</output>
    </>
  );
}

const messages = () => JSON.parse(screen.getByTestId("state").textContent ?? "[]") as { role: string; content: string }[];

describe("MessagesPanel", () => {
  it("adds, reorders and removes messages, each with its editor hook", () => {
    const draft = { ...emptyDraft(), messages: [{ role: "user" as const, content: "first" }] };
    render(<Harness initial={draft} />);
    expect(screen.getByTestId("system-editor")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Remove message 1" })).toHaveProperty("disabled", true);

    fireEvent.click(screen.getByRole("button", { name: "+ Add message" }));
    expect(messages()).toEqual([
      { role: "user", content: "first" },
      { role: "assistant", content: "" },
    ]);
    expect(screen.getByTestId("message-editor-1")).toBeTruthy();

    fireEvent.click(screen.getByRole("button", { name: "Move message 2 up" }));
    expect(messages().map((m) => m.role)).toEqual(["assistant", "user"]);
    expect(screen.getByTestId("message-editor-1").textContent).toContain("first");

    fireEvent.change(screen.getByLabelText("Role of message 1"), { target: { value: "user" } });
    fireEvent.click(screen.getByRole("button", { name: "Remove message 1" }));
    expect(messages()).toEqual([{ role: "user", content: "first" }]);
  });

  it("labels the code editors for assistive technology", () => {
    render(<Harness initial={emptyDraft()} />);
    expect(screen.getByLabelText("System prompt")).toBeTruthy();
    expect(screen.getByLabelText("Message 1 (user)")).toBeTruthy();
  });
});

const PNG = "\x89PNG\r\n\x1a\n";
const pngFile = (name = "dot.png", extra = "xy") =>
  new File([Uint8Array.from([...(PNG + extra)].map((c) => c.charCodeAt(0)))], name, { type: "image/png" });

describe("MessagesPanel, rich content", () => {
  it("attaches an image to a user message with a preview, removes it, and refuses a file that is no image", async () => {
    render(<Harness initial={{ ...emptyDraft(), messages: [{ role: "user", content: "Describe this" }] }} />);
    fireEvent.change(screen.getByTestId("image-file-0"), { target: { files: [pngFile()] } });
    const preview = await screen.findByRole("img", { name: "Image 1 of message 1" });
    expect(preview.getAttribute("src")).toBe(`data:image/png;base64,${btoa(PNG + "xy")}`);
    expect(messages()).toEqual([
      {
        role: "user",
        content: [
          { type: "text", text: "Describe this" },
          { type: "image", source: { type: "base64", media_type: "image/png", data: btoa(PNG + "xy") } },
        ],
      },
    ]);
    // The text stays editable under the same hook; the role is fixed while an image is attached.
    expect(screen.getByTestId("message-editor-0").textContent).toContain("Describe this");
    expect(screen.getByLabelText("Role of message 1")).toHaveProperty("disabled", true);

    fireEvent.change(screen.getByTestId("image-file-0"), { target: { files: [new File(["%PDF-1.7"], "paper.pdf", { type: "application/pdf" })] } });
    expect((await screen.findByTestId("image-error-0")).textContent).toBe("paper.pdf is not a PNG, JPEG, GIF or WebP image.");
    expect(screen.getAllByRole("img")).toHaveLength(1);

    fireEvent.click(screen.getByRole("button", { name: "Remove image 1 of message 1" }));
    expect(messages()).toEqual([{ role: "user", content: "Describe this" }]);
    expect(screen.queryByRole("img")).toBeNull();
  });

  it("shows tool calls as cards and takes a typed result for each", () => {
    const conversation: Draft["messages"] = [
      { role: "user", content: "Find apples" },
      { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "search", input: { query: "apples" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "", is_error: false }] },
    ];
    render(<Harness initial={{ ...emptyDraft(), messages: conversation }} />);
    const card = screen.getByTestId("tool-use-block");
    expect(card.textContent).toContain("search");
    expect(card.textContent).toContain('"query": "apples"');
    expect(screen.getByLabelText(/Result of\s*search/)).toBe(screen.getByTestId("tool-result-2-0-input"));
    fireEvent.change(screen.getByTestId("tool-result-2-0-input"), { target: { value: "Apples are red" } });
    fireEvent.click(screen.getByLabelText("The tool failed (is_error)"));
    expect(messages()[2]).toEqual({
      role: "user",
      content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "Apples are red", is_error: true }],
    });
    // A user turn of tool results may take words too, and an image.
    fireEvent.click(screen.getByRole("button", { name: "Add text to message 3" }));
    expect((messages()[2]?.content as unknown as unknown[])[1]).toEqual({ type: "text", text: "" });
    expect(screen.getByTestId("message-editor-2")).toBeTruthy();
    expect(screen.getByTestId("attach-image-2")).toBeTruthy();
    expect(screen.queryByTestId("attach-image-1")).toBeNull(); // no images from the assistant
    expect(screen.queryByTestId("tool-result-2-0-orphan")).toBeNull();
    // Without the call before it, the result is flagged: providers refuse it.
    fireEvent.click(screen.getByRole("button", { name: "Remove message 2" }));
    expect(screen.getByTestId("tool-result-1-0-orphan").textContent).toContain("No tool call with this id");
  });
});

describe("MessagesPanel, pasting", () => {
  it("attaches an image pasted into a user message, and leaves other pastes alone", async () => {
    render(<Harness initial={{ ...emptyDraft(), messages: [{ role: "user", content: "What is this?" }] }} />);
    const message = screen.getByTestId("message-0").querySelector(".message-content")!;
    fireEvent.paste(message, { clipboardData: { files: [new File(["words"], "notes.txt", { type: "text/plain" })] } });
    expect(messages()).toEqual([{ role: "user", content: "What is this?" }]);
    fireEvent.paste(message, { clipboardData: { files: [pngFile("image.png")] } });
    expect(await screen.findByRole("img", { name: "Image 1 of message 1" })).toBeTruthy();
    expect((messages()[0]?.content as unknown as { type: string }[]).map((b) => b.type)).toEqual(["text", "image"]);
  });

  it("attaches an image dropped on a user message before the text editor can read it as text", async () => {
    render(<Harness initial={{ ...emptyDraft(), messages: [{ role: "user", content: "What is this?" }] }} />);
    const editor = screen.getByTestId("message-editor-0");
    const file = pngFile("drop.png");
    const dataTransfer = { files: [file], items: [{ kind: "file", type: "image/png" }], types: ["Files"] };
    const over = fireEvent.dragOver(editor, { dataTransfer });
    expect(over).toBe(false); // default prevented: the browser lets it drop here
    fireEvent.drop(editor, { dataTransfer });
    expect(await screen.findByRole("img", { name: "Image 1 of message 1" })).toBeTruthy();
    expect(screen.getByTestId("message-editor-0").textContent).toContain("What is this?");
  });
});

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

// System prompt and messages: edit (text, images, tool results), add, remove, reorder.
import { CodeEditor } from "../../components/CodeEditor";
import { MessageContent } from "./MessageContent";
import type { Message } from "../../api/types";
import type { Draft } from "../../lib/draft";

type Props = {
  draft: Draft;
  readOnly: boolean;
  setDraft: (update: (draft: Draft) => Draft) => void;
  onRun: () => void;
};

export function MessagesPanel({ draft, readOnly, setDraft, onRun }: Props) {
  const setMessages = (update: (messages: Message[]) => Message[]) =>
    setDraft((d) => ({ ...d, messages: update(d.messages) }));
  const move = (from: number, to: number) =>
    setMessages((messages) => {
      const next = [...messages];
      const [item] = next.splice(from, 1);
      if (item) next.splice(to, 0, item);
      return next;
    });
  return (
    <section className="panel messages" aria-label="Prompt">
      <h2 className="panel-title">System</h2>
      <CodeEditor
        testId="system-editor"
        label="System prompt"
        placeholder="You are a helpful assistant. Use {{variables}} for values given at run time."
        value={draft.system}
        readOnly={readOnly}
        onChange={(system) => setDraft((d) => ({ ...d, system }))}
        onSubmit={onRun}
      />
      {draft.messages.map((message, index) => (
        <div className="message" key={index} data-testid={`message-${index}`}>
          <div className="message-head">
            <label>
              <span className="visually-hidden">Role of message {index + 1}</span>
              <select
                value={message.role}
                // Images and tool results belong to the user, tool calls to the assistant.
                disabled={readOnly || (typeof message.content !== "string" && message.content.some((b) => b.type !== "text"))}
                onChange={(e) =>
                  setMessages((ms) => ms.map((m, i) => (i === index ? { ...m, role: e.target.value as Message["role"] } : m)))
                }
              >
                <option value="user">User</option>
                <option value="assistant">Assistant</option>
              </select>
            </label>
            {!readOnly && (
              <span className="message-actions">
                <button type="button" aria-label={`Move message ${index + 1} up`} disabled={index === 0} onClick={() => move(index, index - 1)}>
                  ↑
                </button>
                <button
                  type="button"
                  aria-label={`Move message ${index + 1} down`}
                  disabled={index === draft.messages.length - 1}
                  onClick={() => move(index, index + 1)}
                >
                  ↓
                </button>
                <button
                  type="button"
                  aria-label={`Remove message ${index + 1}`}
                  disabled={draft.messages.length === 1}
                  onClick={() => setMessages((ms) => ms.filter((_, i) => i !== index))}
                >
                  ✕
                </button>
              </span>
            )}
          </div>
          <MessageContent
            index={index}
            message={message}
            messages={draft.messages}
            readOnly={readOnly}
            onChange={(next) =>
              setMessages((ms) => ms.map((m, i) => (i === index ? { ...m, content: typeof next === "function" ? next(m.content) : next } : m)))
            }
            onRun={onRun}
          />
        </div>
      ))}
      {!readOnly && (
        <button
          type="button"
          onClick={() =>
            setMessages((ms) => [...ms, { role: ms[ms.length - 1]?.role === "user" ? "assistant" : "user", content: "" }])
          }
        >
          + Add message
        </button>
      )}
    </section>
  );
}

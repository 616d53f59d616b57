// One input per `{{placeholder}}` in the system prompt and messages.
import { useId } from "react";

type Props = { names: string[]; values: Record<string, string>; onChange: (name: string, value: string) => void };

export function VariablesPanel({ names, values, onChange }: Props) {
  const id = useId();
  return (
    <section className="panel" aria-label="Variables">
      <h2 className="panel-title">Variables</h2>
      {names.length === 0 && <p className="muted">Write {"{{name}}"} in the prompt to add a variable.</p>}
      {names.map((name) => (
        <div className="field" key={name}>
          <label htmlFor={`${id}-${name}`}>{name}</label>
          <textarea
            id={`${id}-${name}`}
            rows={2}
            data-testid={`variable-input-${name}`}
            value={values[name] ?? ""}
            onChange={(e) => onChange(name, e.target.value)}
          />
        </div>
      ))}
    </section>
  );
}

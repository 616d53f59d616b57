// A JSON text area for one draft field: text that does not parse (or fails `parse`'s checks) stays in the
// box with the reason and leaves the draft as it was; `check` adds a slower check (the meta-schema) whose
// problem shows the same way. Every problem is reported up, so the editor can hold back a run.
import { useEffect, useRef, useState } from "react";
import { jsonText, type Parsed } from "../../lib/jsonField";

type Props<T> = {
  id: string;
  label: string;
  testId: string;
  value: T;
  parse: (text: string) => Parsed<T>;
  check?: (value: T) => Promise<string | null>;
  readOnly: boolean;
  placeholder: string;
  rows?: number;
  onValid: (value: T) => void;
  onProblem?: (problem: string | null) => void;
};

export function JsonBox<T>({ id, label, testId, value, parse, check, readOnly, placeholder, rows = 5, onValid, onProblem }: Props<T>) {
  const [text, setText] = useState(() => jsonText(value));
  const [error, setError] = useState<string | null>(null);
  const checking = useRef(0);
  const report = useRef(onProblem);
  report.current = onProblem;
  const key = JSON.stringify(value ?? null);

  const verify = (parsed: Parsed<T>) => {
    const turn = ++checking.current;
    if (!parsed.ok || !check) return;
    void check(parsed.value).then((problem) => {
      if (turn === checking.current && problem) setError(problem);
    });
  };
  useEffect(() => {
    // The draft changed from elsewhere (a version loaded, changes discarded): show it.
    const mine = parse(text);
    if (!mine.ok || JSON.stringify(mine.value ?? null) !== key) {
      setText(jsonText(value));
      setError(null);
      verify(parse(jsonText(value)));
    }
  }, [key]);
  useEffect(() => verify(parse(text)), []);
  useEffect(() => report.current?.(error), [error]);
  useEffect(() => () => report.current?.(null), []);

  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        data-testid={testId}
        className="json-box"
        rows={rows}
        spellCheck={false}
        value={text}
        placeholder={placeholder}
        readOnly={readOnly}
        aria-invalid={error !== null}
        aria-describedby={error ? `${id}-error` : undefined}
        onChange={(e) => {
          setText(e.target.value);
          const parsed = parse(e.target.value);
          setError(parsed.ok ? null : parsed.error);
          if (parsed.ok) onValid(parsed.value);
          verify(parsed);
        }}
      />
      {error && (
        <p className="field-error" role="alert" id={`${id}-error`} data-testid={`${testId}-error`}>
          {error}
        </p>
      )}
    </div>
  );
}

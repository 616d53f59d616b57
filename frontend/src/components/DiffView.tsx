// Two texts side by side with their differences (@codemirror/merge), read-only.
import { useEffect, useRef } from "react";
import { EditorState } from "@codemirror/state";
import { EditorView } from "@codemirror/view";
import { MergeView } from "@codemirror/merge";
import { cspNonce } from "../lib/cspNonce";
import { variableHighlight } from "./CodeEditor";

export function DiffView({ a, b, labelA, labelB }: { a: string; b: string; labelA: string; labelB: string }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const extensions = [cspNonce, EditorView.lineWrapping, EditorState.readOnly.of(true), EditorView.editable.of(false), variableHighlight];
    const merge = new MergeView({
      a: { doc: a, extensions: [...extensions, EditorView.contentAttributes.of({ "aria-label": labelA })] },
      b: { doc: b, extensions: [...extensions, EditorView.contentAttributes.of({ "aria-label": labelB })] },
      parent: host.current!,
      collapseUnchanged: { margin: 3, minSize: 6 },
    });
    return () => merge.destroy();
  }, [a, b, labelA, labelB]);
  return (
    <div data-testid="diff-view" className="diff-view">
      <div className="diff-heads">
        <span>{labelA}</span>
        <span>{labelB}</span>
      </div>
      <div ref={host} />
    </div>
  );
}

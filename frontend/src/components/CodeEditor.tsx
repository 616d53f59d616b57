// CodeMirror 6 for prompt text: `{{variable}}` placeholders highlighted, Mod-Enter runs.
import { useEffect, useRef } from "react";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { EditorState, Prec } from "@codemirror/state";
import {
  Decoration, type DecorationSet, EditorView, keymap, MatchDecorator, placeholder as cmPlaceholder, ViewPlugin,
  type ViewUpdate,
} from "@codemirror/view";
import { cspNonce } from "../lib/cspNonce";

const variableMatcher = new MatchDecorator({
  regexp: /\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}/g,
  decoration: Decoration.mark({ class: "cm-variable" }),
});

export const variableHighlight = ViewPlugin.fromClass(
  class {
    decorations: DecorationSet;
    constructor(view: EditorView) {
      this.decorations = variableMatcher.createDeco(view);
    }
    update(update: ViewUpdate) {
      this.decorations = variableMatcher.updateDeco(update, this.decorations);
    }
  },
  { decorations: (plugin) => plugin.decorations },
);

type Props = {
  value: string;
  onChange?: (value: string) => void;
  label: string;
  testId?: string;
  placeholder?: string;
  readOnly?: boolean;
  onSubmit?: () => void;
};

export function CodeEditor({ value, onChange, label, testId, placeholder, readOnly = false, onSubmit }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const callbacks = useRef({ onChange, onSubmit });
  callbacks.current = { onChange, onSubmit };

  useEffect(() => {
    const submit = () => {
      callbacks.current.onSubmit?.();
      return true;
    };
    const state = EditorState.create({
      doc: value,
      extensions: [
        cspNonce,
        history(),
        Prec.highest(keymap.of([{ key: "Mod-Enter", run: submit }])),
        keymap.of([...defaultKeymap, ...historyKeymap]),
        EditorView.lineWrapping,
        variableHighlight,
        cmPlaceholder(placeholder ?? ""),
        EditorState.readOnly.of(readOnly),
        EditorView.editable.of(!readOnly),
        EditorView.contentAttributes.of({ "aria-label": label, "aria-multiline": "true" }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) callbacks.current.onChange?.(update.state.doc.toString());
        }),
      ],
    });
    view.current = new EditorView({ state, parent: host.current! });
    return () => view.current?.destroy();
    // The editor is created once; later value changes are applied below.
  }, [readOnly]);

  useEffect(() => {
    const current = view.current;
    if (current && current.state.doc.toString() !== value) {
      current.dispatch({ changes: { from: 0, to: current.state.doc.length, insert: value } });
    }
  }, [value]);

  return <div className="code-editor" data-testid={testId} ref={host} />;
}

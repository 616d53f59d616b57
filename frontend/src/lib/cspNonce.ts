// The per-page nonce the server's Content-Security-Policy allows <style> elements with (CodeMirror's).
import { EditorView } from "@codemirror/view";

const nonce = typeof document === "undefined" ? "" : (document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content ?? "");

export const cspNonce = nonce ? [EditorView.cspNonce.of(nonce)] : [];

import { useEffect, useRef } from "react";

/** Ctrl+Enter (⌘+Enter on a Mac) runs from anywhere on the page; the code editors handle it themselves. */
export function useRunShortcut(run: () => void) {
  const latest = useRef(run);
  latest.current = run;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !e.defaultPrevented) {
        e.preventDefault();
        latest.current();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
}

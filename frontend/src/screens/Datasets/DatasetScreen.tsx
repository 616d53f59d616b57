// Placeholder: being built (session 3).
export function DatasetScreen() {
  return <h1>Dataset</h1>;
}

// Placeholder: being built (session 3).
export function DatasetsScreen() {
  return <h1>Datasets</h1>;
}

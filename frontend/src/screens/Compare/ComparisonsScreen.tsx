// Placeholder: being built (session 3).
export function ComparisonsScreen() {
  return <h1>Comparisons</h1>;
}

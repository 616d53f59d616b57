// Comparisons (versions × models × rows) arrive with their API; the route exists so links keep working.
export function CompareScreen() {
  return (
    <section className="page">
      <div className="page-head">
        <h1>Compare</h1>
      </div>
      <div data-testid="compare-grid" className="state empty">
        Side-by-side comparisons are not available yet: the comparisons API comes with a later issue.
      </div>
    </section>
  );
}

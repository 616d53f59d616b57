// The safety dashboard arrives with issue 9 (flags, resolve); until then an honest empty list.
export function AdminSafetyScreen() {
  return (
    <section className="page">
      <div className="page-head">
        <h1>Safety</h1>
      </div>
      <p className="muted">Safety detection (PII, secrets, prompt injection, refusals) comes with issue 9.</p>
      <ul className="flags" data-testid="safety-flags" aria-label="Safety flags" />
      <p className="state empty">No flags.</p>
    </section>
  );
}

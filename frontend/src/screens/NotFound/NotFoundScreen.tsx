import { Link } from "react-router";

export function NotFoundScreen({ what = "page", detail }: { what?: string; detail?: string }) {
  return (
    <section className="not-found" data-testid="not-found">
      <h1>Not found</h1>
      <p>{detail ?? `This ${what} does not exist, or you have no access to it.`}</p>
      <Link to="/">Go to your workspaces</Link>
    </section>
  );
}

// Single sign-on on the login page: a full-page trip to the identity provider and back.
import { API } from "../../api/client";

export function SsoButton({ name, next }: { name: string; next: string }) {
  return (
    <div className="sso">
      <span className="muted small">or</span>
      <a className="button sso-button" href={`${API}/auth/sso/start?next=${encodeURIComponent(next)}`}>
        Sign in with {name}
      </a>
    </div>
  );
}

const REASONS: Record<string, string> = {
  "sso-failed": "The identity provider's answer could not be accepted (an unknown or expired sign-in, an unverified email, a domain or account that may not sign in here). Try again, or ask your administrator.",
  "sso-not-configured": "Single sign-on is not configured on this instance.",
};

/** After a failed SSO round trip the server sends the browser back here with `?sso_error=<type>`. */
export function SsoError({ code }: { code: string | null }) {
  if (!code) return null;
  return (
    <div className="state error" role="alert">
      <strong>Single sign-on failed</strong>
      <span className="detail">{REASONS[code] ?? `The sign-in did not complete (${code}).`}</span>
    </div>
  );
}

// Two-factor authentication: set up (QR code and the secret), turn on with a code (recovery codes shown
// once), turn off with the password.
import { type FormEvent, useState } from "react";
import { useDisableTotp, useEnableTotp, useSetupTotp, useTwoFactor } from "../../api/identity";
import { ErrorBox, Loading } from "../../components/States";

export function TwoFactorPanel() {
  const status = useTwoFactor();
  const [codes, setCodes] = useState<string[] | null>(null);
  return (
    <section className="panel" aria-label="Two-factor authentication">
      <h2 className="panel-title">Two-factor authentication</h2>
      {status.isPending && <Loading />}
      <ErrorBox error={status.error} />
      {codes && <RecoveryCodes codes={codes} onDone={() => setCodes(null)} />}
      {status.data && !codes && (status.data.totp ? <TurnOff /> : <TurnOn onEnabled={setCodes} />)}
    </section>
  );
}

function TurnOn({ onEnabled }: { onEnabled: (codes: string[]) => void }) {
  const setup = useSetupTotp();
  const enable = useEnableTotp();
  const [code, setCode] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    enable.mutate(code.replace(/\s/g, ""), { onSuccess: (result) => onEnabled(result.recovery_codes) });
  };
  if (!setup.data) {
    return (
      <>
        <p>
          <span className="badge badge-bad">Off</span> Protect your account with a six-digit code from an authenticator
          app (1Password, Google Authenticator, Authy, …) besides your password.
        </p>
        <ErrorBox error={setup.error} title="Could not start the setup" />
        <button type="button" className="primary" disabled={setup.isPending} onClick={() => setup.mutate()}>
          Set up two-factor authentication
        </button>
      </>
    );
  }
  return (
    <div className="totp-setup">
      <p>Scan this QR code with your authenticator app, then enter the code it shows.</p>
      <img className="totp-qr" src={setup.data.qr_svg} alt="QR code for your authenticator app" width={180} height={180} />
      <p className="small">
        Cannot scan it? Enter this key in the app instead:{" "}
        <code className="secret" data-testid="totp-secret">
          {setup.data.secret}
        </code>{" "}
        (or open <a href={setup.data.otpauth_uri}>the otpauth link</a> on this device).
      </p>
      <form className="inline-form" onSubmit={submit} aria-label="Confirm two-factor">
        <label>
          Code from the app
          <input inputMode="numeric" autoComplete="one-time-code" pattern="\s*\d{3}\s*\d{3}\s*" maxLength={7} required value={code} onChange={(e) => setCode(e.target.value)} />
        </label>
        <button type="submit" className="primary" disabled={enable.isPending}>
          Turn on
        </button>
      </form>
      <ErrorBox error={enable.error} title="Could not turn it on" />
    </div>
  );
}

function RecoveryCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  return (
    <div className="notice" role="status">
      <p>
        <strong>Two-factor authentication is on.</strong> Save these recovery codes somewhere safe: each one signs you in
        once if you lose your phone. They are shown only now.
      </p>
      <ul className="recovery-codes" data-testid="recovery-codes">
        {codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ul>
      <button type="button" onClick={() => void navigator.clipboard?.writeText(codes.join("\n"))}>
        Copy codes
      </button>{" "}
      <button type="button" className="primary" onClick={onDone}>
        I have saved them
      </button>
    </div>
  );
}

function TurnOff() {
  const disable = useDisableTotp();
  const [password, setPassword] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    disable.mutate(password, { onSuccess: () => setPassword("") });
  };
  return (
    <>
      <p>
        <span className="badge badge-ok">On</span> Signing in asks for a code from your authenticator app (or a recovery
        code).
      </p>
      <form className="inline-form" onSubmit={submit} aria-label="Turn off two-factor">
        <label>
          Password
          <input type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        <button type="submit" className="danger" disabled={disable.isPending}>
          Turn off
        </button>
      </form>
      <ErrorBox error={disable.error} title="Could not turn it off" />
    </>
  );
}

import { type FormEvent, useEffect, useState } from "react";
import { useUpdateProfile } from "../../api/identity";
import { ErrorBox } from "../../components/States";

export function ProfileForm({ name, email }: { name: string; email: string }) {
  const [value, setValue] = useState(name);
  const update = useUpdateProfile();
  useEffect(() => setValue(name), [name]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    update.mutate(value);
  };
  return (
    <section className="panel" aria-label="Profile">
      <h2 className="panel-title">Profile</h2>
      <form onSubmit={submit}>
        <label>
          Name
          <input required maxLength={200} value={value} onChange={(e) => (setValue(e.target.value), update.reset())} />
        </label>
        <label>
          Email
          <input type="email" value={email} readOnly disabled />
        </label>
        <button type="submit" disabled={update.isPending || value.trim() === name}>
          Save profile
        </button>
        {update.isSuccess && <span role="status"> Saved.</span>}
        <ErrorBox error={update.error} title="Could not save the profile" />
      </form>
    </section>
  );
}

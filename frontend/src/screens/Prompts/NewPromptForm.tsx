import { type FormEvent, useState } from "react";
import { useNavigate } from "react-router";
import { useCreatePrompt } from "../../api/prompts";
import { ErrorBox } from "../../components/States";

export function NewPromptForm({ ws }: { ws: string }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const create = useCreatePrompt(ws);
  const navigate = useNavigate();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate({ name, description }, { onSuccess: (p) => navigate(`/w/${ws}/prompts/${p.id}`) });
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="New prompt">
      <label>
        Name
        <input required value={name} onChange={(e) => setName(e.target.value)} data-testid="new-prompt-name" />
      </label>
      <label>
        Description
        <input value={description} onChange={(e) => setDescription(e.target.value)} />
      </label>
      <button type="submit" className="primary" disabled={create.isPending}>
        New prompt
      </button>
      <ErrorBox error={create.error} />
    </form>
  );
}

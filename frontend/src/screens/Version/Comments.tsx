import { type FormEvent, useState } from "react";
import { useMe } from "../../api/auth";
import { useAddComment, useComments, useDeleteComment, useResolveComment } from "../../api/prompts";
import { useMembers } from "../../api/settings";
import { atLeast, useMembership } from "../../components/useWorkspaceRole";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { formatDate } from "../../lib/format";

export function Comments({ ws, promptId, number }: { ws: string; promptId: string; number: number }) {
  const comments = useComments(ws, promptId, number);
  const add = useAddComment(ws, promptId, number);
  const resolve = useResolveComment(ws, promptId, number);
  const remove = useDeleteComment(ws, promptId, number);
  const me = useMe();
  const admin = atLeast(useMembership(), "admin");
  const members = useMembers(ws);
  const author = (id: string | null) =>
    (id && members.data?.find((m) => m.user_id === id)?.name) || (id ? "a former member" : "deleted account");
  const [body, setBody] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (body.trim()) add.mutate(body, { onSuccess: () => setBody("") });
  };
  return (
    <section className="panel" aria-label="Comments">
      <h2 className="panel-title">Comments on v{number}</h2>
      {comments.isPending && <Loading what="Loading comments" />}
      <ErrorBox error={comments.error ?? resolve.error ?? remove.error} />
      {comments.data?.length === 0 && <Empty>No comments yet.</Empty>}
      <ul className="comments" data-testid="comment-list">
        {comments.data?.map((c) => (
          <li key={c.id} className={c.resolved ? "resolved" : undefined}>
            <p>{c.body}</p>
            <span className="muted small">
              {author(c.author_id)} · {formatDate(c.created_at)}
              {c.edited_at ? " · edited" : ""}
            </span>{" "}
            <button type="button" className="link" onClick={() => resolve.mutate({ commentId: c.id, resolved: !c.resolved })}>
              {c.resolved ? "Reopen" : "Resolve"}
            </button>
            {(admin || c.author_id === me.data?.id) && (
              <button type="button" className="link" onClick={() => remove.mutate(c.id)} aria-label={`Delete the comment “${c.body.slice(0, 30)}”`}>
                Delete
              </button>
            )}
          </li>
        ))}
      </ul>
      <form onSubmit={submit}>
        <label>
          Add a comment
          <textarea rows={3} value={body} onChange={(e) => setBody(e.target.value)} data-testid="comment-input" />
        </label>
        <ErrorBox error={add.error} title="Could not comment" />
        <button type="submit" data-testid="comment-submit" disabled={add.isPending || !body.trim()}>
          Comment
        </button>
      </form>
    </section>
  );
}

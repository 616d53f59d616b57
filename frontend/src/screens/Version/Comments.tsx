import { type FormEvent, useState } from "react";
import { useAddComment, useComments, useResolveComment } from "../../api/prompts";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { formatDate } from "../../lib/format";

export function Comments({ ws, promptId, number }: { ws: string; promptId: string; number: number }) {
  const comments = useComments(ws, promptId, number);
  const add = useAddComment(ws, promptId, number);
  const resolve = useResolveComment(ws, promptId, number);
  const [body, setBody] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (body.trim()) add.mutate(body, { onSuccess: () => setBody("") });
  };
  return (
    <section className="panel" aria-label="Comments">
      <h2 className="panel-title">Comments on v{number}</h2>
      {comments.isPending && <Loading what="Loading comments" />}
      <ErrorBox error={comments.error ?? resolve.error} />
      {comments.data?.length === 0 && <Empty>No comments yet.</Empty>}
      <ul className="comments" data-testid="comment-list">
        {comments.data?.map((c) => (
          <li key={c.id} className={c.resolved ? "resolved" : undefined}>
            <p>{c.body}</p>
            <span className="muted small">
              {formatDate(c.created_at)}
              {c.edited_at ? " · edited" : ""}
            </span>{" "}
            <button type="button" className="link" onClick={() => resolve.mutate({ commentId: c.id, resolved: !c.resolved })}>
              {c.resolved ? "Reopen" : "Resolve"}
            </button>
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

// Why a grid was not started: a 402 with what it could cost against what is left, else the problem's detail
// (a 422 names the field: the API client appends its place, e.g. "rows.0.text").
import { ApiError } from "../../api/client";
import { ErrorBox } from "../../components/States";

/** A 402 says what the grid could cost against what is left; a 422 names the field (the client adds it). */
export function CreateError({ error }: { error: unknown }) {
  if (!error) return null;
  if (error instanceof ApiError && error.status === 402) {
    const p = error.problem as Record<string, unknown>;
    return (
      <div className="state error" role="alert" data-testid="compare-error">
        <strong>Over budget: nothing was started</strong>
        <span className="detail">{error.message}</span>
        {p.required_usd !== undefined && (
          <span className="detail">
            Needs up to ${String(p.required_usd)}; ${String(p.remaining_usd)} left this month.
          </span>
        )}
      </div>
    );
  }
  const title = error instanceof ApiError && error.status === 422 ? "The comparison was not started" : undefined;
  return (
    <div data-testid="compare-error">
      <ErrorBox error={error} title={title} />
    </div>
  );
}

import type { Usage } from "../../api/types";

/** This month's spend (and reservations of runs in flight) against the budget. */
export function BudgetGauge({ budget }: { budget: Usage["budget"] }) {
  const limit = budget.monthly_budget_usd === null ? null : Number(budget.monthly_budget_usd);
  const spent = Number(budget.spent_usd);
  const reserved = Number(budget.reserved_usd);
  const share = limit ? Math.min(1, (spent + reserved) / limit) : 0;
  return (
    <div className="kpi gauge" data-testid="budget-gauge">
      <span>Budget {budget.month}</span>
      {limit === null ? (
        <strong>no budget set</strong>
      ) : (
        <>
          <strong>
            ${budget.spent_usd} of ${budget.monthly_budget_usd}
          </strong>
          <meter min={0} max={1} low={0.7} high={0.9} optimum={0} value={share} aria-label="Budget used">
            {Math.round(share * 100)}%
          </meter>
          {reserved > 0 && <span className="muted small">${budget.reserved_usd} reserved by runs in flight</span>}
        </>
      )}
    </div>
  );
}

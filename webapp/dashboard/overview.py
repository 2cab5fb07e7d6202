"""The statistics page: jobs by status, requests and success rate, tokens and cost by model and by day."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import render_template
from flask_login import current_user

from webapp.access import owner_scope
from webapp.dashboard import charts
from webapp.dashboard.blueprint import bp
from webapp.services import queries

DAYS = 30


@bp.get("/overview")
def overview():
    stats = queries.overview(days=DAYS, owner_id=owner_scope(current_user))
    by_model = stats["by_model"]
    today = datetime.now(UTC).date()
    return render_template(
        "dashboard/overview.html",
        stats=stats,
        days=DAYS,
        status_bars=charts.bars([(status, count) for status, count in stats["jobs_by_status"].items()]),
        token_bars=charts.bars([(row["key"], row["prompt_tokens"] + row["completion_tokens"]) for row in by_model]),
        cost_bars=charts.bars([(row["key"], row["cost"]) for row in by_model]),
        daily_tokens=charts.daily(
            [{**row, "tokens": row["prompt_tokens"] + row["completion_tokens"]} for row in stats["by_day"]],
            "tokens",
            DAYS,
            today,
        ),
        daily_cost=charts.daily(stats["by_day"], "cost", DAYS, today),
    )

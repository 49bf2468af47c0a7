"""usage, cost, webhooks, analysis; richer call records; transcript search; analyst views

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 00:43:30.714593
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


# Analyst views (documented in docs/analytics.md). Days and months are in the tenant's time zone.
VIEWS: list[tuple[str, str]] = [
    (
        "v_call_facts",
        """
        SELECT c.call_sid,
               c.tenant_id,
               (c.started_at AT TIME ZONE COALESCE(t.timezone, 'UTC'))::date AS day,
               c.started_at,
               c.direction,
               c.pipeline,
               c.status,
               c.end_reason,
               c.duration_s,
               c.transfer_target,
               COALESCE(b.n, 0) AS bookings,
               COALESCE(m.n, 0) AS messages,
               a.success,
               cc.total_minor AS cost_minor,
               cc.currency,
               CASE
                   WHEN c.status <> 'completed' THEN 'in_progress'
                   WHEN COALESCE(b.n, 0) > 0 THEN 'booked'
                   WHEN c.transfer_target IS NOT NULL THEN 'transferred'
                   WHEN COALESCE(m.n, 0) > 0 THEN 'message_taken'
                   WHEN c.end_reason LIKE 'provider-%' OR c.end_reason LIKE 'protocol-%'
                       THEN 'error'
                   ELSE 'no_action'
               END AS outcome
        FROM calls c
        LEFT JOIN tenants t ON t.id = c.tenant_id
        LEFT JOIN (SELECT call_sid, count(*) AS n FROM bookings
                   WHERE call_sid IS NOT NULL GROUP BY call_sid) b ON b.call_sid = c.call_sid
        LEFT JOIN (SELECT call_sid, count(*) AS n FROM messages
                   WHERE call_sid IS NOT NULL GROUP BY call_sid) m ON m.call_sid = c.call_sid
        LEFT JOIN call_analysis a ON a.call_sid = c.call_sid
        LEFT JOIN call_costs cc ON cc.call_sid = c.call_sid
        """,
    ),
    (
        "v_daily_calls",
        """
        SELECT tenant_id,
               day,
               count(*) AS calls,
               count(*) FILTER (WHERE status = 'completed') AS completed,
               count(*) FILTER (WHERE direction = 'inbound') AS inbound,
               count(*) FILTER (WHERE direction = 'outbound') AS outbound,
               count(*) FILTER (WHERE outcome = 'booked') AS booked,
               count(*) FILTER (WHERE outcome = 'transferred') AS transferred,
               count(*) FILTER (WHERE outcome = 'message_taken') AS message_taken,
               count(*) FILTER (WHERE outcome = 'error') AS errors,
               count(*) FILTER (WHERE outcome = 'no_action') AS no_action,
               count(*) FILTER (WHERE success) AS successful,
               COALESCE(sum(duration_s), 0) AS total_duration_s,
               avg(duration_s) AS avg_duration_s
        FROM v_call_facts
        GROUP BY tenant_id, day
        """,
    ),
    (
        "v_booking_conversion",
        """
        SELECT tenant_id,
               day,
               count(*) AS calls,
               count(*) FILTER (WHERE bookings > 0) AS calls_with_booking,
               COALESCE(sum(bookings), 0) AS bookings,
               round(count(*) FILTER (WHERE bookings > 0)::numeric / count(*), 4)
                   AS conversion_rate
        FROM v_call_facts
        WHERE status = 'completed'
        GROUP BY tenant_id, day
        """,
    ),
    (
        "v_turn_latency",
        """
        SELECT tu.call_sid,
               c.tenant_id,
               (c.started_at AT TIME ZONE COALESCE(t.timezone, 'UTC'))::date AS day,
               tu.turn_id,
               s.component,
               COALESCE(s.provider, 'unknown') AS provider,
               extract(epoch FROM s.finished - s.began) * 1000 AS ms
        FROM turns tu
        JOIN calls c ON c.call_sid = tu.call_sid
        LEFT JOIN tenants t ON t.id = c.tenant_id
        CROSS JOIN LATERAL (VALUES
            ('stt', c.stt_provider, tu.speech_end_at, tu.stt_final_at),
            ('llm', c.llm_provider, tu.llm_request_at, tu.llm_first_token_at),
            ('tts', c.tts_provider, tu.first_speakable_at, tu.tts_first_byte_at),
            ('total', c.pipeline, tu.speech_end_at, tu.first_audio_sent_at)
        ) AS s(component, provider, began, finished)
        WHERE tu.turn_id > 0 AND s.began IS NOT NULL AND s.finished IS NOT NULL
        """,
    ),
    (
        "v_latency_percentiles",
        """
        SELECT tenant_id,
               component,
               provider,
               count(*) AS turns,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50_ms,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY ms) AS p90_ms,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95_ms,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99_ms
        FROM v_turn_latency
        GROUP BY tenant_id, component, provider
        """,
    ),
    (
        "v_call_costs",
        """
        SELECT cc.call_sid,
               cc.tenant_id,
               f.day,
               f.duration_s,
               cc.currency,
               cc.total_minor,
               cc.telephony_metered,
               COALESCE(sum(li.amount_minor) FILTER (WHERE li.metric = 'stt_seconds'), 0)
                   AS stt_minor,
               COALESCE(sum(li.amount_minor) FILTER (WHERE li.metric LIKE '%tokens'), 0)
                   AS llm_minor,
               COALESCE(sum(li.amount_minor) FILTER (WHERE li.metric = 'tts_characters'), 0)
                   AS tts_minor,
               COALESCE(sum(li.amount_minor) FILTER (WHERE li.metric = 'telephony_minutes'), 0)
                   AS telephony_minor
        FROM call_costs cc
        JOIN v_call_facts f ON f.call_sid = cc.call_sid
        LEFT JOIN cost_line_items li ON li.call_sid = cc.call_sid
        GROUP BY cc.call_sid, cc.tenant_id, f.day, f.duration_s, cc.currency, cc.total_minor,
                 cc.telephony_metered
        """,
    ),
    (
        "v_tenant_monthly_usage",
        """
        SELECT c.tenant_id,
               date_trunc('month', c.started_at AT TIME ZONE COALESCE(t.timezone, 'UTC'))::date
                   AS month,
               li.provider,
               li.metric,
               li.currency,
               count(DISTINCT li.call_sid) AS calls,
               sum(li.quantity) AS quantity,
               sum(li.amount_minor) AS amount_minor
        FROM cost_line_items li
        JOIN calls c ON c.call_sid = li.call_sid
        LEFT JOIN tenants t ON t.id = c.tenant_id
        GROUP BY c.tenant_id, 2, li.provider, li.metric, li.currency
        """,
    ),
    (
        "v_tenant_monthly_cost",
        """
        SELECT tenant_id,
               date_trunc('month', day)::date AS month,
               currency,
               count(*) AS calls,
               sum(total_minor) AS total_minor,
               round(avg(total_minor), 8) AS avg_per_call_minor
        FROM v_call_costs
        GROUP BY tenant_id, 2, currency
        """,
    ),
]


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "usage_records",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=48), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=20, scale=6), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_sid", "source", "provider", "metric"),
    )
    op.create_index(op.f("ix_usage_records_call_sid"), "usage_records", ["call_sid"], unique=False)
    op.create_index(
        op.f("ix_usage_records_tenant_id"), "usage_records", ["tenant_id"], unique=False
    )
    op.create_table(
        "tenant_analysis_schemas",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("json_schema", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("success_criteria", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_webhook_endpoints_tenant_id"), "webhook_endpoints", ["tenant_id"], unique=False
    )
    op.create_table(
        "barge_ins",
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("turn_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offset_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["call_sid"], ["calls.call_sid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("call_sid", "turn_id"),
    )
    op.create_table(
        "call_analysis",
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=True),
        sa.Column("fields", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["call_sid"], ["calls.call_sid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("call_sid"),
    )
    op.create_index(
        op.f("ix_call_analysis_tenant_id"), "call_analysis", ["tenant_id"], unique=False
    )
    op.create_table(
        "call_costs",
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_minor", sa.Numeric(precision=24, scale=8), nullable=False),
        sa.Column("telephony_metered", sa.Boolean(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["call_sid"], ["calls.call_sid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("call_sid"),
    )
    op.create_index(op.f("ix_call_costs_tenant_id"), "call_costs", ["tenant_id"], unique=False)
    op.create_table(
        "call_dtmf",
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("entry_id", sa.String(length=32), nullable=False),
        sa.Column("digit", sa.String(length=4), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offset_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["call_sid"], ["calls.call_sid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("call_sid", "entry_id"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=48), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("endpoint_id", "event_id"),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_call_sid"), "webhook_deliveries", ["call_sid"], unique=False
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_webhook_deliveries_endpoint_id"),
        "webhook_deliveries",
        ["endpoint_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_webhook_deliveries_tenant_id"), "webhook_deliveries", ["tenant_id"], unique=False
    )
    op.create_table(
        "cost_line_items",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=20, scale=6), nullable=False),
        sa.Column("unit_price_minor", sa.Numeric(precision=24, scale=10), nullable=False),
        sa.Column("amount_minor", sa.Numeric(precision=24, scale=8), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("priced", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["call_sid"], ["call_costs.call_sid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_sid", "provider", "metric"),
    )
    op.create_index(
        op.f("ix_cost_line_items_call_sid"), "cost_line_items", ["call_sid"], unique=False
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("delivery_id", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["webhook_deliveries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_webhook_attempts_delivery_id"), "webhook_attempts", ["delivery_id"], unique=False
    )
    op.add_column("calls", sa.Column("transfer_target", sa.String(length=64), nullable=True))
    op.add_column("calls", sa.Column("stt_provider", sa.String(length=64), nullable=True))
    op.add_column("calls", sa.Column("llm_provider", sa.String(length=64), nullable=True))
    op.add_column("calls", sa.Column("tts_provider", sa.String(length=64), nullable=True))
    op.add_column("calls", sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("calls", sa.Column("postcall_done_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tool_invocations", sa.Column("duration_ms", sa.Double(), nullable=True))
    op.add_column("tool_invocations", sa.Column("error", sa.Text(), nullable=True))
    op.add_column("transcript_lines", sa.Column("start_ms", sa.Integer(), nullable=True))
    op.add_column("transcript_lines", sa.Column("end_ms", sa.Integer(), nullable=True))
    op.add_column(
        "transcript_lines",
        sa.Column(
            "tsv",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('english', text)", persisted=True),
            nullable=False,
        ),
    )
    op.create_index(
        "ix_transcript_lines_tsv", "transcript_lines", ["tsv"], unique=False, postgresql_using="gin"
    )
    op.add_column("turns", sa.Column("caller_start_ms", sa.Integer(), nullable=True))
    op.add_column("turns", sa.Column("caller_end_ms", sa.Integer(), nullable=True))
    op.add_column("turns", sa.Column("agent_text", sa.Text(), server_default="", nullable=False))
    op.add_column("turns", sa.Column("heard_text", sa.Text(), server_default="", nullable=False))
    op.add_column(
        "turns", sa.Column("barged_in", sa.Boolean(), server_default="false", nullable=False)
    )
    # ### end Alembic commands ###
    for name, body in VIEWS:
        op.execute(f"CREATE VIEW {name} AS {body}")


def downgrade() -> None:
    for name, _ in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_column("turns", "barged_in")
    op.drop_column("turns", "heard_text")
    op.drop_column("turns", "agent_text")
    op.drop_column("turns", "caller_end_ms")
    op.drop_column("turns", "caller_start_ms")
    op.drop_index("ix_transcript_lines_tsv", table_name="transcript_lines", postgresql_using="gin")
    op.drop_column("transcript_lines", "tsv")
    op.drop_column("transcript_lines", "end_ms")
    op.drop_column("transcript_lines", "start_ms")
    op.drop_column("tool_invocations", "error")
    op.drop_column("tool_invocations", "duration_ms")
    op.drop_column("calls", "postcall_done_at")
    op.drop_column("calls", "recorded_at")
    op.drop_column("calls", "tts_provider")
    op.drop_column("calls", "llm_provider")
    op.drop_column("calls", "stt_provider")
    op.drop_column("calls", "transfer_target")
    op.drop_index(op.f("ix_webhook_attempts_delivery_id"), table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index(op.f("ix_cost_line_items_call_sid"), table_name="cost_line_items")
    op.drop_table("cost_line_items")
    op.drop_index(op.f("ix_webhook_deliveries_tenant_id"), table_name="webhook_deliveries")
    op.drop_index(op.f("ix_webhook_deliveries_endpoint_id"), table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_index(op.f("ix_webhook_deliveries_call_sid"), table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("call_dtmf")
    op.drop_index(op.f("ix_call_costs_tenant_id"), table_name="call_costs")
    op.drop_table("call_costs")
    op.drop_index(op.f("ix_call_analysis_tenant_id"), table_name="call_analysis")
    op.drop_table("call_analysis")
    op.drop_table("barge_ins")
    op.drop_index(op.f("ix_webhook_endpoints_tenant_id"), table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_table("tenant_analysis_schemas")
    op.drop_index(op.f("ix_usage_records_tenant_id"), table_name="usage_records")
    op.drop_index(op.f("ix_usage_records_call_sid"), table_name="usage_records")
    op.drop_table("usage_records")
    # ### end Alembic commands ###

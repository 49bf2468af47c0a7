"""call_events and transcript_lines partitioned by month (declarative range partitions on `at`)

Each table becomes `PARTITION BY RANGE (at)` with monthly partitions `<table>_pYYYY_MM` (UTC
months) and a default partition `<table>_default`, so an insert never fails for want of a
partition. Existing rows are copied in (their months get partitions), ids keep their sequence.
Unique keys gain `at` (a partitioned table's unique keys must hold the partition key): the
recorder's ON CONFLICT targets are `(call_sid, entry_id, at)`; `at` is the entry's own wall
clock, the same however often an entry is redelivered, so idempotency is unchanged.

`fd_month_partition(parent, day)` creates (idempotently) the partition holding `day`'s month,
moving any rows of that month out of the default partition first, then ATTACH (which locks the
parent only SHARE UPDATE EXCLUSIVE: inserts go on). The recorder's partition job
(shared/db/partitions.py) calls it ahead of time and drops partitions past retention.

`calls` stays a plain table: see docs/postgres-partitions.md.

Revision ID: 0009_partitions
Revises: 0008_recordings
Create Date: 2026-12-04
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0009_partitions"
down_revision = "0008_recordings"
branch_labels = None
depends_on = None

AHEAD_MONTHS = 2

MONTH_PARTITION_FN = r"""
CREATE OR REPLACE FUNCTION fd_month_partition(parent text, day timestamptz) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
  lo timestamptz := date_trunc('month', day AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
  hi timestamptz := (date_trunc('month', day AT TIME ZONE 'UTC') + interval '1 month')
                    AT TIME ZONE 'UTC';
  child text := format('%s_p%s', parent, to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM'));
  cols text;
BEGIN
  IF to_regclass(child) IS NOT NULL THEN
    RETURN child;
  END IF;
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
  FROM pg_attribute
  WHERE attrelid = parent::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
  EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING GENERATED)', child, parent);
  EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (at >= %L AND at < %L)',
                 child, child || '_range', lo, hi);
  IF to_regclass(parent || '_default') IS NOT NULL THEN
    EXECUTE format(
      'WITH moved AS (DELETE FROM %I WHERE at >= %L AND at < %L RETURNING %s) '
      'INSERT INTO %I (%s) SELECT %s FROM moved',
      parent || '_default', lo, hi, cols, child, cols, cols);
  END IF;
  EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                 parent, child, lo, hi);
  EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', child, child || '_range');
  RETURN child;
END
$fn$;
"""

CALL_EVENTS_COLUMNS = """
    id bigint NOT NULL DEFAULT nextval('call_events_id_seq'),
    call_sid varchar(64) NOT NULL,
    entry_id varchar(32) NOT NULL,
    type varchar(48) NOT NULL,
    at timestamptz NOT NULL,
    payload jsonb NOT NULL
"""
TRANSCRIPT_LINES_COLUMNS = """
    id bigint NOT NULL DEFAULT nextval('transcript_lines_id_seq'),
    call_sid varchar(64) NOT NULL,
    entry_id varchar(32) NOT NULL,
    turn_id integer NOT NULL,
    role varchar(16) NOT NULL,
    text text NOT NULL,
    at timestamptz NOT NULL,
    start_ms integer,
    end_ms integer,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED NOT NULL
"""
COPIED = {
    "call_events": "id, call_sid, entry_id, type, at, payload",
    "transcript_lines": "id, call_sid, entry_id, turn_id, role, text, at, start_ms, end_ms",
}
"""The columns copied between the old and new table (never the generated `tsv`)."""


def _keys(table: str, partitioned: bool) -> list[str]:
    """Primary key, unique key, foreign key and indexes, with their original names."""
    at = ", at" if partitioned else ""
    out = [
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (id{at})",
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_call_sid_entry_id_key"
        f" UNIQUE (call_sid, entry_id{at})",
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_call_sid_fkey FOREIGN KEY (call_sid)"
        " REFERENCES calls(call_sid) ON DELETE CASCADE",
    ]
    if table == "call_events":
        out.append("CREATE INDEX ix_call_events_type ON call_events (type)")
    else:
        out.append("CREATE INDEX ix_transcript_lines_tsv ON transcript_lines USING gin (tsv)")
    return out


def _rebuild(table: str, columns: str, partitioned: bool) -> None:
    """Replace `table` by a new one (partitioned or not) holding the same rows and names."""
    old = f"{table}_old"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY NONE")
    suffix = " PARTITION BY RANGE (at)" if partitioned else ""
    op.execute(f"CREATE TABLE {table} ({columns}){suffix}")
    if partitioned:
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
        bind = op.get_bind()
        span = bind.execute(sa.text(f"SELECT min(at), max(at) FROM {old}")).one()
        now = datetime.now(UTC)
        first = span[0] or now
        month = datetime(first.year, first.month, 1, tzinfo=UTC)
        last = max(span[1] or now, now)
        last_month = (last.year * 12 + last.month - 1) + AHEAD_MONTHS
        while month.year * 12 + month.month - 1 <= last_month:
            bind.execute(
                sa.text("SELECT fd_month_partition(:t, :m)"), {"t": table, "m": month}
            )
            step = month.year * 12 + month.month  # next month, 0-based count
            month = datetime(step // 12, step % 12 + 1, 1, tzinfo=UTC)
    op.execute(f"INSERT INTO {table} ({COPIED[table]}) SELECT {COPIED[table]} FROM {old}")
    op.execute(f"DROP TABLE {old}")
    op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
    for statement in _keys(table, partitioned):
        op.execute(statement)


def upgrade() -> None:
    op.execute(MONTH_PARTITION_FN)
    _rebuild("call_events", CALL_EVENTS_COLUMNS, partitioned=True)
    _rebuild("transcript_lines", TRANSCRIPT_LINES_COLUMNS, partitioned=True)


def downgrade() -> None:
    _rebuild("transcript_lines", TRANSCRIPT_LINES_COLUMNS, partitioned=False)
    _rebuild("call_events", CALL_EVENTS_COLUMNS, partitioned=False)
    op.execute("DROP FUNCTION IF EXISTS fd_month_partition(text, timestamptz)")

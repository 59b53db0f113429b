"""Account self-service: sessions the user can see and end, and stored audit events.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (see 0004): no table copy on SQLite.
    op.add_column("browser_sessions", sa.Column("handle", sa.String(length=32), nullable=True))
    op.add_column("browser_sessions", sa.Column("user_agent", sa.String(length=512), nullable=True))
    op.add_column("browser_sessions", sa.Column("ip", sa.String(length=64), nullable=True))
    # Sessions made before this revision get a handle too, so the user can end them.
    sessions = sa.table(
        "browser_sessions", sa.column("id_digest", sa.String), sa.column("handle", sa.String)
    )
    bind = op.get_bind()
    for (id_digest,) in bind.execute(sa.select(sessions.c.id_digest)).all():
        bind.execute(
            sa.update(sessions)
            .where(sessions.c.id_digest == id_digest)
            .values(handle=secrets.token_urlsafe(16))
        )
    op.create_index(op.f("ix_browser_sessions_handle"), "browser_sessions", ["handle"], unique=True)
    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_user_id_id", "audit_events", ["user_id", "id"], unique=False)
    op.create_index("ix_audit_events_actor_id", "audit_events", ["actor_id"], unique=False)
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_events_occurred_at", table_name="audit_events")
    op.drop_index("ix_audit_events_actor_id", table_name="audit_events")
    op.drop_index("ix_audit_events_user_id_id", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index(op.f("ix_browser_sessions_handle"), table_name="browser_sessions")
    op.drop_column("browser_sessions", "ip")
    op.drop_column("browser_sessions", "user_agent")
    op.drop_column("browser_sessions", "handle")

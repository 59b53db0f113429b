"""Resource-server clients, server secrets, and `profile:write` for the built-in
first-party client (changing the profile now needs that scope).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FIRST_PARTY_CLIENT_ID = "userservice-frontend"


def upgrade() -> None:
    # Plain ADD/DROP COLUMN, not a batch table copy: on SQLite the copy drops
    # oauth_clients, and with foreign keys on that cascades into every token row.
    op.add_column(
        "oauth_clients",
        sa.Column("is_resource_server", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secrets")),
    )
    op.execute(
        sa.text(
            "UPDATE oauth_clients SET scope = scope || ' profile:write'"
            " WHERE client_id = :cid AND ' ' || scope || ' ' NOT LIKE '% profile:write %'"
        ).bindparams(cid=FIRST_PARTY_CLIENT_ID)
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE oauth_clients SET scope = TRIM(REPLACE(' ' || scope || ' ',"
            " ' profile:write ', ' ')) WHERE client_id = :cid"
        ).bindparams(cid=FIRST_PARTY_CLIENT_ID)
    )
    op.drop_table("server_secrets")
    op.drop_column("oauth_clients", "is_resource_server")

"""App sessions: focused-app readings merged into sessions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app", sa.String(length=256), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("start_us", sa.Integer(), nullable=False),
        sa.Column("end_us", sa.Integer(), nullable=False),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_sessions")),
        sa.UniqueConstraint("app", "start_us", name=op.f("uq_app_sessions_app")),
    )
    op.create_index("ix_app_sessions_start_us", "app_sessions", ["start_us"])


def downgrade() -> None:
    op.drop_index("ix_app_sessions_start_us", table_name="app_sessions")
    op.drop_table("app_sessions")

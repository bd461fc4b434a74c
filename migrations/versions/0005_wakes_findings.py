"""Wakes of the larger model and their findings.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wakes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("t_us", sa.Integer(), nullable=False),
        sa.Column("start_us", sa.Integer(), nullable=False),
        sa.Column("triggers", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("backend", sa.String(length=32), nullable=False),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("model_sha256", sa.String(length=64), nullable=True),
        sa.Column("started_us", sa.Integer(), nullable=True),
        sa.Column("wall_s", sa.Float(), nullable=True),
        sa.Column("cpu_s", sa.Float(), nullable=True),
        sa.Column("peak_rss_kb", sa.Integer(), nullable=True),
        sa.Column("tokens_in", sa.Integer(), nullable=True),
        sa.Column("tokens_out", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wakes")),
    )
    op.create_index("ix_wakes_t_us", "wakes", ["t_us"])
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wake_id", sa.Integer(), nullable=False),
        sa.Column("t_us", sa.Integer(), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("culprit", sa.String(length=256), nullable=True),
        sa.Column("culprit_kind", sa.String(length=16), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("advice", sa.Text(), nullable=False),
        sa.Column("model_text", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_source", sa.String(length=16), nullable=False),
        sa.Column("check", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["wake_id"], ["wakes.id"], name=op.f("fk_findings_wake_id_wakes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
        sa.UniqueConstraint("wake_id", name=op.f("uq_findings_wake_id")),
    )
    op.create_index("ix_findings_t_us", "findings", ["t_us"])


def downgrade() -> None:
    op.drop_index("ix_findings_t_us", table_name="findings")
    op.drop_table("findings")
    op.drop_index("ix_wakes_t_us", table_name="wakes")
    op.drop_table("wakes")

"""The power ledger (CPU per stage per hour) and energy calibrations.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "power_ledger",
        sa.Column("hour_us", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("component", sa.String(length=64), nullable=False),
        sa.Column("cpu_s", sa.Float(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("covered_s", sa.Float(), nullable=True),
        sa.Column("energy_j", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint(
            "hour_us", "origin", "component", name=op.f("pk_power_ledger")
        ),
    )
    op.create_table(
        "power_calibrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_us", sa.Integer(), nullable=False),
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("k_w", sa.Float(), nullable=False),
        sa.Column("ci_low_w", sa.Float(), nullable=False),
        sa.Column("ci_high_w", sa.Float(), nullable=False),
        sa.Column("idle_w", sa.Float(), nullable=False),
        sa.Column("busy_w", sa.Float(), nullable=False),
        sa.Column("blocks", sa.Integer(), nullable=False),
        sa.Column("block_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_power_calibrations")),
    )


def downgrade() -> None:
    op.drop_table("power_calibrations")
    op.drop_table("power_ledger")

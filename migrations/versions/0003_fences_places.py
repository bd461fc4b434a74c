"""Fences, their state, learned places, and detector state.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fences",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("feature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_fences")),
    )
    op.create_table(
        "fence_state",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_fence_state")),
    )
    op.create_table(
        "places",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("dwell_s", sa.Float(), nullable=False),
        sa.Column("first_us", sa.Integer(), nullable=False),
        sa.Column("last_us", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_places")),
    )
    op.create_table(
        "detector_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_detector_state")),
    )


def downgrade() -> None:
    op.drop_table("detector_state")
    op.drop_table("places")
    op.drop_table("fence_state")
    op.drop_table("fences")

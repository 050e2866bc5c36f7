"""job_callbacks: a job's callback_url and its signed, retried delivery

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 20:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_callbacks",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('pending','delivered','failed')", name="ck_job_callbacks_state"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )
    with op.batch_alter_table("job_callbacks", schema=None) as batch_op:
        batch_op.create_index("ix_job_callbacks_state_next", ["state", "next_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_callbacks_owner_id"), ["owner_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("job_callbacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_callbacks_owner_id"))
        batch_op.drop_index("ix_job_callbacks_state_next")
    op.drop_table("job_callbacks")

"""storage_retention (issue 18, quotas and retention)

audio_files.stored_bytes (the bytes a file takes in the audio store: the user quota), audio_files.downloaded_at
(a downloaded result is kept by retention) and retention_marks (since when `mixpilot gc` has seen a stored
version unreferenced).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 21:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audio_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stored_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "retention_marks",
        sa.Column("audio_id", sa.String(length=32), nullable=False),
        sa.Column("unreferenced_since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("audio_id"),
    )


def downgrade() -> None:
    op.drop_table("retention_marks")
    with op.batch_alter_table("audio_files", schema=None) as batch_op:
        batch_op.drop_column("downloaded_at")
        batch_op.drop_column("stored_bytes")

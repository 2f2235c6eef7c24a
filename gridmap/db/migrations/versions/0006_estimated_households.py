"""household figures estimated from footprints

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Households (and population) estimated from footprint x floors / floor area per
    # household where the data had none (gridmap.io.households), so that the API,
    # exports and reports can say so.
    op.add_column(
        "buildings",
        sa.Column(
            "households_estimated", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("buildings", "households_estimated")

"""road levels: bridge, tunnel and OSM layer, so crossing roads are joined only at grade

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("roads", sa.Column("bridge", sa.Boolean(), nullable=True))
    op.add_column("roads", sa.Column("tunnel", sa.Boolean(), nullable=True))
    op.add_column("roads", sa.Column("layer", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("roads", "layer")
    op.drop_column("roads", "tunnel")
    op.drop_column("roads", "bridge")

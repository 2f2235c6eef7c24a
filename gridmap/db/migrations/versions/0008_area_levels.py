"""area levels above the street: district and city, so one call covers a city

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("ck_areas_level", "areas", type_="check")
    op.create_check_constraint(
        "ck_areas_level", "areas", "level IN ('city', 'district', 'street', 'community')"
    )


def downgrade() -> None:
    # While a district or city is stored the old check fails, and nothing is changed.
    op.drop_constraint("ck_areas_level", "areas", type_="check")
    op.create_check_constraint("ck_areas_level", "areas", "level IN ('street', 'community')")

"""``gridmap token``: API tokens."""

from __future__ import annotations

import click

from gridmap.cli.common import transaction
from gridmap.models import ROLES


@click.group()
def token() -> None:
    """API tokens: make, list and revoke."""


@token.command(name="create")
@click.argument("name")
@click.option("--role", type=click.Choice(list(ROLES)), required=True)
def token_create(name: str, role: str) -> None:
    """Make a token for NAME; it is printed once and kept only as a hash."""
    from gridmap.tokens import create_token

    with transaction() as session:
        secret = create_token(session, name, role)
    click.echo(secret)


@token.command(name="list")
def token_list() -> None:
    """List tokens (names and roles, never the tokens)."""
    from gridmap.tokens import list_tokens

    with transaction() as session:
        for row in list_tokens(session):
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "live"
            click.echo(f"{row.name}\t{row.role}\t{row.created_at:%Y-%m-%d %H:%M}\t{state}")


@token.command(name="revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Revoke NAME's token."""
    from gridmap.tokens import revoke_token

    with transaction() as session:
        if not revoke_token(session, name):
            raise click.ClickException(f"no live token named {name!r}")
    click.echo(f"revoked {name}")

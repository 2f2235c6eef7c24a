"""The ``gridmap`` command: one module per command group, gathered here.

A command's module is imported only when that command runs (``--help`` imports them
all), so ``gridmap coverage`` does not pay for the import, redraw and map modules.
"""

from __future__ import annotations

import importlib

import click

#: Each command's name and where it lives (``module:attribute`` under gridmap.cli).
COMMANDS = {
    "db": "database:db",
    "import": "data:import_command",
    "export": "data:export_command",
    "demo": "data:demo",
    "validate": "grids:validate",
    "recode": "grids:recode",
    "grid": "grids:grid",
    "coverage": "coverage:coverage",
    "plan-sites": "coverage:plan_sites_command",
    "redraw": "plans:redraw",
    "plan": "plans:plan",
    "render": "maps:render",
    "report": "reports:report",
    "token": "tokens:token",
    "job": "jobs:job",
    "serve": "serve:serve",
}


class LazyGroup(click.Group):
    """A group whose commands are imported from :data:`COMMANDS` when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        return getattr(importlib.import_module(f"gridmap.cli.{module}"), attribute)


@click.group(cls=LazyGroup)
def main() -> None:
    """gridmap: community grids, buildings and service stations over PostGIS."""

"""Redraw a community's grids into dedicated, general and micro grids.

:mod:`~gridmap.redraw.tessellation` tiles the community with one cell per building
site, :mod:`~gridmap.redraw.partition` groups cells into contiguous parts inside a
household range, :mod:`~gridmap.redraw.engine` makes the plan and
:mod:`~gridmap.redraw.metrics` measures it.
"""

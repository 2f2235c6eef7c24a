"""``python -m gridmap``: the same as the ``gridmap`` command."""

from gridmap.cli import main

main()

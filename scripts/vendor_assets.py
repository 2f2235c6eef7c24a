#!/usr/bin/env python3
"""Fetch the map assets listed in ``layers/assets.py`` from the npm registry.

Runs ``npm pack PACKAGE@VERSION`` for each (the npm registry is the only place it
downloads from), and copies the listed files and the licence into
``layers/static/vendor/NAME-VERSION/``. The result is committed, so neither
``make run`` nor the tests need npm or a network. Run it again after changing a
version: ``python scripts/vendor_assets.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from layers.assets import ASSETS, STATIC_DIR


def main() -> None:
    vendor = STATIC_DIR / "vendor"
    shutil.rmtree(vendor, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        for asset in ASSETS:
            packed = (
                subprocess.run(
                    ["npm", "pack", f"{asset.package}@{asset.version}", "--silent"],
                    cwd=tmp,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            target = STATIC_DIR / asset.folder
            with tarfile.open(Path(tmp) / packed) as tar:
                for name in asset.files():
                    member = tar.extractfile(f"package/{name}")
                    out = target / name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(member.read())
            print(f"{asset.package}@{asset.version} -> {target.relative_to(STATIC_DIR.parent)}")


if __name__ == "__main__":
    main()

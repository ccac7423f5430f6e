"""The package's layout in pyproject.toml: every folder that ships files is listed.

setuptools installs only the packages listed in ``[tool.setuptools] packages`` and the data
files that ``package-data`` matches. A folder of scenario files left out of the list still
works in an editable install (the source tree is on the path) and then goes missing from
a wheel, or builds with a warning that the layout is ambiguous. This test reads the
configuration and the tree, so it fails on the commit that adds such a folder.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = {".py", ".toml", ".typed"}


def _setuptools() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        config: dict[str, Any] = tomllib.load(f)["tool"]["setuptools"]
    return config


def _folders() -> dict[str, Path]:
    """Dotted package name -> folder, for every folder under a package-dir root that holds shipped files."""
    config = _setuptools()
    roots = {name: ROOT / path for name, path in config["package-dir"].items()}
    found: dict[str, Path] = {}
    for name, path in roots.items():
        for folder in [path, *(p for p in path.rglob("*") if p.is_dir())]:
            if "__pycache__" in folder.parts or not any(f.suffix in SHIPPED for f in folder.iterdir() if f.is_file()):
                continue
            dotted = ".".join([name, *folder.relative_to(path).parts])
            if dotted not in roots or roots[dotted] == folder:
                found[dotted] = folder
    return found


def test_every_folder_with_shipped_files_is_a_listed_package() -> None:
    listed = set(_setuptools()["packages"])
    missing = sorted(set(_folders()) - listed)
    assert missing == [], f"add {missing} to [tool.setuptools] packages in pyproject.toml"
    assert "tradeguard.env.scenarios.portfolio" in _folders()  # the check sees nested data folders


def test_every_data_file_is_matched_by_package_data() -> None:
    data = _setuptools()["package-data"]
    unmatched = []
    for dotted, folder in _folders().items():
        for file in folder.iterdir():
            shipped = file.is_file() and file.suffix in SHIPPED - {".py"}
            if shipped and not any(fnmatch.fnmatch(file.name, pattern) for pattern in data.get(dotted, [])):
                unmatched.append(str(file.relative_to(ROOT)))
    assert unmatched == [], f"no package-data pattern ships {unmatched}"
    assert any(f.name == "v10.1.toml" for f in _folders()["tradeguard.env.scenarios"].iterdir())

"""Map the top-level code folders into the single ``gravitas.*`` namespace package.

``gravitas`` itself is an implicit (PEP 420) namespace: each code folder is one
sub-package, so the repository top level stays as ARCHITECTURE.md fixes it.

The package list is computed, so a new sub-folder is never left out of the wheel.
"""

from pathlib import Path

from setuptools import setup

CODE_FOLDERS = ("schemas", "kernels", "storage", "agents", "streams")
HERE = Path(__file__).parent


def _packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for folder in CODE_FOLDERS:
        for init in sorted((HERE / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(HERE)
            name = "gravitas." + ".".join(rel.parts)
            packages.append(name)
            package_dir[name] = rel.as_posix()
    return packages, package_dir


packages, package_dir = _packages()
setup(packages=packages, package_dir=package_dir)

"""Which service a report describes: the ``serviceId``, ``version`` and ``releaseId`` of
the ``application/health+json`` body.

- ``serviceId`` is the app's ``name`` (its import name, or the module run as a script).
- ``version`` is the version of the installed distribution that provides the app's
  top-level package (``myapp`` for ``myapp.web``), read with :mod:`importlib.metadata`;
  none when the app is not installed as a distribution (run from a checkout).
- ``releaseId`` comes from the environment: ``PRODREADY_RELEASE``, else
  ``SENTRY_RELEASE`` (which many deployments already set to the commit or tag they ship);
  none when neither is set.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from .findings import ServiceInfo

if TYPE_CHECKING:
    from flask import Flask

#: Where the release deployed is read from, first found wins.
RELEASE_VARIABLES = ("PRODREADY_RELEASE", "SENTRY_RELEASE")
#: Folders installed distributions live in.
SITE_FOLDERS = frozenset({"site-packages", "dist-packages"})
#: Longest release or version kept; anything longer is not an identifier.
MAX_IDENTIFIER = 200


def _identifier(value: str | None) -> str | None:
    """A version or release fit for the body: printable, stripped, bounded; else ``None``."""
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_IDENTIFIER or not value.isprintable():
        return None
    return value


@functools.cache
def distribution_of(package: str) -> tuple[str, str] | None:
    """(name, version) of the installed distribution that provides the top-level
    ``package``.

    Read once per process: what is installed does not change under a running app, and
    mapping packages to distributions reads every installed distribution's metadata.
    Ambiguous (several distributions provide it) or unknown gives ``None``.
    """
    try:
        names = _providers(package)
        if len(names) != 1:
            return None
        distribution = metadata.distribution(names.pop())
        name = _identifier(distribution.metadata["Name"])
        version = _identifier(distribution.version)
    except Exception:  # broken metadata of some other distribution never breaks a report
        return None
    return (name, version) if name and version else None


def _providers(package: str) -> set[str]:
    """The distributions that install the top-level ``package``.

    Cheap first: the distribution named like the package (the usual case) when it
    installs it, and nothing for a package that is not under ``site-packages`` (an app run
    from its checkout). Only then the mapping of every installed distribution, which
    reads all their metadata; Python 3.10's maps only what ``top_level.txt`` declares,
    which wheels built by flit or hatchling lack, so those are found by their files.
    """
    try:
        named = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        pass
    else:
        if _installs(named, package):
            return {named.metadata["Name"]}
    module = sys.modules.get(package)
    where = getattr(module, "__file__", None) or ""
    if not SITE_FOLDERS.intersection(Path(where).parts):
        return set()
    names = set(metadata.packages_distributions().get(package, ()))
    if names or sys.version_info >= (3, 11):
        return names
    return {d.metadata["Name"] for d in metadata.distributions() if _installs(d, package)}


def _installs(distribution: metadata.Distribution, package: str) -> bool:
    """Whether ``distribution``'s files include the top-level ``package``."""
    for file in distribution.files or ():
        top = file.parts[0] if file.parts else ""
        if top == f"{package}.py" or (top == package and len(file.parts) > 1):
            return True
    return False


def distribution_version(package: str) -> str | None:
    """The version of the installed distribution that provides the top-level ``package``."""
    found = distribution_of(package)
    return None if found is None else found[1]


def release_id(environ: Mapping[str, str]) -> str | None:
    """The release deployed, from ``PRODREADY_RELEASE``, else ``SENTRY_RELEASE``."""
    for name in RELEASE_VARIABLES:
        value = _identifier(environ.get(name))
        if value is not None:
            return value
    return None


def service_info(app: Flask, environ: Mapping[str, str] | None = None) -> ServiceInfo:
    """The identity of ``app`` for its report; ``environ`` defaults to the process's."""
    package = app.import_name.split(".", 1)[0]
    return ServiceInfo(
        name=app.name,
        version=None if package == "__main__" else distribution_version(package),
        release=release_id(os.environ if environ is None else environ),
    )

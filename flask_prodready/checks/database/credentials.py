"""``database.credentials_in_source``: the database password written in the app's source.

The passwords are those the app's engines connect with (the URL's, or ``password`` in
``connect_args``), Flask-SQLAlchemy's and ``ProdReady.add_engine``'s alike. Each is looked
for with the scan and the rules of ``config.secret_key_in_source``
(:func:`~flask_prodready.checks._source_scan.find_secret_in_files`): a file git tracks,
or would add, is source, and the password must leave it and be changed; a file git
ignores is a secrets file, fine when only its owner can read it. A password is also
looked for as it stands in a URL (percent-encoded). A short or wordy password also occurs
in prose, so it counts only as a whole string literal or assignment, or between the
``:`` and ``@`` of a URL. The finding names the file, never the password.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from ...engine.context import CheckContext
from ...engine.findings import Finding, Level
from ...engine.project import project_root
from ...engine.redaction import secret_weakness
from ...engine.registry import check
from .._source_scan import Hit, find_secret_in_files, hit_findings, reads_as_words
from ..config import MIN_SEARCHABLE_LENGTH
from .engines import Database, databases_of

#: A password shorter than this (or common, or made of words) counts only as a literal:
#: a random one this long does not occur in unrelated text.
MIN_PLAIN_LENGTH = 16
#: Seconds kept back from the check's deadline to report what the scans found.
DEADLINE_MARGIN = 0.05


@dataclass(frozen=True)
class _Search:
    """One form of a password to look for, and whether only literals of it count."""

    needle: str
    literal_only: bool


def _passwords(database: Database) -> set[str]:
    """The passwords ``database`` connects with: its URL's, and its ``connect_args``'."""
    found = {database.engine.url.password}
    try:
        params: dict[str, Any] = database.connect_params()[1]
    except Exception:  # a dialect that cannot build its arguments here
        params = {}
    found |= {params.get("password"), params.get("passwd")}
    return {value for value in found if isinstance(value, str) and value}


def searches(password: str) -> list[_Search]:
    """The forms ``password`` takes in files: as written, and percent-encoded in a URL.

    A short, common or wordy password counts only as a literal, or inside a URL's
    userinfo (``:password@``), where no prose puts it.
    """
    encoded = [form for form in (quote(password, safe=""), quote_plus(password)) if form]
    strong = secret_weakness(password) is None and not reads_as_words(password)
    if strong and len(password) >= MIN_PLAIN_LENGTH:
        plain = dict.fromkeys([password, *encoded])
        return [_Search(form, literal_only=False) for form in plain]
    userinfo = dict.fromkeys(f":{form}@" for form in [password, *encoded])
    return [_Search(password, literal_only=True)] + [
        _Search(form, literal_only=False) for form in userinfo
    ]


def _labels(databases: list[Database]) -> str:
    labels = [database.label for database in databases]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


@check(
    "database.credentials_in_source",
    level=Level.ERROR,
    tags=["security"],
    title="The database password is not written in the app's source",
    hint="Read the database URL from the environment (DATABASE_URL) or from a secrets file "
    "git ignores (instance/config.py, mode 600), then change the password on the database "
    "server: anyone with the source can log in with it.",
    blocking=True,
)
def check_credentials_in_source(ctx: CheckContext) -> Iterator[Finding]:
    by_password: dict[str, list[Database]] = {}
    for database in databases_of(ctx):
        for password in sorted(_passwords(database)):
            by_password.setdefault(password, []).append(database)
    if not by_password:
        ctx.skip(
            "no engine connects with a password in its URL or connect_args (SQLite, or the "
            "driver takes it from elsewhere: a .pgpass file, the environment)"
        )
    root = project_root(ctx.app.root_path)
    instance = Path(ctx.app.instance_path)
    deadline = ctx.deadline - DEADLINE_MARGIN
    unjudged: list[str] = []
    incomplete: list[str] = []
    found = False
    for password, databases in by_password.items():
        labels = _labels(databases)
        if len(password) < MIN_SEARCHABLE_LENGTH:
            unjudged.append(
                f"the password of {labels} is shorter than {MIN_SEARCHABLE_LENGTH} characters "
                "and would match unrelated text"
            )
            continue
        hits: dict[str, Hit] = {}
        how: dict[str, str] = {}
        for search in searches(password):
            result = find_secret_in_files(
                search.needle, root, instance, deadline, literal_only=search.literal_only
            )
            how = result.how()
            if not result.complete:
                incomplete.append(
                    f"scanned {result.scanned} files under {result.root} before the time "
                    f"limit without finishing (method: {result.method})"
                )
            for hit in result.hits:
                hits.setdefault(hit.absolute, hit)
        whose = f"The password of {labels}"
        for finding in hit_findings(ctx, hits.values(), how, written=whose, kept=whose):
            found = True
            yield finding
    if not found and (unjudged or incomplete):
        ctx.skip("; ".join(dict.fromkeys([*unjudged, *incomplete])))

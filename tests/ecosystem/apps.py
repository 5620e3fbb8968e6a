"""The real applications of the ecosystem check, each deployed the way its docs say.

An :class:`App` says what to install, which files its documentation has an operator
write (settings, the WSGI module), its own set-up commands, how its documentation runs
gunicorn and configures nginx in front of it, and the pages a visitor asks for. Values
in ``{{ name }}`` are filled in for each deployment by :func:`tests.ecosystem.deploy.render`:
``deploy`` (the folder of the settings and ``prodready_wsgi.py``), ``state`` (data,
databases), ``upstream`` (gunicorn's bind), ``site_packages``, ``python``, ``token``
(``PRODREADY_TOKEN``) and ``password`` (the application's admin password), each new
for every run.

``prodready_wsgi.py`` is what a user writes to add ProdReady: it imports the
application as its documentation serves it and calls ``ProdReady(app)``; the token comes
from ``PRODREADY_TOKEN`` in the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    """One request of a visitor: a path, and a form to post when there is one."""

    path: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] | None = None
    #: Values to keep from a JSON answer for the requests after it: name -> dotted path
    #: (``{"jwt": "result.value.token"}`` makes ``{{ jwt }}`` usable from then on).
    keep: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class App:
    """One real application and how it is deployed."""

    name: str
    #: What ``pip install`` is given (the application pinned, gunicorn).
    requirements: tuple[str, ...]
    #: Why this application, and where its deployment comes from.
    about: str
    #: Files written into the deploy folder: relative path -> text.
    files: Mapping[str, str]
    #: Commands run in the deploy folder before gunicorn starts.
    setup: tuple[tuple[str, ...], ...] = ()
    #: Folders copied into the deploy folder (source -> relative target), such as the
    #: static files nginx serves.
    copies: Mapping[str, str] = field(default_factory=dict)
    #: Environment variables of every process (the settings file, the config name).
    environment: Mapping[str, str] = field(default_factory=dict)
    #: gunicorn's options besides the bind and the app.
    gunicorn: tuple[str, ...] = ()
    #: Where gunicorn listens: ``unix`` (a socket) or ``tcp`` (a free 127.0.0.1 port);
    #: ``{{ upstream }}`` is that address as gunicorn's --bind and nginx write it.
    bind: str = "unix"
    #: nginx ``upstream`` blocks (inside ``http``) and the ``location`` blocks of the
    #: TLS server, as the application's documentation writes them.
    nginx_upstreams: str = ""
    nginx_locations: str = ""
    #: The visit: at least 20 requests to real pages.
    traffic: tuple[Request, ...] = ()
    #: Options of ``flask readiness`` besides ``--format json``.
    cli_arguments: tuple[str, ...] = ()


#: Debian's /etc/nginx/proxy_params, which the pgAdmin docs include.
PROXY_PARAMS = """
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;"""


IHATEMONEY = App(
    name="ihatemoney",
    requirements=("ihatemoney==7.2.1", "gunicorn==27.0.1"),
    about=(
        "A shared budget manager: Flask 3.1, Flask-SQLAlchemy 3.1 on SQLite, Flask-Migrate "
        "(migrations run at start), Flask-Talisman, Flask-Limiter, ProxyFix. Deployed per "
        "docs/installation.rst: `ihatemoney generate-config` writes ihatemoney.cfg (with a "
        "random SECRET_KEY), gunicorn.conf.py and the nginx site; the database is SQLite, "
        "as the docs allow."
    ),
    files={
        "prodready_wsgi.py": '''"""ihatemoney.wsgi, with ProdReady added."""

from flask_prodready import ProdReady
from ihatemoney.wsgi import application

ProdReady(application)
''',
    },
    setup=(
        # The docs: `ihatemoney generate-config ihatemoney.cfg` (and gunicorn.conf.py),
        # then the database path set. The command's own function is called without its
        # app context, which would create the default database in /tmp first.
        (
            "{{ python }}",
            "-c",
            """
import contextlib, io
from ihatemoney.manage import generate_config
for name in ("ihatemoney.cfg", "gunicorn.conf.py"):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        generate_config.callback.__wrapped__(name)
    text = out.getvalue().replace(
        "sqlite:////var/lib/ihatemoney/ihatemoney.sqlite",
        "sqlite:///{{ state }}/ihatemoney.sqlite",
    )
    open(name, "w").write(text)
""",
        ),
        # ihatemoney migrates its database whenever the app is created; the first start
        # of three workers at once races on a new SQLite file, so the app is created once
        # first, as the first `ihatemoney` command after installing would.
        ("{{ python }}", "-c", "from ihatemoney.run import create_app; create_app()"),
    ),
    copies={"{{ site_packages }}/ihatemoney/static": "static"},
    environment={"IHATEMONEY_SETTINGS_FILE_PATH": "{{ deploy }}/ihatemoney.cfg"},
    gunicorn=("--config", "{{ deploy }}/gunicorn.conf.py"),
    # conf-templates/nginx.conf.j2, with TLS added (the docs' SESSION_COOKIE_SECURE = True
    # "requires HTTPS"); its static alias points at the copy of the package's static folder.
    nginx_upstreams="""
    upstream ihatemoney_backend {
        server {{ upstream }};
    }""",
    nginx_locations="""
        keepalive_timeout 5;
        location /static/ {
            alias {{ deploy }}/static/;
        }
        location / {
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Host $http_host;
            proxy_redirect off;
            proxy_connect_timeout 90;
            proxy_send_timeout 180;
            proxy_read_timeout 180;
            proxy_buffer_size 16k;
            proxy_buffers 8 16k;
            proxy_busy_buffers_size 32k;
            proxy_intercept_errors on;
            if (!-f $request_filename) {
                proxy_pass http://ihatemoney_backend;
                break;
            }
        }""",
    traffic=(
        Request("/"),
        Request("/static/css/main.css"),
        Request("/create"),
        Request("/authenticate"),
        Request("/password-reminder"),
        # The demo project (ACTIVATE_DEMO_PROJECT = True): logs the visitor in.
        Request("/demo"),
        Request("/demo/"),
        Request("/demo/statistics"),
        Request("/demo/history"),
        Request("/demo/settle_bills"),
        Request("/demo/edit"),
        Request("/demo/add"),
        Request("/demo/members/add"),
        Request("/demo/invite"),
        Request("/demo/export/bills.json"),
        Request("/demo/"),
        Request("/demo/statistics"),
        Request("/lang/fr"),
        Request("/demo/"),
        Request("/lang/en"),
        Request("/demo/history"),
        Request("/healthcheck"),
        Request("/api/projects/demo", headers={"Authorization": "Basic ZGVtbzpkZW1v"}),
        Request("/api/projects/demo/members", headers={"Authorization": "Basic ZGVtbzpkZW1v"}),
        Request("/api/projects/demo/bills", headers={"Authorization": "Basic ZGVtbzpkZW1v"}),
        Request("/exit"),
        Request("/"),
        Request("/no-such-project/"),
    ),
    cli_arguments=("--gunicorn-config", "{{ deploy }}/gunicorn.conf.py"),
)


PGADMIN = App(
    name="pgadmin4",
    requirements=("pgadmin4==9.18", "gunicorn==27.0.1"),
    about=(
        "pgAdmin 4 in server mode: Flask 3.1, Flask-Security-Too, Flask-SQLAlchemy 3.1 on "
        "its SQLite configuration database, Flask-Migrate, Flask-WTF CSRF on every method, "
        "ProxyFix from its PROXY_X_* settings. Deployed per docs/en_US/server_deployment.rst: "
        "config_local.py with DATA_DIR, `python setup.py setup-db` with PGADMIN_SETUP_EMAIL "
        "and PGADMIN_SETUP_PASSWORD, gunicorn `--workers=1 --threads=25` on a unix socket "
        "with nginx `include proxy_params` in front."
    ),
    files={
        # docs/en_US/server_deployment.rst, "Python": the paths under one DATA_DIR. No
        # upgrade check at start: the deployment has no network.
        "config_local.py": """
import os

SERVER_MODE = True
DATA_DIR = "{{ state }}"
LOG_FILE = os.path.join(DATA_DIR, "pgadmin4.log")
UPGRADE_CHECK_ENABLED = False
""",
        "prodready_wsgi.py": '''"""pgAdmin4:app as the docs serve it, with ProdReady added."""

from flask_prodready import ProdReady
from pgAdmin4 import app as application

ProdReady(application)
''',
    },
    setup=(("{{ python }}", "{{ site_packages }}/pgadmin4/setup.py", "setup-db"),),
    environment={
        "PGADMIN_SETUP_EMAIL": "admin@example.com",
        "PGADMIN_SETUP_PASSWORD": "{{ password }}",
        # gunicorn --chdir puts the pgadmin4 folder on the path; flask readiness needs it too.
        "PYTHONPATH": "{{ deploy }}:{{ site_packages }}/pgadmin4",
    },
    gunicorn=("--workers=1", "--threads=25", "--chdir", "{{ site_packages }}/pgadmin4"),
    nginx_locations="""
        location / {"""
    + PROXY_PARAMS
    + """
            proxy_pass http://{{ upstream }};
        }""",
    traffic=(
        Request("/"),
        Request("/login"),
        Request("/login"),
        Request("/browser/"),
        Request("/misc/ping"),
        Request("/favicon.ico"),
        Request("/static/js/generated/pgadmin.css"),
        Request("/static/js/generated/style.css"),
        Request("/static/img/logo-right-128.png"),
        Request("/static/js/generated/app.bundle.js"),
        Request("/static/js/generated/security.pages.js"),
        Request("/browser/js/utils.js"),
        Request("/tools/translations.js"),
        Request("/misc/ping"),
        Request("/login"),
        Request("/browser/"),
        Request("/reset"),
        Request("/misc/ping"),
        Request("/login"),
        Request("/"),
        Request("/misc/ping"),
        Request("/login"),
        Request("/static/js/generated/pgadmin.css"),
        Request("/static/img/logo-right-128.png"),
        Request("/misc/ping"),
    ),
)


def _api(path: str) -> Request:
    """A GET of privacyIDEA's API with the token the visit's login returned."""
    return Request(path, headers={"Authorization": "{{ jwt }}"})


PRIVACYIDEA = App(
    name="privacyidea",
    requirements=("privacyidea==3.14", "gunicorn==27.0.1"),
    about=(
        "privacyIDEA, a multi-factor authentication server: Flask 3.1, Flask-SQLAlchemy "
        "3.1 on SQLite, Flask-Migrate, a JSON API and a single-page web UI. Deployed per "
        "its installation docs (the pi.cfg of doc/installation/system/inifile.rst, the "
        "wsgi script of the Apache guide): a random SECRET_KEY and PI_PEPPER, `pi-manage "
        "setup create_enckey`, `create_audit_keys`, `create_tables`, `pi-manage admin "
        "add`; gunicorn instead of mod_wsgi, nginx with `include proxy_params` in front."
    ),
    files={
        # doc/installation/system/inifile.rst, with the paths under the deployment.
        "pi.cfg": """
import logging

SUPERUSER_REALM = ["super"]
SQLALCHEMY_DATABASE_URI = "sqlite:///{{ state }}/data.sqlite"
SECRET_KEY = "{{ secret_key }}"
PI_PEPPER = "{{ pepper }}"
PI_ENCFILE = "{{ state }}/enckey"
PI_AUDIT_KEY_PRIVATE = "{{ state }}/private.pem"
PI_AUDIT_KEY_PUBLIC = "{{ state }}/public.pem"
PI_AUDIT_SQL_TRUNCATE = True
PI_LOGFILE = "{{ state }}/privacyidea.log"
PI_LOGLEVEL = logging.INFO
""",
        "prodready_wsgi.py": """\"\"\"The docs' privacyideaapp.wsgi, with ProdReady added.\"\"\"

import os
import sys

from flask_prodready import ProdReady
from privacyidea.app import create_app

sys.stdout = sys.stderr
application = create_app(
    config_name="production", config_file=os.environ["PRIVACYIDEA_CONFIGFILE"], silent=True
)
ProdReady(application)
""",
    },
    setup=(
        ("{{ venv }}/bin/pi-manage", "setup", "create_enckey"),
        ("{{ venv }}/bin/pi-manage", "setup", "create_audit_keys"),
        ("{{ venv }}/bin/pi-manage", "setup", "create_tables"),
        ("{{ venv }}/bin/pi-manage", "admin", "add", "admin", "-p", "{{ password }}"),
    ),
    environment={"PRIVACYIDEA_CONFIGFILE": "{{ deploy }}/pi.cfg"},
    gunicorn=("--workers=3",),
    # privacyIDEA's policies match the client's address: a unix socket has none (every
    # login fails with ERR905), so gunicorn listens on loopback TCP, as in its container.
    bind="tcp",
    nginx_locations="""
        location / {"""
    + PROXY_PARAMS
    + """
            proxy_pass http://{{ upstream }};
        }""",
    traffic=(
        # "/" redirects to /app/v2/ (a 404 in 3.14); the web UI is /app/v2/en/ and these
        # files of privacyidea 3.14.
        Request("/"),
        Request("/app/v2/en/"),
        *(
            Request(f"/static/dist/privacyidea-webui/browser/en/{name}")
            for name in (
                "styles-SGOHDGVZ.css",
                "polyfills-STFQ6Z5V.js",
                "main-6BOTAYD6.js",
                "chunk-C3AELRXL.js",
                "assets/favicon.ico",
            )
        ),
        Request("/config"),
        Request(
            "/auth",
            method="POST",
            form={"username": "admin", "password": "{{ password }}"},
            keep={"jwt": "result.value.token"},
        ),
        _api("/auth/rights"),
        _api("/token/"),
        _api("/realm/"),
        _api("/resolver/"),
        _api("/policy/"),
        _api("/system/"),
        _api("/system/documentation"),
        _api("/audit/"),
        _api("/machine/"),
        _api("/event/"),
        _api("/caconnector/"),
        _api("/token/"),
        _api("/realm/superuser"),
        _api("/smtpserver/"),
        _api("/radiusserver/"),
        _api("/periodictask/"),
        _api("/privacyideaserver/"),
        _api("/defaultrealm"),
        _api("/healthcheck/"),
        Request("/"),
        Request("/no-such-page"),
    ),
)


#: Every application of the ecosystem check, by name.
APPS: dict[str, App] = {app.name: app for app in (IHATEMONEY, PGADMIN, PRIVACYIDEA)}

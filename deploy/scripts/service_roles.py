"""Each service as its own database role, as a deployment has it (deploy/postgres/
service-roles.sql makes the roles, service-schemas.sql their schemas): for chaos.py and
verify_pacts.py, and for lib/service-roles.sh (run.sh, fuzz.sh, sdk-tests.sh), which calls this
file for its URLs.

with-postgres.sh creates the four roles in its throwaway cluster, with a password each in
AUTH_DB_PASSWORD, PROVISIONING_DB_PASSWORD, REALTIME_DB_PASSWORD and STORAGE_DB_PASSWORD.

    python3 service_roles.py
        prepare() on DATABASE_URL's database, printing shell assignments: AUTH_DATABASE_URL,
        PROVISIONING_DATABASE_URL, REALTIME_DATABASE_URL, STORAGE_DATABASE_URL,
        service_roles_admin_url (the superuser's URL on that database) and, exported,
        ROLE_SETTINGS; nothing when the roles are not there.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import urllib.parse
from pathlib import Path

SERVICES = ("auth", "provisioning", "realtime", "storage")
SCHEMAS_SQL = Path(__file__).resolve().parent.parent / "postgres" / "service-schemas.sql"
# What provisioning's tenant migrations grant to (its AUTH_DATABASE_ROLE, REALTIME_DATABASE_ROLE).
ROLE_SETTINGS = {"AUTH_DATABASE_ROLE": "platform_auth", "REALTIME_DATABASE_ROLE": "platform_realtime"}


def role(service: str) -> str:
    return "platform_" + service


def with_credentials(url: str, user: str, password: str, database_from: str) -> str:
    """`url` with `user` and `password` (kept as they are when `user` is empty), on the
    database `database_from` names."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if user:
        host = netloc.rsplit("@", 1)[-1]
        netloc = urllib.parse.quote(user, safe="") + ":" + urllib.parse.quote(password, safe="") + "@" + host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, path=urllib.parse.urlsplit(database_from).path))


def available(environ=os.environ) -> bool:
    """True when with-postgres.sh made the services' roles: their passwords and the
    superuser's URL (DATABASE_ADMIN_URL) are set."""
    return bool(environ.get("DATABASE_ADMIN_URL")) and all(environ.get(s.upper() + "_DB_PASSWORD") for s in SERVICES)


def admin_url(database_url: str, environ=os.environ) -> str:
    """The superuser's URL (DATABASE_ADMIN_URL) on the database `database_url` names."""
    return with_credentials(environ["DATABASE_ADMIN_URL"], "", "", database_url)


def prepare(database_url: str, environ=os.environ) -> dict[str, str] | None:
    """When with-postgres.sh made the roles (their passwords and DATABASE_ADMIN_URL are set):
    makes their schemas in `database_url`'s database, as the superuser, and returns each
    service's URL there. Otherwise None: every service connects as `database_url`'s role."""
    if not available(environ):
        return None
    passwords = {service: environ[service.upper() + "_DB_PASSWORD"] for service in SERVICES}
    subprocess.run(["psql", admin_url(database_url, environ), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-f", str(SCHEMAS_SQL)], check=True, capture_output=True, text=True)
    return {service: with_credentials(database_url, role(service), passwords[service], database_url) for service in SERVICES}


if __name__ == "__main__":
    if len(sys.argv) != 1 or not os.environ.get("DATABASE_URL"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    urls = prepare(os.environ["DATABASE_URL"])
    if urls:
        for service, url in urls.items():
            print(f"{service.upper()}_DATABASE_URL={shlex.quote(url)}")
        print(f"service_roles_admin_url={shlex.quote(admin_url(os.environ['DATABASE_URL']))}")
        for name, value in ROLE_SETTINGS.items():
            print(f"export {name}={shlex.quote(value)}")

"""The Redshift test rig: pgbouncer in front of the test PostgreSQL, so redshift_connector can talk to it.

redshift_connector sends startup parameters PostgreSQL rejects and its SCRAM handling fails
against PostgreSQL; pgbouncer (trust auth, those parameters ignored) sits in between.
"""
from __future__ import annotations

import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.pg import PgServer

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
IGNORED_STARTUP_PARAMETERS = "client_protocol_version,driver_version,os_version,extra_float_digits,driver_discovery_version"
STARTUP_SECONDS = 15.0
# Client user names pgbouncer accepts (trust auth); every one reaches PostgreSQL as `postgres`.
# "IAM:postgres" is what get_cluster_credentials returns for DbUser=postgres.
RIG_USERS = ("postgres", "IAM:postgres")


@dataclass(frozen=True)
class RigDatabase:
    """A test database: the URL dbops is given, and a psycopg URL of the same database for checking what landed."""

    name: str
    url: str
    pg_url: str
    driver: str


@dataclass
class Bouncer:
    """A running pgbouncer listening on 127.0.0.1:port, forwarding every database to the test server."""

    port: int
    workdir: Path
    process: subprocess.Popen

    def url(self, database: str, **params: str) -> str:
        """A `redshift://` URL for `database` through pgbouncer, SSL explicitly off (the rig only)."""
        query = "&".join(f"{k}={v}" for k, v in {"sslmode": "disable", **params}.items())
        return f"redshift://postgres@127.0.0.1:{self.port}/{database}?{query}"

    def log(self) -> str:
        path = self.workdir / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(server: PgServer, port: int, workdir: Path) -> str:
    return f"""[databases]
* = host={server.socket_dir} port=5432 user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/userlist.txt
pool_mode = session
max_client_conn = 1000
default_pool_size = 200
ignore_startup_parameters = {IGNORED_STARTUP_PARAMETERS}
server_reset_query = DISCARD ALL
# Every test has databases of its own: a server connection left idle by a finished test is closed within
# seconds, not pgbouncer's default 10 minutes, so they cannot pile up to the server's max_connections.
server_idle_timeout = 2
server_login_retry = 0
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
"""


def _run_as() -> str | None:
    """pgbouncer refuses to run as root; as root, run it as the user that owns the server's data folder."""
    return "pgserver" if os.geteuid() == 0 else None


def _wait_until_listening(port: int, process: subprocess.Popen, workdir: Path) -> bool:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def start_bouncer(server: PgServer, attempts: int = 3, extra: str = "", owned: tuple[Path, ...] = ()) -> Bouncer:
    """Start pgbouncer for `server` on a free local port (a few tries if another process takes the port).

    `extra` lines go into its [pgbouncer] section (e.g. TLS settings); `owned` files are handed to its user.
    """
    user = _run_as()
    last_log = ""
    for _ in range(attempts):
        workdir = Path(tempfile.mkdtemp(prefix="dbops-bouncer-"))
        port = _free_port()
        (workdir / "pgbouncer.ini").write_text(_config(server, port, workdir) + extra)
        (workdir / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in RIG_USERS))
        if user:
            uid = pwd.getpwnam(user).pw_uid
            for path in (workdir, workdir / "pgbouncer.ini", workdir / "userlist.txt", *owned):
                os.chown(path, uid, -1)
        process = subprocess.Popen(
            [PGBOUNCER, str(workdir / "pgbouncer.ini")],
            user=user,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        bouncer = Bouncer(port=port, workdir=workdir, process=process)
        if _wait_until_listening(port, process, workdir):
            atexit.register(bouncer.stop)  # also when the test run ends without tearing its fixtures down
            return bouncer
        last_log = bouncer.log()
        bouncer.stop()
    raise RuntimeError(f"pgbouncer did not start:\n{last_log}")

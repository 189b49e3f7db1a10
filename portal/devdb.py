"""An embedded PostgreSQL cluster for development (`make run`) and the test suite.

It uses the machine's PostgreSQL binaries. PostgreSQL refuses to run as root, so when we are root
the cluster files belong to the unprivileged `postgres` OS user and every server command runs as it.
The cluster gets two roles, mirroring production:

* ``portal_owner`` owns the database and the tables and runs migrations;
* ``portal_app`` is the login role of the application: NOSUPERUSER, NOBYPASSRLS, owns nothing, and
  is granted DML only (see ``portal.db.privileges``), so row-level security applies to it.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

OWNER_ROLE = "portal_owner"
APP_ROLE = "portal_app"


def find_bindir() -> Path:
    """Where initdb and pg_ctl live: PG_BINDIR, the newest Debian version, or PATH."""
    if env := os.environ.get("PG_BINDIR"):
        return Path(env)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    for cand in candidates:
        if (Path(cand) / "initdb").exists():
            return Path(cand)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: install them (Debian: apt-get install -y postgresql) "
        "or set DATABASE_URL to an existing server."
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_root() -> bool:
    return os.geteuid() == 0


@dataclass
class Cluster:
    root: Path  # everything of the cluster lives here: data/, run/, log, secrets.json
    port: int
    fast: bool = False  # tests only: no fsync

    def __post_init__(self) -> None:
        self.datadir = self.root / "data"
        self.sockdir = self.root / "run"  # the server's Unix socket
        self.logfile = self.root / "postgres.log"
        self.secrets_file = self.root / "secrets.json"

    # -- process plumbing -------------------------------------------------------------------
    def _run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        if _as_root():
            pw = pwd.getpwnam("postgres")
            kw.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        return subprocess.run(args, check=True, capture_output=True, text=True, **kw)

    def _own(self, path: Path) -> None:
        if _as_root():
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if _as_root():
            # The postgres user must be able to traverse to the cluster.
            os.chmod(self.root, 0o755)
            for parent in self.root.parents:
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    raise RuntimeError(
                        f"{parent} is not traversable by the postgres user (needs o+x); "
                        "set PORTAL_DATA_DIR to a folder under one that is."
                    )
        for d in (self.datadir, self.sockdir):
            d.mkdir(exist_ok=True)
            os.chmod(d, 0o700)
            self._own(d)
        self.logfile.touch(exist_ok=True)
        self._own(self.logfile)

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        self._prepare_dirs()
        if self.initialized:
            return
        bindir = find_bindir()
        self._run(
            [
                str(bindir / "initdb"),
                "-D", str(self.datadir),
                "-U", "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E", "UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ]
        )

    def running(self) -> bool:
        try:
            self._run([str(find_bindir() / "pg_ctl"), "status", "-D", str(self.datadir)])
            return True
        except subprocess.CalledProcessError:
            return False

    def start(self) -> None:
        if self.running():
            return
        opts = [
            f"-p {self.port}",
            f"-k {self.sockdir}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=200",
        ]
        if self.fast:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            [
                str(find_bindir() / "pg_ctl"),
                "start", "-w", "-t", "60",
                "-D", str(self.datadir),
                "-l", str(self.logfile),
                "-o", " ".join(opts),
            ]
        )

    def stop(self) -> None:
        if self.initialized and self.running():
            self._run([str(find_bindir() / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "fast", "-w"])

    # -- roles and database -----------------------------------------------------------------------
    def _load_secrets(self) -> dict:
        if self.secrets_file.exists():
            return json.loads(self.secrets_file.read_text())
        data = {OWNER_ROLE: secrets.token_urlsafe(18), APP_ROLE: secrets.token_urlsafe(18)}
        self.secrets_file.write_text(json.dumps(data))
        os.chmod(self.secrets_file, 0o600)
        return data

    async def bootstrap(self, database: str = "portal") -> tuple[str, str]:
        """Create the two roles and the database if missing; return (app_url, owner_url)."""
        pw = self._load_secrets()
        conn = await asyncpg.connect(host=str(self.sockdir), port=self.port, user="postgres", database="postgres")
        try:
            for role, attrs in (
                (OWNER_ROLE, "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"),
                (APP_ROLE, "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT"),
            ):
                exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
                verb = "ALTER" if exists else "CREATE"
                # Role names are our constants; the password is ours and URL-safe.
                await conn.execute(f"{verb} ROLE {role} {attrs} PASSWORD '{pw[role]}'")
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
                await conn.execute(f'CREATE DATABASE "{database}" OWNER {OWNER_ROLE}')
        finally:
            await conn.close()
        return self.url(APP_ROLE, database), self.url(OWNER_ROLE, database)

    def url(self, role: str, database: str = "portal") -> str:
        pw = self._load_secrets()[role]
        return f"postgresql://{role}:{pw}@127.0.0.1:{self.port}/{database}"

    async def superuser_connect(self, database: str = "portal") -> asyncpg.Connection:
        return await asyncpg.connect(host=str(self.sockdir), port=self.port, user="postgres", database=database)


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")

"""PgBouncer in transaction pooling mode in front of the suite's PostgreSQL, started like the
cluster itself (Debian's ``pgbouncer``, as the ``postgres`` OS user when run as root)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from portal import devdb

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


class PgBouncer:
    def __init__(self, database) -> None:
        self.database = database
        self.root: Path = database.root / "pgbouncer"
        self.port = devdb.free_port()
        self.process: subprocess.Popen | None = None

    def url(self, role: str = devdb.APP_ROLE) -> str:
        secret = self.database.cluster._load_secrets()[role]
        return f"postgresql://{role}:{secret}@127.0.0.1:{self.port}/portal"

    def start(self) -> "PgBouncer":
        if not Path(PGBOUNCER).exists():
            raise RuntimeError("pgbouncer not found: install it (Debian: apt-get install -y pgbouncer)")
        self.root.mkdir(exist_ok=True)
        secrets = self.database.cluster._load_secrets()
        (self.root / "userlist.txt").write_text("".join(f'"{role}" "{pw}"\n' for role, pw in secrets.items()))
        (self.root / "pgbouncer.ini").write_text(f"""[databases]
portal = host=127.0.0.1 port={self.database.cluster.port} dbname=portal

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {self.root / "userlist.txt"}
pool_mode = transaction
max_client_conn = 500
default_pool_size = 40
; asyncpg sends the portal's timeouts as startup parameters; behind a pooler they come from the
; database's own defaults instead (`portal migrate` sets them), so PgBouncer may drop them.
ignore_startup_parameters = extra_float_digits,idle_in_transaction_session_timeout,lock_timeout,statement_timeout
logfile = {self.root / "pgbouncer.log"}
""")
        kwargs: dict = {}
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            pw = pwd.getpwnam("postgres")
            for path in (self.root, *self.root.iterdir()):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        self.process = subprocess.Popen([PGBOUNCER, str(self.root / "pgbouncer.ini")], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, **kwargs)
        devdb.wait_for_port(self.port, timeout=15)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

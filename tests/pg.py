"""The suite's own PostgreSQL: a throwaway cluster, migrated by the real `portal migrate`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from portal import devdb


class TestDatabase:
    def __init__(self) -> None:
        # mkdtemp makes a 0700 folder; the postgres OS user needs to traverse it.
        self.root = Path(tempfile.mkdtemp(prefix="portal-test-"))
        os.chmod(self.root, 0o755)
        self.cluster = devdb.Cluster(self.root / "pg", devdb.free_port(), fast=True)
        self.data_dir = self.root / "data"
        self.data_dir.mkdir()
        self.app_url = self.owner_url = ""

    async def start(self) -> None:
        self.cluster.init()
        self.cluster.start()
        self.app_url, self.owner_url = await self.cluster.bootstrap()

    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.app_url,
            "MIGRATE_DATABASE_URL": self.owner_url,
            "SECRET_KEY": "test-secret-key-0123456789abcdef",
            "PORTAL_DATA_DIR": str(self.data_dir),
            "BASE_URL": "http://testserver",
            # Race tests fire many concurrent requests as one person on purpose; the fair-share
            # cap itself is tested with its own, small setting (tests/ops/test_capacity.py).
            "PER_PRINCIPAL_CONCURRENCY": "64",
            "PER_CLIENT_CONCURRENCY": "128",
        }

    def migrate(self) -> None:
        env = {**os.environ, **self.env()}
        result = subprocess.run([sys.executable, "-m", "portal.cli", "migrate"], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"portal migrate failed:\n{result.stdout}\n{result.stderr}")

    def stop(self) -> None:
        try:
            self.cluster.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

"""`make soak`: the PostgreSQL-restart test run longer and busier (a 60 s outage under 16
clients, three times); its rows go into the soak section of bench/results.md, which `make bench`
keeps when it rewrites the rest of the file.

    python -m bench.soak ROWS_FILE   # the table rows the runs appended (SOAK_REPORT)
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

START, END = "<!-- soak -->", "<!-- /soak -->"
INTRO = """## Soak: PostgreSQL restarts under load (`make soak`)

The operations tests run longer and busier than in `make test` — PostgreSQL stopped for 60 s while
16 clients browse a real `portal serve` (`DB_POOL_SIZE=4`, `DB_ACQUIRE_TIMEOUT=2s`), three times.
Every run must answer only 200 or 503 (never 500), no request past the acquire timeout, and serve
again without an app restart. Each `make soak` adds its runs here; `make bench` keeps this section."""
HEADER = "| what | load | requests | latency | recovery |\n|---|---|---|---|---|"


def section(results: str) -> str | None:
    """The soak section of ``results`` (markers included), if there is one."""
    if START not in results:
        return None
    rest = results.split(START, 1)[1]
    return START + rest.split(END, 1)[0] + END if END in rest else None


def keep(rendered: str, previous: str | None) -> str:
    """``rendered`` (a whole new results.md) with the soak section of ``previous`` appended."""
    kept = section(previous) if previous else None
    return rendered.rstrip("\n") + f"\n\n{kept}\n" if kept else rendered


def with_run(current: str | None, rows: str, when: datetime) -> str:
    """The soak section with one more run (``rows``, under a heading with its time)."""
    body = current[len(START):-len(END)].strip() if current else INTRO
    run = f"### {when:%Y-%m-%d %H:%M} UTC\n\n{HEADER}\n{rows.strip()}"
    return f"{START}\n{body}\n\n{run}\n{END}"


def main(argv: list[str]) -> None:
    from bench.run import RESULTS, write_section

    rows = Path(argv[0]).read_text()
    if not rows.strip():
        raise SystemExit("no soak rows to write")
    current = section(RESULTS.read_text()) if RESULTS.exists() else None
    write_section(START, END, with_run(current, rows, datetime.now(timezone.utc)))
    print(f"wrote the soak section of {RESULTS.name}")


if __name__ == "__main__":
    main(sys.argv[1:])

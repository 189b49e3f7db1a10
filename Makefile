# Praesidia portal — the commands a newcomer needs. See README.md.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test install fuzz bench soak screenshots clean-db help

help:
	@echo "make run          start the portal on http://127.0.0.1:8000 (embedded PostgreSQL + demo org)"
	@echo "make test         run the whole test suite (real PostgreSQL, SMTP and browser)"
	@echo "make fuzz         the property-based suites with many more examples"
	@echo "make bench        seed a large dataset and write bench/results.md"
	@echo "make soak         the operations tests, longer and busier; figures in bench/results.md"
	@echo "make screenshots  regenerate docs/screenshots/*.png"
	@echo "make clean-db     delete the embedded development database (.portal/)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/portal dev --host 127.0.0.1 --port 8000

# The whole suite, then the isolation matrix and the race tests again through PgBouncer in
# transaction pooling mode (tests/pgbouncer.py), as a deployment behind one runs.
PGBOUNCER_PASS = tests/tenancy/test_isolation_matrix.py tests/members/test_members_races.py \
	tests/invites/test_invites_dead.py tests/roles/test_roles_races.py tests/tenancy/test_db_posture.py

test: $(STAMP)
	$(BIN)/pytest
	PORTAL_TEST_PGBOUNCER=1 $(BIN)/pytest $(PGBOUNCER_PASS)

# A 60 s PostgreSQL outage under 16 clients, three times; figures added to the soak section of
# bench/results.md (which `make bench` keeps).
soak: $(STAMP)
	rows=$$(mktemp) && \
	for i in 1 2 3; do SOAK_OUTAGE=60 SOAK_CLIENTS=16 SOAK_REPORT=$$rows $(BIN)/pytest -q tests/ops/test_operations.py -k restart || { rm -f $$rows; exit 1; }; done && \
	$(BIN)/python -m bench.soak $$rows; status=$$?; rm -f $$rows; exit $$status

fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz LIFECYCLE_EXAMPLES=400 $(BIN)/pytest -m "not browser" tests

bench: $(STAMP)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.noisy
	$(BIN)/python -m bench.compare
	$(BIN)/python -m bench.roles
	$(BIN)/python -m bench.api

screenshots: $(STAMP)
	PORTAL_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/browser -k screenshots

clean-db:
	rm -rf .portal

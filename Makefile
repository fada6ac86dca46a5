# Two commands a newcomer needs: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.runtime
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: install run test lint typecheck fuzz contract-live clean bench

# The development install (tests, linters, type checker) implies the runtime one.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUNTIME_STAMP)

# Serving needs the runtime alone: `make run` on a fresh clone installs no dev tools.
$(RUNTIME_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

install: $(STAMP)

run: $(RUNTIME_STAMP)
	$(BIN)/agentstatus-mock serve --host $(HOST) --port $(PORT)

# The contract kit against the emulator in the two strict profiles (`pytest -n 2` above runs it
# in the default one); never against a live tenant, whatever the shell exports.
KIT_ON_EMULATOR := AGENTSTATUS_BASE_URL= AGENTSTATUS_EMULATOR_URL=
REPORT ?= contract-report

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n 2
	$(KIT_ON_EMULATOR) $(BIN)/python -m pytest -n 2 contract_tests --emulator-profile guide
	$(KIT_ON_EMULATOR) $(BIN)/python -m pytest -n 2 contract_tests --emulator-profile reference
	AGENTSTATUS_TEST_STORE=sqlite $(BIN)/python -m pytest -n 2 $(SQLITE_TESTS)

# The rule-heavy files run a second time on the SQLite state store (as `--workers N` uses).
SQLITE_TESTS := tests/test_transitions.py tests/test_bulk.py tests/test_set_status.py tests/test_auth.py

# Throughput and latency of every serving mode against a bare Flask baseline (docs/benchmark.md).
# wrk, the load generator, comes from Debian's packages (bench/install-wrk, when missing).
# PEERS=1 also installs (bench/install-peers, into bench/.peers) and measures WireMock and Prism.
PEERS ?=
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	bench/install-wrk
	BENCH_PEERS=$(PEERS) $(BIN)/python -m bench

# Generated hostile requests (nesting, sizes, encodings, framing, header counts) against every
# serving mode, FUZZ_EXAMPLES each (no 5xx, no HTML, no hang, memory growth bounded; the test
# suite runs 40). Long Schemathesis runs (every check, stateful links) against the emulator:
# FUZZ_EXAMPLES examples per operation and for the state machine; the test suite runs a few. Driven by the
# emulator's own document, then by the vendor's reference (schemas/official-openapi.json).
# Then the contract kit against FUZZ_VARIANTS random variants of the vendor double (FUZZ_SEED).
# Then the reference client's properties, FUZZ_EXAMPLES each (answers generated from the vendor's
# schemas, error answers, requests built, bulk pairing, the retry table and budget; the test suite
# runs 50), and its state machine against an emulator in each profile, FUZZ_MACHINE_EXAMPLES
# sequences of up to 50 calls (the suite runs 15). At the defaults, with other work on 2 cores:
# properties 2 min 47 s, retries 26 s, state machine 8 min 36 s.
FUZZ_EXAMPLES ?= 1000
FUZZ_MACHINE_EXAMPLES ?= 200
FUZZ_VARIANTS ?= 40
FUZZ_SEED ?= 0
fuzz: $(STAMP)
	AGENTSTATUS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -s -p no:cacheprovider \
		tests/test_hostile_requests.py
	AGENTSTATUS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q \
		tests/contract/test_contract_schemathesis.py tests/contract/test_vendor_schemathesis.py
	AGENTSTATUS_FUZZ_VARIANTS=$(FUZZ_VARIANTS) AGENTSTATUS_FUZZ_SEED=$(FUZZ_SEED) \
		$(BIN)/python -m pytest -q -n 2 -p no:cacheprovider tests/kit/fuzz_kit_variants.py
	AGENTSTATUS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/client/test_client_properties.py tests/client/test_retry_properties.py
	AGENTSTATUS_FUZZ_EXAMPLES=$(FUZZ_MACHINE_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/client/test_client_state_machine.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# The contract kit against a live tenant: AGENTSTATUS_BASE_URL, _TENANT, _USERNAME and _TOKEN
# must be set (docs/contract.md, "Checking a live tenant"); writes the report to $(REPORT).json and .md.
contract-live: $(STAMP)
	@test -n "$$AGENTSTATUS_BASE_URL" || { echo "set AGENTSTATUS_BASE_URL (and _TENANT, _USERNAME, _TOKEN)"; exit 2; }
	$(BIN)/python -m pytest contract_tests -p no:xdist -p no:schemathesis --report $(REPORT)

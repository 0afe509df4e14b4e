# Two commands for a newcomer: `make serve` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test tools lint typecheck unit bench fuzz clean

$(STAMP): setup.cfg pyproject.toml setup.py resolver/_nametable.c resolver/_ngmem.c resolver/_wire.c resolver/_upsock.c resolver/_ttl.c resolver/_query.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/lachan serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check resolver tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy resolver

# benchmarks/tests run in their own session: both folders have a conftest.py, and without
# packages pytest would import them under one module name.
unit: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	$(BIN)/python -m pytest -q -p no:cacheprovider benchmarks/tests

# The Debian tools the tests drive: installed as root, else one line naming the apt-get command.
tools:
	scripts/install-test-tools

test: tools lint typecheck unit

# ISP subscriber mode with 1,000,000 subscribers and bindings: 6 short rounds of each kind by
# default (the machine may be shared); `make bench SUBSCRIBERS_LONG=1` for 12 rounds of 10 s.
SUBSCRIBERS_ROUNDS := $(if $(SUBSCRIBERS_LONG),--rounds 12 --seconds 10,--rounds 6 --seconds 3)

# The side-by-side dnsperf run, then the compiled index, the policy decision and the
# pressure figures (each script prints its table and writes JSON to benchmarks/results/).
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(ARGS)
	$(BIN)/python benchmarks/index_bench.py
	$(BIN)/python benchmarks/policy_bench.py
	$(BIN)/python benchmarks/pressure.py
	$(BIN)/python benchmarks/encrypted_bench.py
	$(BIN)/python benchmarks/collector_bench.py
	$(BIN)/python benchmarks/subscribers_bench.py $(SUBSCRIBERS_ROUNDS) \
		--json benchmarks/results/subscribers.json

fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz.run $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The Debian package (debhelper): lachan in a private venv under /usr/lib/lachan, into dist/.
.PHONY: deb
deb:
	scripts/build-deb dist

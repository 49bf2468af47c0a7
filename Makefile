# FrontDesk. `make demo` runs one simulated call end to end; `make test` runs the test suite.
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen

.PHONY: setup observability-tools balancer-tools demo test faults lint up bench bench-smoke clean

setup:
	@command -v uv >/dev/null 2>&1 || [ -x "$(UV)" ] || python3 -m pip install --quiet --user uv
	$(UV) sync --frozen

demo: setup
	$(RUN) frontdesk demo

# promtool (Debian package `prometheus`) checks and unit-tests the alert rules in `make test`;
# installed here when missing and apt-get can (tests skip loudly otherwise).
observability-tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "installing promtool (apt-get install prometheus)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null) \
	  || echo "WARNING: could not install promtool: the alert-rule tests will be skipped"; }

# HAProxy (Debian package `haproxy`) balances gateway and media replicas in `frontdesk up
# --replicas`, the bench's --replicas and the placement tests (skipped loudly without it).
balancer-tools:
	@command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || { \
	  echo "installing haproxy (apt-get install haproxy)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null) \
	  || echo "WARNING: could not install haproxy: the placement tests will be skipped"; }

# Two pytest workers: most of the suite waits on simulated calls in real time.
test: setup observability-tools balancer-tools
	$(RUN) pytest -q -n 2 -m "not faults"

# The fault suite (docs/reliability.md): two replicas of every service on a private Redis and
# Postgres; kill -9 / SIGTERM / restarts mid-call. About 5 minutes, so not in `make test`.
faults: setup balancer-tools
	$(RUN) pytest -q -p no:randomly -m faults

lint: setup
	$(RUN) ruff check shared services sim tests frontdesk
	$(RUN) mypy shared services frontdesk

up: setup
	$(RUN) frontdesk up

# N concurrent simulated calls, measured (docs/bench.md). CALLS=100 PROFILE=zero TURNS=4.
CALLS ?= 100
PROFILE ?= zero
TURNS ?= 4
bench: setup
	$(RUN) frontdesk bench --calls $(CALLS) --profile $(PROFILE) --turns $(TURNS)

# A few calls through the bench: the report must be complete (also part of `make test`).
bench-smoke: setup
	$(RUN) pytest -q tests/bench

clean:
	rm -rf .frontdesk .pytest_cache .mypy_cache .ruff_cache

# FrontDesk. `make demo` runs one simulated call end to end; `make test` runs the test suite.
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen

.PHONY: setup console-assets browser observability-tools redis-cluster-tools balancer-tools demo test faults quality lint up down up-cluster bench bench-smoke clean

setup: console-assets
	@command -v uv >/dev/null 2>&1 || [ -x "$(UV)" ] || python3 -m pip install --quiet --user uv
	$(UV) sync --frozen --extra speech

# The console's and /docs' browser libraries (htmx, swagger-ui-dist), from the npm registry at
# the versions web/package-lock.json pins; the gateway serves them itself (no CDN).
console-assets: web/node_modules/.package-lock.json
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "installing npm (apt-get install npm)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	npm ci --prefix web --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

# Debian's Chromium for the console's browser tests (driven by Playwright for Python).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (apt-get install chromium)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }

demo: setup
	$(RUN) frontdesk demo

# promtool (Debian package `prometheus`) checks and unit-tests the alert rules in `make test`;
# installed here when missing and apt-get can (tests skip loudly otherwise).
observability-tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "installing promtool (apt-get install prometheus)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null) \
	  || echo "WARNING: could not install promtool: the alert-rule tests will be skipped"; }

# tests/cluster starts a local 3-master Redis Cluster from Debian's redis-server (and
# `frontdesk up --redis-cluster` does too); installed here when missing.
redis-cluster-tools:
	@command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || { \
	  echo "installing redis-server (apt-get install redis-server)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }

# HAProxy (Debian package `haproxy`) balances gateway and media replicas in `frontdesk up
# --replicas`, the bench's --replicas and the placement tests (skipped loudly without it).
balancer-tools:
	@command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || { \
	  echo "installing haproxy (apt-get install haproxy)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null) \
	  || echo "WARNING: could not install haproxy: the placement tests will be skipped"; }

# Two pytest workers: most of the suite waits on simulated calls in real time. loadgroup keeps
# tests/cluster (one Redis Cluster and one platform on it) on one worker.
test: setup observability-tools redis-cluster-tools balancer-tools browser
	$(RUN) pytest -q -n 2 --dist loadgroup --durations=15 -m "not faults and not quality"

# The call-quality scenarios on the real speech path (Piper caller, Whisper, Piper agent; the
# LLM scripted), asserted in Postgres: FAQ, barge-in, backchannel, silence, DTMF, book /
# reschedule / cancel, the short call and the real-speech barge-in, and the barge-in onset bound
# (each real-speech call costs CPU seconds). About 6 minutes on 2 cores.
quality: setup
	$(RUN) pytest -q -p no:randomly -m quality tests/speech/test_real_speech_calls.py tests/e2e/test_barge_in_onset.py

# The fault suite (docs/reliability.md): two replicas of every service on a private Redis and
# Postgres; kill -9 / SIGTERM / restarts mid-call. About 5 minutes, so not in `make test`.
faults: setup balancer-tools
	$(RUN) pytest -q -p no:randomly -m faults

lint: setup
	$(RUN) ruff check shared services sim tests frontdesk
	$(RUN) mypy shared services frontdesk

# The platform until Ctrl-C (or `make down` from another terminal). SPEECH=local (default):
# the speech service hears and speaks every call, so `frontdesk call` works against it;
# SPEECH=sim: the scripted simulators (fast, no models; callers must tell the STT simulator).
SPEECH ?= local
up: setup
	$(RUN) frontdesk up --speech $(SPEECH)

down:
	$(RUN) frontdesk down

up-cluster: setup redis-cluster-tools
	$(RUN) frontdesk up --redis-cluster

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

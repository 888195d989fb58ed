# dbops — the two commands a new machine needs: `make demo` and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)



.PHONY: setup system-deps demo test stress ui bench clean

setup: ## the Python environment, exactly as uv.lock pins it
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode

system-deps: ## pgbouncer (Redshift driver rig) and chromium (UI test), from Debian's packages
	@missing=""; \
	command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing="$$missing pgbouncer"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v psql >/dev/null 2>&1 || missing="$$missing postgresql-client"; \
	command -v git >/dev/null 2>&1 || missing="$$missing git"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: setup ## apply sql/ to the embedded database through the Dagster job, then show the result
	$(UV) run dbops local start
	$(UV) run dbops migrate
	$(UV) run dbops info

test: setup system-deps ## the whole test suite
	$(UV) run pytest -n 2 --dist loadgroup -q

stress: setup system-deps ## reliability suites at full scale
	DBOPS_STRESS_SCALE=full $(UV) run pytest -q -m stress

ui: setup ## the Dagster UI on this project (http://127.0.0.1:3000)
	$(UV) run dbops ui

bench: setup system-deps ## benchmarks (not tests): dbops vs psql, Dagster overhead, lint, review, run lock, git sensor, info's failed attempts, fleets
	$(UV) run python -m bench.engine
	$(UV) run python -m bench.big_scripts
	$(UV) run python -m bench.dagster_overhead
	$(UV) run python -m bench.lint
	$(UV) run python -m bench.review
	$(UV) run python -m bench.run_lock
	$(UV) run python -m bench.redshift_statements
	$(UV) run python -m bench.git_sensor
	$(UV) run python -m bench.info
	$(UV) run python -m bench.fleet

clean: ## stop the embedded database and remove local state
	-$(UV) run dbops local stop
	rm -rf .dbops

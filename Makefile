# Every target sets itself up (virtual environment, install, a running RabbitMQ): see scripts/dev.sh.
.PHONY: demo test lint bench bench-slow setup

demo:  ## run the bridge with simulated agents (http://127.0.0.1:8000)
	scripts/dev.sh demo

test:  ## run the whole test suite against a real RabbitMQ
	scripts/dev.sh test

lint:  ## ruff (lint and format), mypy --strict and the import contracts (lint-imports)
	scripts/dev.sh lint

bench:  ## the live-path benchmark (not part of the tests)
	scripts/dev.sh setup && scripts/dev.sh broker && .venv/bin/python -m tests.performance.bench_live

bench-slow:  ## the slow-consumer benchmark: 99 clients and a stuck one (not part of the tests)
	scripts/dev.sh setup && scripts/dev.sh broker && .venv/bin/python -m tests.performance.bench_slow_consumer

setup:
	scripts/dev.sh setup

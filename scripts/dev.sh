#!/usr/bin/env bash
# Newcomer entry point: set up the virtual environment, make sure a RabbitMQ answers, then run
# the demo or the tests. Usage: scripts/dev.sh {setup|broker|demo|test|lint} [ARGS...]
#
# The broker is EVENTBRIDGE_AMQP_URL, else the local 127.0.0.1:5672; if none answers, a local
# `rabbitmq-server` is started if installed, else a Docker container if Docker runs; otherwise
# the script stops with a sentence saying how to get a broker.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
DEFAULT_URL="amqp://guest:guest@127.0.0.1:5672/"

say() { printf 'eventbridge: %s\n' "$*" >&2; }

python_bin() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  say "Python 3.11 or newer is needed; install it (e.g. apt-get install python3) and run again."
  exit 1
}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtual environment in $VENV"
    "$(python_bin)" -m venv "$VENV"
  fi
  # Reinstall only when the package metadata changed since the last install.
  local stamp="$VENV/.installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    say "installing eventbridge and its development tools"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
    touch "$stamp"
  fi
}

setup_js() {
  if [ -f tests/js/package-lock.json ]; then
    if ! command -v npm >/dev/null 2>&1; then
      say "Node.js and npm are needed for the JavaScript client tests; install them (apt-get install nodejs npm)."
      exit 1
    fi
    if [ ! -d tests/js/node_modules ] || [ tests/js/package-lock.json -nt tests/js/node_modules ]; then
      say "installing the JavaScript test clients"
      npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
    fi
  fi
  # The client library (clients/js) and the AsyncAPI CLI that validates schemas/asyncapi.json.
  local dir
  for dir in clients/js tools/asyncapi; do
    if [ -f "$dir/package-lock.json" ] &&
      { [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; }; then
      say "installing the JavaScript packages of $dir"
      npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    fi
  done
}

answers() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

broker() {
  local url="${EVENTBRIDGE_AMQP_URL:-$DEFAULT_URL}"
  local hostport="${url#*://}"
  hostport="${hostport#*@}"
  hostport="${hostport%%/*}"
  local host="${hostport%%:*}"
  local port=5672
  [ "$hostport" != "$host" ] && port="${hostport##*:}"
  if answers "$host" "$port"; then
    return
  fi
  if [ -n "${EVENTBRIDGE_AMQP_URL:-}" ] && [ "$host" != "127.0.0.1" ] && [ "$host" != "localhost" ]; then
    say "No RabbitMQ answers at $host:$port (EVENTBRIDGE_AMQP_URL); start it or correct the URL."
    exit 1
  fi
  if command -v rabbitmq-server >/dev/null 2>&1; then
    say "starting the local rabbitmq-server"
    rabbitmq-server -detached >/dev/null 2>&1 || true
    timeout 120 rabbitmqctl await_startup >/dev/null 2>&1 || true
  elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    say "starting RabbitMQ in Docker (container eventbridge-rabbitmq)"
    docker start eventbridge-rabbitmq >/dev/null 2>&1 ||
      docker run -d --name eventbridge-rabbitmq -p 5672:5672 -p 15672:15672 \
        rabbitmq:3.13-management >/dev/null
  else
    say "No RabbitMQ answers at $host:$port and neither rabbitmq-server nor Docker is available: install RabbitMQ (apt-get install rabbitmq-server) or set EVENTBRIDGE_AMQP_URL to a running broker."
    exit 1
  fi
  for _ in $(seq 1 120); do
    answers "$host" "$port" && return
    sleep 1
  done
  say "RabbitMQ was started but does not answer at $host:$port after 120 s; check its log."
  exit 1
}

# The suite in two parts, ARGS passed to pytest in both. First every test that shares the
# machine well, in parallel (pytest-xdist; tests that must share a worker carry an xdist_group);
# then, one at a time with nothing beside them, the tests that measure the bridge under load
# (marker `serial`) and the cluster fault tests (marker `cluster`). EVENTBRIDGE_TEST_WORKERS
# sets how many workers run the first part.
run_tests() {
  local workers="${EVENTBRIDGE_TEST_WORKERS:-6}" parallel=0 serial=0 booting=""
  local boot_log="${TMPDIR:-/tmp}/eventbridge-cluster-boot.log"
  # For the whole suite (no ARGS), the private cluster of the `cluster` tests boots while the
  # first part runs, and is stopped at the end; a cluster already running is left alone.
  if [ $# -eq 0 ] && ! scripts/cluster.sh status >/dev/null 2>&1; then
    scripts/cluster.sh start >"$boot_log" 2>&1 &
    booting=$!
    trap 'scripts/cluster.sh stop >/dev/null 2>&1 || true' EXIT
  fi
  "$VENV/bin/python" -m pytest -n "$workers" --dist loadgroup -m "not serial and not cluster" "$@" ||
    parallel=$?
  if [ -n "$booting" ] && ! wait "$booting"; then
    say "the private cluster did not boot beside the tests ($boot_log); the cluster tests start it"
  fi
  [ "$parallel" -eq 2 ] && exit 2 # interrupted (Ctrl-C): not the second part either
  "$VENV/bin/python" -m pytest -m "serial or cluster" "$@" || serial=$?
  # pytest exits 5 when it ran no test: ARGS chose none in one part.
  if [ "$parallel" -eq 5 ] && [ "$serial" -eq 5 ]; then
    exit 5
  fi
  [ "$parallel" -eq 5 ] && parallel=0
  [ "$serial" -eq 5 ] && serial=0
  [ "$parallel" -ne 0 ] && exit "$parallel"
  exit "$serial"
}

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  setup) setup; setup_js ;;
  broker) broker ;;
  demo) setup; broker; exec "$VENV/bin/eventbridge" demo "$@" ;;
  test) setup; setup_js; broker; run_tests "$@" ;;
  lint)
    setup
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/mypy"
    "$VENV/bin/lint-imports" --no-cache
    ;;
  *)
    echo "usage: scripts/dev.sh {setup|broker|demo|test|lint} [ARGS...]" >&2
    exit 2
    ;;
esac

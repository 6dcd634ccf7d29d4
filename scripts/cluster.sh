#!/usr/bin/env bash
# A private 3-node RabbitMQ cluster for tests, on free local ports, apart from the machine's own
# broker (which this script never touches). It uses the locally installed `rabbitmq-server`.
#
#   scripts/cluster.sh start     start the cluster (or report the one already running)
#   scripts/cluster.sh stop      stop exactly this cluster's nodes and delete its directory
#   scripts/cluster.sh status    each node's state; exit 0 only if all three run
#   scripts/cluster.sh env       `export` lines for the cluster's URLs, node names and ports
#
# What tests/cluster.py drives (nodes are numbered 1 to 3, as their names):
#   scripts/cluster.sh start-node N...   start stopped nodes (together), wait until each runs
#                                        in the cluster again
#   scripts/cluster.sh stop-node N...    stop nodes gracefully; returns once each VM has exited
#   scripts/cluster.sh kill-node N...    SIGKILL the nodes' Erlang VMs
#   scripts/cluster.sh ctl N ARGS...     `rabbitmqctl -n <node N> ARGS...`, as the nodes' user
#   scripts/cluster.sh diagnostics N ARGS...   the same with `rabbitmq-diagnostics`
#
# Environment:
#   EVENTBRIDGE_CLUSTER_DIR   where all state lives (default /tmp/eventbridge-cluster): one
#                             directory per node (config, data, logs, pid file) and cluster.env
#   EVENTBRIDGE_CLUSTER_NAME  node name stem (default ebc: ebc1@localhost .. ebc3@localhost); give a
#                             second cluster another directory and another name
#   RABBITMQ_SBIN             the directory of RabbitMQ's own scripts, if not found by itself
#
# Run as root, the nodes run as the `rabbitmq` user and share its Erlang cookie
# (~rabbitmq/.erlang.cookie), like Debian's /usr/sbin wrappers do; run as any other user, they
# run as that user with that user's cookie. They share the machine's epmd.
set -euo pipefail

DIR="${EVENTBRIDGE_CLUSTER_DIR:-/tmp/eventbridge-cluster}"
NAME="${EVENTBRIDGE_CLUSTER_NAME:-ebc}"
SIZE=3
HOSTNAME_PART=localhost
BOOT_TIMEOUT=120 # seconds; a restarted member waits for its peers' tables while it boots
ENV_FILE="$DIR/cluster.env"
SELF="$(readlink -f "$0")"

say() { printf "cluster: [%s] %s\n" "$(date +%T)" "$*" >&2; }
die() {
  say "$*"
  exit 1
}

# --- finding RabbitMQ and the user to run it as ------------------------------------------------

# Sets SBIN, the directory of RabbitMQ's own scripts, and AS_NODES_USER, the command prefix that
# runs a program as the nodes' user with the HOME holding the shared Erlang cookie: the rabbitmq
# user when run as root, else the caller. Debian's /usr/sbin/rabbitmq-* are wrappers that switch
# to the rabbitmq user and hard-code /var/lib/rabbitmq; the real scripts sit next to rabbitmq-env.
SBIN=""
AS_NODES_USER=()
need_rabbitmq() {
  local candidate home
  for candidate in "${RABBITMQ_SBIN:-}" /usr/lib/rabbitmq/bin \
    "$(dirname "$(readlink -f "$(command -v rabbitmq-server || echo /nonexistent)")")"; do
    if [ -n "$candidate" ] && [ -x "$candidate/rabbitmq-server" ] && [ -f "$candidate/rabbitmq-env" ]; then
      SBIN="$candidate"
      break
    fi
  done
  [ -n "$SBIN" ] ||
    die "rabbitmq-server is not installed: install it (apt-get install rabbitmq-server) or set RABBITMQ_SBIN to the directory of its scripts."
  if [ "$(id -u)" = 0 ]; then
    home="$(getent passwd rabbitmq | cut -d: -f6)" ||
      die "run as root, the nodes run as the rabbitmq user, and there is none: install rabbitmq-server."
    AS_NODES_USER=(setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups env HOME="$home")
  fi
}

as_nodes_user() { "${AS_NODES_USER[@]}" "$@"; }

# --- nodes -------------------------------------------------------------------------------------

node_dir() { echo "$DIR/node$1"; }

check_node_number() {
  case "$1" in
    [1-$SIZE]) ;;
    *) die "no node $1: nodes are numbered 1 to $SIZE." ;;
  esac
}

# Print one of the node's settings (from its node.env) without touching this shell.
node_setting() { # N VARIABLE
  (
    set -a
    # shellcheck source=/dev/null
    . "$(node_dir "$1")/node.env"
    eval "echo \"\${$2}\""
  )
}

# rabbitmqctl (or another RabbitMQ CLI tool) against node N, in the node's environment.
node_cli() { # TOOL N ARGS...
  local tool="$1" n="$2"
  shift 2
  (
    set -a
    # shellcheck source=/dev/null
    . "$(node_dir "$n")/node.env"
    set +a
    cd "$DIR"
    as_nodes_user "$SBIN/$tool" -n "$RABBITMQ_NODENAME" "$@"
  )
}

ctl() { node_cli rabbitmqctl "$@"; }

# The OS pid of node N's Erlang VM if it runs, else nothing. The pid file alone is not enough: a
# killed node leaves it behind, and the pid may since belong to another process. (The node name
# is not on the VM's command line in 3.10, but in its environment.)
node_pid() {
  local pid_file pid
  pid_file="$(node_setting "$1" RABBITMQ_PID_FILE)"
  [ -s "$pid_file" ] || return 0
  pid="$(cat "$pid_file")"
  if [ -r "/proc/$pid/environ" ] &&
    tr '\0' '\n' <"/proc/$pid/environ" |
    grep -x "RABBITMQ_NODENAME=$(node_setting "$1" RABBITMQ_NODENAME)" >/dev/null; then
    echo "$pid"
  fi
}

# Start node N's VM in the background, detached from this script's session.
launch() {
  local dir
  dir="$(node_dir "$1")"
  rm -f "$(node_setting "$1" RABBITMQ_PID_FILE)"
  (
    set -a
    # shellcheck source=/dev/null
    . "$dir/node.env"
    set +a
    cd "$DIR"
    exec setsid "${AS_NODES_USER[@]}" "$SBIN/rabbitmq-server" </dev/null >>"$dir/console.log" 2>&1 9>&-
  ) &
}

# Wait until node N has booted (its `rabbit` application runs), or fail saying where to look.
await_boot() {
  local pid_file
  pid_file="$(node_setting "$1" RABBITMQ_PID_FILE)"
  if ! ctl "$1" -q wait "$pid_file" --timeout "$BOOT_TIMEOUT" >/dev/null 2>&1; then
    die "node $(node_setting "$1" RABBITMQ_NODENAME) did not start within ${BOOT_TIMEOUT} s; see $(node_dir "$1")/log and $(node_dir "$1")/console.log."
  fi
}

await_members() { # N: wait until node N sees all the cluster's nodes running
  ctl "$1" -q await_online_nodes "$SIZE" --timeout 60 >/dev/null ||
    die "node $1 does not see $SIZE running nodes after 60 s; see $(node_dir "$1")/log."
}

start_nodes() { # N... : start these nodes together, wait for each
  local n pids=() failed=0
  for n in "$@"; do
    check_node_number "$n"
    if [ -n "$(node_pid "$n")" ]; then
      say "node $n ($(node_setting "$n" RABBITMQ_NODENAME)) already runs"
    else
      say "starting node $n ($(node_setting "$n" RABBITMQ_NODENAME))"
      launch "$n"
    fi
  done
  for n in "$@"; do
    await_boot "$n" &
    pids+=($!)
  done
  for n in "${pids[@]}"; do
    wait "$n" || failed=1
  done
  [ "$failed" = 0 ] || exit 1
}

stop_nodes() { # N... : graceful stop; return once each VM has exited (kill it after 60 s)
  local n pid
  for n in "$@"; do
    check_node_number "$n"
    pid="$(node_pid "$n")"
    if [ -z "$pid" ]; then
      say "node $n is not running"
      continue
    fi
    say "stopping node $n ($(node_setting "$n" RABBITMQ_NODENAME))"
    if ! EVENTBRIDGE_CLUSTER_DIR="$DIR" timeout 60 "$SELF" ctl "$n" -q stop "$(node_setting "$n" RABBITMQ_PID_FILE)" >/dev/null 2>&1; then
      say "node $n did not stop within 60 s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done
}

kill_nodes() { # N... : SIGKILL the VMs, return once they are gone
  local n pid
  for n in "$@"; do
    check_node_number "$n"
    pid="$(node_pid "$n")"
    if [ -z "$pid" ]; then
      say "node $n is not running"
      continue
    fi
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done
}

# --- the cluster -------------------------------------------------------------------------------

# A free TCP port below the kernel's ephemeral range, so no outgoing connection holds it later.
# It also keeps clear of RabbitMQ's defaults (5672, 25672) and the CLI tools' 35672-35682.
used_ports() { ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u; }
free_ports() { # COUNT
  local used port picked=()
  used="$(used_ports)"
  while [ ${#picked[@]} -lt "$1" ]; do
    port=$((20000 + RANDOM % 12000))
    [ "$port" = 25672 ] && continue
    grep -qx "$port" <<<"$used" && continue
    [[ " ${picked[*]} " == *" $port "* ]] && continue
    picked+=("$port")
  done
  echo "${picked[@]}"
}

node_name() { echo "$NAME$1@$HOSTNAME_PART"; }

write_node_files() { # N AMQP_PORT DIST_PORT
  local dir
  dir="$(node_dir "$1")"
  mkdir -p "$dir/mnesia" "$dir/log"
  echo '[].' >"$dir/enabled_plugins"
  # The system config pins the listener to 5672, so each node has its own; defaults otherwise.
  cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$2
# A node cut off from the majority pauses, as in production; a lone survivor pauses too.
cluster_partition_handling = pause_minority
log.console = false
log.file.level = info
# A fresh node joins node 1 as it first boots; a node with data rejoins its own cluster instead.
cluster_formation.peer_discovery_backend = classic_config
cluster_formation.classic_config.nodes.1 = $(node_name 1)
EOF
  # Replaces /etc/rabbitmq/rabbitmq-env.conf, which names the system node.
  cat >"$dir/rabbitmq-env.conf" <<EOF
ERL_EPMD_ADDRESS=127.0.0.1
EOF
  cat >"$dir/node.env" <<EOF
RABBITMQ_NODENAME=$(node_name "$1")
RABBITMQ_NODE_PORT=$2
RABBITMQ_DIST_PORT=$3
RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf
RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf
RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
RABBITMQ_MNESIA_BASE=$dir/mnesia
RABBITMQ_LOG_BASE=$dir/log
RABBITMQ_PID_FILE=$dir/pid
ERL_EPMD_ADDRESS=127.0.0.1
ERL_FLAGS='-kernel inet_dist_use_interface {127,0,0,1}'
EOF
}

write_cluster_env() { # AMQP_PORTS... then DIST_PORTS... (SIZE of each)
  local i urls=() names=() amqp=() dist=()
  for i in $(seq 1 "$SIZE"); do
    amqp+=("${!i}")
    local d=$((i + SIZE))
    dist+=("${!d}")
    urls+=("amqp://guest:guest@127.0.0.1:${!i}/")
    names+=("$(node_name "$i")")
  done
  local IFS=,
  cat >"$ENV_FILE.tmp" <<EOF
EVENTBRIDGE_CLUSTER_DIR=$DIR
EVENTBRIDGE_CLUSTER_URLS=${urls[*]}
EVENTBRIDGE_CLUSTER_NODES=${names[*]}
EVENTBRIDGE_CLUSTER_AMQP_PORTS=${amqp[*]}
EVENTBRIDGE_CLUSTER_DIST_PORTS=${dist[*]}
EOF
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

all_nodes() { seq 1 "$SIZE"; }

running_count() {
  local n count=0
  for n in $(all_nodes); do
    [ -n "$(node_pid "$n")" ] && count=$((count + 1))
  done
  echo "$count"
}

create() {
  local epmd_names n ports
  if [ -d "$DIR" ]; then
    # A start that failed half-way: nothing in it is a cluster yet.
    say "removing the unfinished cluster in $DIR"
    [ -f "$DIR/node1/node.env" ] && stop_nodes $(for n in $(all_nodes); do
      [ -f "$(node_dir "$n")/node.env" ] && echo "$n"
    done)
    rm -rf "$DIR"
  fi
  epmd_names="$(epmd -names 2>/dev/null || true)"
  for n in $(all_nodes); do
    if grep -q "name ${NAME}${n} " <<<"$epmd_names"; then
      die "a node named $(node_name "$n") already runs outside $DIR: stop it, or set EVENTBRIDGE_CLUSTER_NAME (and EVENTBRIDGE_CLUSTER_DIR) for a second cluster."
    fi
  done
  mkdir -p "$DIR"
  read -r -a ports <<<"$(free_ports $((2 * SIZE)))"
  for n in $(all_nodes); do
    write_node_files "$n" "${ports[$((n - 1))]}" "${ports[$((n - 1 + SIZE))]}"
  done
  if [ "$(id -u)" = 0 ]; then
    chown -R rabbitmq:rabbitmq "$DIR"
    as_nodes_user test -w "$DIR/node1/mnesia" ||
      die "the rabbitmq user cannot write to $DIR: choose an EVENTBRIDGE_CLUSTER_DIR it can reach (e.g. under /tmp)."
  fi
  # On failure, stop what was started (quietly: the error above is what the caller must see).
  trap 'stop_nodes $(all_nodes) >/dev/null 2>&1' EXIT
  # Node 1 first: the others find it at their first boot (peer discovery) and join it there,
  # which saves restarting their `rabbit` application for a join_cluster.
  start_nodes 1
  start_nodes $(seq 2 "$SIZE")
  for n in $(seq 2 "$SIZE"); do
    if ! ctl "$n" -q cluster_status --formatter json | grep "\"$(node_name 1)\"" >/dev/null; then
      say "node $n did not find node 1 as it booted: joining it with join_cluster"
      ctl "$n" -q stop_app >/dev/null
      ctl "$n" -q join_cluster "$(node_name 1)" >/dev/null
      ctl "$n" -q start_app >/dev/null
    fi
  done
  say "waiting until node 1 sees $SIZE running nodes"
  await_members 1
  write_cluster_env "${ports[@]}"
  trap - EXIT
}

cmd_start() {
  local started now
  started=$(date +%s)
  if [ -f "$ENV_FILE" ]; then
    if [ "$(running_count)" = "$SIZE" ]; then
      say "already running in $DIR"
    else
      # A cluster stopped node by node (or by a reboot): its nodes wait for each other at boot,
      # so start them together.
      start_nodes $(all_nodes)
      await_members 1
    fi
  else
    say "starting a $SIZE-node cluster in $DIR"
    create
  fi
  now=$(date +%s)
  say "running ($((now - started)) s): $(grep EVENTBRIDGE_CLUSTER_URLS "$ENV_FILE" | cut -d= -f2-)"
}

cmd_stop() {
  local n
  if [ ! -d "$DIR" ]; then
    say "no cluster in $DIR"
    return
  fi
  for n in $(all_nodes); do
    [ -f "$(node_dir "$n")/node.env" ] || continue
    stop_nodes "$n" &
  done
  wait
  rm -rf "$DIR"
  say "stopped; removed $DIR"
}

cmd_status() {
  local n pid state all=0
  if [ ! -f "$ENV_FILE" ]; then
    say "no cluster in $DIR"
    return 3
  fi
  for n in $(all_nodes); do
    pid="$(node_pid "$n")"
    if [ -z "$pid" ]; then
      state="stopped"
      all=1
    elif ctl "$n" -q await_startup --timeout 1 >/dev/null 2>&1; then
      state="running (pid $pid)"
    else
      state="booting or paused (pid $pid, the rabbit application is not running)"
      all=1
    fi
    printf '%s  amqp://127.0.0.1:%s/  %s\n' "$(node_setting "$n" RABBITMQ_NODENAME)" \
      "$(node_setting "$n" RABBITMQ_NODE_PORT)" "$state"
  done
  return "$all"
}

need_cluster() {
  [ -f "$ENV_FILE" ] || die "no cluster in $DIR: start one with scripts/cluster.sh start."
}

cmd_env() {
  need_cluster
  sed 's/^/export /' "$ENV_FILE"
}

# Serialise commands that change the cluster: two test sessions may start it at once. (The nodes
# started meanwhile must not inherit the lock's descriptor: launch() closes it.)
locked() {
  exec 9>"${DIR%/}.lock"
  flock 9
  "$@"
}

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  env | "") ;;
  start | stop | status) need_rabbitmq ;;
  *)
    need_rabbitmq
    need_cluster
    ;;
esac
case "$command" in
  start) locked cmd_start ;;
  stop) locked cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  start-node)
    [ $# -gt 0 ] || die "start-node needs node numbers (1 to $SIZE)."
    start_nodes "$@"
    for n in "$@"; do await_members "$n"; done
    ;;
  stop-node)
    [ $# -gt 0 ] || die "stop-node needs node numbers (1 to $SIZE)."
    stop_nodes "$@"
    ;;
  kill-node)
    [ $# -gt 0 ] || die "kill-node needs node numbers (1 to $SIZE)."
    kill_nodes "$@"
    ;;
  ctl | diagnostics)
    [ $# -gt 1 ] || die "$command needs a node number and the tool's arguments."
    check_node_number "$1"
    if [ "$command" = ctl ]; then ctl "$@"; else node_cli rabbitmq-diagnostics "$@"; fi
    ;;
  *)
    echo "usage: scripts/cluster.sh {start|stop|status|env|start-node N...|stop-node N...|kill-node N...|ctl N ARGS...|diagnostics N ARGS...}" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# A local three-node RabbitMQ cluster for sealrpc's cluster tests, beside the default broker.
#
#   rabbitmq-cluster.sh start        start c1..c3@localhost and cluster them (idempotent)
#   rabbitmq-cluster.sh stop         stop the three nodes and delete their data dirs
#   rabbitmq-cluster.sh status       one line per node: running/stopped, app, cluster members
#   rabbitmq-cluster.sh urls         the AMQP URL list (comma-separated) for AmqpOptions
#   rabbitmq-cluster.sh kill N       kill -9 node cN's beam.smp (a crash)
#   rabbitmq-cluster.sh stop-app N   rabbitmqctl stop_app on cN (the node stays, RabbitMQ stops)
#   rabbitmq-cluster.sh start-app N  rabbitmqctl start_app on cN
#   rabbitmq-cluster.sh restart N    start cN again after `kill N` (it rejoins the cluster)
#   rabbitmq-cluster.sh leader Q     the node number of the leader of quorum queue Q
#   rabbitmq-cluster.sh purge P      delete the queues and exchanges whose names start with P
#   rabbitmq-cluster.sh freeze N     SIGSTOP cN (it stops answering, sockets stay open); thaw N
#
# Node cN listens for AMQP on 127.0.0.1:568N and for Erlang distribution on 2568N, with its
# own data and log dirs under $SEALRPC_CLUSTER_DIR (default /tmp/sealrpc-rabbitmq-cluster).
# The nodes run as the `rabbitmq` user with HOME=/var/lib/rabbitmq, so they share the
# Erlang cookie (and epmd) of the default broker rabbit@localhost (5672 / 25672), which this
# script never touches. Run it as root (it uses `su rabbitmq`) or as the rabbitmq user.
set -euo pipefail

BASE="${SEALRPC_CLUSTER_DIR:-/tmp/sealrpc-rabbitmq-cluster}"
RMQ_BIN=/usr/lib/rabbitmq/bin
RMQ_HOME=/var/lib/rabbitmq
NODES=(1 2 3)
START_TIMEOUT="${SEALRPC_CLUSTER_START_TIMEOUT:-120}"

die() { echo "rabbitmq-cluster: $*" >&2; exit 1; }
node() { echo "c$1@localhost"; }
amqp_port() { echo $((5680 + $1)); }
dist_port() { echo $((25680 + $1)); }
dir() { echo "$BASE/c$1"; }

# Runs a shell command line as the rabbitmq user (the cookie's owner).
as_rabbitmq() {
  if [ "$(id -u)" = 0 ]; then
    su rabbitmq -s /bin/sh -c "$1"
  elif [ "$(id -un)" = rabbitmq ]; then
    sh -c "$1"
  else
    die "run as root or as the rabbitmq user (the nodes share /var/lib/rabbitmq/.erlang.cookie)"
  fi
}

# rabbitmqctl against node cN, with the shared cookie; extra args are passed as they are.
ctl() {
  local n=$1; shift
  as_rabbitmq "HOME=$RMQ_HOME $RMQ_BIN/rabbitmqctl -q -n $(node "$n") $(printf '%q ' "$@")"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The Erlang VM of cN answers (whether or not the RabbitMQ app runs).
vm_up() { ctl "$1" eval "ok." >/dev/null 2>&1; }

# The RabbitMQ app of cN runs and its AMQP port accepts connections.
app_up() { port_open "$(amqp_port "$1")" && ctl "$1" eval "rabbit:is_running()." 2>/dev/null | grep -q true; }

check_prereqs() {
  [ -x "$RMQ_BIN/rabbitmq-server" ] || die "$RMQ_BIN/rabbitmq-server not found (apt-get install rabbitmq-server)"
  id rabbitmq >/dev/null 2>&1 || die "no rabbitmq user (apt-get install rabbitmq-server)"
  [ -f "$RMQ_HOME/.erlang.cookie" ] || die "$RMQ_HOME/.erlang.cookie missing (start the default broker once)"
  [ "$(id -u)" = 0 ] || [ "$(id -un)" = rabbitmq ] || die "run as root or as the rabbitmq user"
}

write_config() {
  local n=$1 d; d=$(dir "$n")
  mkdir -p "$d/mnesia" "$d/log"
  # Only 127.0.0.1, never the system config (whose NODENAME is the default broker's).
  cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$(amqp_port "$n")
loopback_users.guest = true
log.file.level = warning
log.console = false
EOF
  cat >"$d/rabbitmq-env.conf" <<'EOF'
ERL_EPMD_ADDRESS=127.0.0.1
export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
  echo "[]." >"$d/plugins"
  if [ "$(id -u)" = 0 ]; then chown -R rabbitmq:rabbitmq "$BASE"; fi
}

# Starts the VM of cN (detached) unless it already runs.
start_node() {
  local n=$1 d; d=$(dir "$n")
  if vm_up "$n"; then return 0; fi
  if port_open "$(amqp_port "$n")" || port_open "$(dist_port "$n")"; then
    die "port $(amqp_port "$n") or $(dist_port "$n") is taken by something that is not $(node "$n")"
  fi
  write_config "$n"
  as_rabbitmq "cd $RMQ_HOME && env RABBITMQ_NODENAME=$(node "$n") RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT=$(amqp_port "$n") RABBITMQ_DIST_PORT=$(dist_port "$n") \
    RABBITMQ_MNESIA_BASE=$d/mnesia RABBITMQ_LOG_BASE=$d/log RABBITMQ_PID_FILE=$d/pid \
    RABBITMQ_ENABLED_PLUGINS_FILE=$d/plugins RABBITMQ_CONFIG_FILE=$d/rabbitmq \
    RABBITMQ_CONF_ENV_FILE=$d/rabbitmq-env.conf HOME=$RMQ_HOME \
    $RMQ_BIN/rabbitmq-server -detached" >>"$d/log/start.out" 2>&1 9>&- \
    || die "rabbitmq-server for $(node "$n") failed; see $d/log/start.out"
}

# Waits until the app of cN runs (or fails after START_TIMEOUT seconds). With `restart`, an
# app that was stopped (stop-app: the VM runs, the app neither runs nor boots) is started.
await_app() {
  local n=$1 deadline=$((SECONDS + START_TIMEOUT))
  until app_up "$n"; do
    [ $SECONDS -lt $deadline ] || die "$(node "$n") did not come up within ${START_TIMEOUT}s; logs in $(dir "$n")/log"
    if [ "${2:-}" = restart ] && vm_up "$n" \
      && ctl "$n" eval "rabbit:is_booting()." 2>/dev/null | grep -q false; then
      ctl "$n" start_app >/dev/null 2>&1 || true
    fi
    sleep 1
  done
}

# The running members of the cluster as seen by cN (space-separated node names).
members() {
  ctl "$1" eval "rabbit_nodes:all_running()." 2>/dev/null | tr -d "[]'\n" | tr ',' ' '
}

join() {
  local n=$1
  if members 1 | grep -qw "$(node "$n")"; then return 0; fi
  echo "rabbitmq-cluster: $(node "$n") joins c1@localhost"
  local log; log="$(dir "$n")/log/join.out"
  { ctl "$n" stop_app && ctl "$n" reset && ctl "$n" join_cluster c1@localhost && ctl "$n" start_app; } \
    >>"$log" 2>&1 || die "$(node "$n") could not join c1@localhost; see $log"
  await_app "$n"
}

with_lock() {
  mkdir -p "$BASE"
  exec 9>"$BASE.lock"
  flock -w 300 9 || die "another rabbitmq-cluster.sh holds $BASE.lock"
}

# All three AMQP ports answer and c1 sees all three nodes running.
all_up() {
  for n in "${NODES[@]}"; do port_open "$(amqp_port "$n")" || return 1; done
  [ "$(members 1 | wc -w)" = "${#NODES[@]}" ]
}

cmd_start() {
  check_prereqs
  with_lock
  local t0=$SECONDS
  if all_up; then echo "rabbitmq-cluster: already up: $(members 1)"; return 0; fi
  for n in "${NODES[@]}"; do start_node "$n"; done
  for n in "${NODES[@]}"; do await_app "$n" restart; done
  for n in 2 3; do join "$n"; done
  echo "rabbitmq-cluster: up in $((SECONDS - t0))s: $(members 1)"
}

cmd_stop() {
  check_prereqs
  with_lock
  # Stop c3, c2 first and c1 last, then remove all data (the next start is a fresh cluster).
  for n in 3 2 1; do
    if vm_up "$n"; then ctl "$n" stop >/dev/null 2>&1 || true; fi
    local pidf; pidf="$(dir "$n")/pid"
    if [ -s "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
      kill -9 "$(cat "$pidf")" 2>/dev/null || true
    fi
  done
  rm -rf "$BASE"
  echo "rabbitmq-cluster: stopped, $BASE removed"
}

cmd_status() {
  local rc=0
  for n in "${NODES[@]}"; do
    if ! vm_up "$n"; then
      echo "$(node "$n") amqp=$(amqp_port "$n") stopped"; rc=1
    elif ! app_up "$n"; then
      echo "$(node "$n") amqp=$(amqp_port "$n") vm-running app-stopped"; rc=1
    else
      echo "$(node "$n") amqp=$(amqp_port "$n") running members: $(members "$n")"
    fi
  done
  return $rc
}

cmd_urls() {
  local out=""
  for n in "${NODES[@]}"; do out="$out${out:+,}amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2f"; done
  echo "$out"
}

need_n() {
  case "${1:-}" in 1|2|3) ;; *) die "expected a node number 1, 2 or 3, got '${1:-}'" ;; esac
}

# The node number (1-3) of the leader of quorum queue $1 (vhost /), asked of a running node.
cmd_leader() {
  [ -n "${1:-}" ] || die "expected a queue name"
  for n in "${NODES[@]}"; do
    port_open "$(amqp_port "$n")" || continue
    local line
    line=$(ctl "$n" list_queues name leader --no-table-headers 2>/dev/null | awk -v q="$1" '$1 == q { print $2 }')
    case "$line" in
      c[123]@localhost) echo "${line:1:1}"; return 0 ;;
    esac
  done
  die "no leader found for queue $1"
}

# Deletes every queue and exchange (vhost /) whose name starts with $1, asking a running node.
cmd_purge() {
  case "${1:-}" in ""|amq*) die "expected a name prefix (not empty, not amq.)" ;; esac
  for n in "${NODES[@]}"; do
    port_open "$(amqp_port "$n")" || continue
    local q x
    for q in $(ctl "$n" list_queues name --no-table-headers 2>/dev/null | awk -v p="$1" 'index($1, p) == 1 { print $1 }'); do
      ctl "$n" delete_queue "$q" >/dev/null 2>&1 || true
    done
    for x in $(ctl "$n" list_exchanges name --no-table-headers 2>/dev/null | awk -v p="$1" 'index($1, p) == 1 { print $1 }'); do
      ctl "$n" eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$x\">>), false, <<\"purge\">>)." >/dev/null 2>&1 || true
    done
    return 0
  done
  die "no node is running"
}

cmd_kill() {
  need_n "${1:-}"
  local pidf; pidf="$(dir "$1")/pid"
  [ -s "$pidf" ] || die "no pid file for $(node "$1") ($pidf)"
  local pid; pid=$(cat "$pidf")
  kill -9 "$pid" || die "cannot kill $(node "$1") (pid $pid)"
  echo "rabbitmq-cluster: killed $(node "$1") (beam.smp pid $pid)"
}

# SIGSTOP / SIGCONT of cN's beam.smp: a node that stops answering without closing its
# sockets (a frozen VM, a partition), which clients only notice by missed heartbeats.
cmd_signal() {
  need_n "${2:-}"
  local pidf; pidf="$(dir "$2")/pid"
  [ -s "$pidf" ] || die "no pid file for $(node "$2") ($pidf)"
  kill "-$1" "$(cat "$pidf")" || die "cannot signal $(node "$2")"
  echo "rabbitmq-cluster: sent SIG$1 to $(node "$2")"
}

cmd_restart() {
  need_n "${1:-}"
  check_prereqs
  start_node "$1"
  await_app "$1"
  echo "rabbitmq-cluster: $(node "$1") running; members: $(members "$1")"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  urls) cmd_urls ;;
  kill) cmd_kill "${2:-}" ;;
  stop-app) need_n "${2:-}"; ctl "$2" stop_app >/dev/null; echo "rabbitmq-cluster: $(node "$2") app stopped" ;;
  start-app) need_n "${2:-}"; ctl "$2" start_app >/dev/null; await_app "$2"; echo "rabbitmq-cluster: $(node "$2") app started" ;;
  restart) cmd_restart "${2:-}" ;;
  leader) cmd_leader "${2:-}" ;;
  purge) cmd_purge "${2:-}" ;;
  freeze) cmd_signal STOP "${2:-}" ;;
  thaw) cmd_signal CONT "${2:-}" ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

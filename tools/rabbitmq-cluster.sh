#!/usr/bin/env bash
# A 3-node RabbitMQ cluster beside the machine's default node (rabbit@localhost on 5672, which this
# script never stops, joins or reconfigures), for the tests, CI and benchmarks that need a broker
# that survives losing a node (quorum queues, client failover between node URLs).
#
#   tools/rabbitmq-cluster.sh start    start the nodes that are down, join those not clustered;
#                                      exits 0 once all three run as one cluster (idempotent)
#   tools/rabbitmq-cluster.sh stop     stop the three nodes (each by its own name)
#   tools/rabbitmq-cluster.sh start|stop stockflow2 ...
#                                      only those nodes (start: until they run in the cluster
#                                      of the nodes that run), for rolling restarts in tests
#   tools/rabbitmq-cluster.sh status   which of the three run, and the cluster they form
#                                      (exit 0 when all three run, 3 otherwise)
#   tools/rabbitmq-cluster.sh urls     the three AMQP URLs, comma-separated
#   tools/rabbitmq-cluster.sh reset    stop, wipe all three nodes' data, start afresh: the fallback
#                                      when a node's database no longer agrees with the others'
#
#   node                   AMQP             Erlang distribution
#   stockflow1@localhost   127.0.0.1:5681   25681
#   stockflow2@localhost   127.0.0.1:5682   25682
#   stockflow3@localhost   127.0.0.1:5683   25683
#
# Each node keeps its config, database, logs and pid file in $STOCKFLOW_RABBIT_BASE/<node>
# (default /var/tmp/stockflow-rabbitmq), owned by the rabbitmq user the nodes run as; it shares
# that user's Erlang cookie (/var/lib/rabbitmq/.erlang.cookie), so `rabbitmqctl -n <node>` works
# as it does for the default node. Guest may log in over loopback; no plugins are enabled.
#
# A node that was kill -9'd is simply started again by `start`: it still knows its cluster and
# syncs from the running nodes. A node that cannot boot any more because its database disagrees
# with the cluster (e.g. it was forgotten) is wiped and joined afresh while the others run; when
# that is not possible, `start` says so and `reset` starts the whole cluster from scratch.
set -euo pipefail

BASE=${STOCKFLOW_RABBIT_BASE:-/var/tmp/stockflow-rabbitmq}
HOST=localhost
NAMES=(stockflow1 stockflow2 stockflow3)
AMQP_PORTS=(5681 5682 5683)
DIST_PORTS=(25681 25682 25683)
RUN_AS=rabbitmq
RUN_AS_HOME=/var/lib/rabbitmq
# A node whose peers are all down waits up to 10 x 30 s for them (mnesia's table loading retries)
# before it gives up, so a start must be allowed to take that long.
BOOT_TIMEOUT=${STOCKFLOW_RABBIT_BOOT_TIMEOUT:-330}
CTL_TIMEOUT=120

node_of() { echo "${NAMES[$1]}@$HOST"; }
dir_of() { echo "$BASE/${NAMES[$1]}"; }
pid_file_of() { echo "$(dir_of "$1")/${NAMES[$1]}.pid"; }

log() { echo "$*"; }
die() {
  echo "rabbitmq-cluster: $*" >&2
  exit 1
}

# rabbitmqctl against one node, quiet, bounded in time. Output on stdout, errors on stderr.
ctl() {
  local node=$1
  shift
  # (fd 9, the lock, closed: an epmd the CLI might spawn would hold it forever)
  timeout --kill-after=10 "$CTL_TIMEOUT" rabbitmqctl -q -n "$node" "$@" </dev/null 9>&-
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The node's Erlang VM is up (registered with epmd), whether or not RabbitMQ runs in it.
vm_up() {
  local names
  names=$(epmd -names 2>/dev/null || true)
  grep -q "^name ${NAMES[$1]} at port " <<<"$names"
}

# RabbitMQ runs in the node: its VM is up and its AMQP listener accepts connections (the listener
# opens last when the node boots, and closes when it stops or pauses as a minority).
running() { vm_up "$1" && port_open "${AMQP_PORTS[$1]}"; }

# The pid of the node's VM from its pid file, when that process is still the node's beam.
vm_pid() {
  local file pid
  file=$(pid_file_of "$1")
  [ -r "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] && [ -r "/proc/$pid/environ" ] || return 1
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "RABBITMQ_NODENAME=$(node_of "$1")" || return 1
  echo "$pid"
}

# The nodes a node's `cluster_status` lists under key (disk_nodes, running_nodes), one a line;
# nothing when the node does not answer.
members() {
  local json
  json=$(ctl "$1" cluster_status --formatter json 2>/dev/null) || return 0
  sed -n "s/.*\"$2\":\[\([^]]*\)\].*/\1/p" <<<"$json" | tr -d '"' | tr ',' '\n' | grep -v '^$' || true
}

# Whether a list (one item a line) holds item.
has() { grep -qx "$2" <<<"$1"; }

write_files() {
  local i=$1 dir node
  dir=$(dir_of "$i")
  node=$(node_of "$i")
  mkdir -p "$dir/mnesia" "$dir/log"
  cat >"$dir/rabbitmq.conf" <<EOF
# Written by tools/rabbitmq-cluster.sh for $node.
listeners.tcp.default = 127.0.0.1:${AMQP_PORTS[$i]}
loopback_users = none
# Quorum queues need a majority anyway: a node cut off from both others pauses rather than
# serving a split brain.
cluster_partition_handling = pause_minority
EOF
  echo '[].' >"$dir/enabled_plugins"
  # The env file of its own keeps /etc/rabbitmq/rabbitmq-env.conf (NODENAME=rabbit@localhost) out;
  # the same settings also reach the node as RABBITMQ_* variables (see start_node).
  cat >"$dir/rabbitmq-env.conf" <<EOF
# Written by tools/rabbitmq-cluster.sh for $node.
NODENAME=$node
DIST_PORT=${DIST_PORTS[$i]}
CONFIG_FILE=$dir/rabbitmq.conf
ADVANCED_CONFIG_FILE=$dir/advanced.config
ENABLED_PLUGINS_FILE=$dir/enabled_plugins
MNESIA_BASE=$dir/mnesia
LOG_BASE=$dir/log
PID_FILE=$(pid_file_of "$i")
ERL_EPMD_ADDRESS=127.0.0.1
export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
  if [ "$(id -u)" = 0 ] && id -u "$RUN_AS" >/dev/null 2>&1; then
    chown -R "$RUN_AS:" "$dir"
  fi
}

server_bin() {
  if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    # The real script, not /usr/sbin's wrapper: that one sends the output to the default node's
    # /var/log/rabbitmq/startup_log.
    echo /usr/lib/rabbitmq/bin/rabbitmq-server
  else
    command -v rabbitmq-server || die "rabbitmq-server not found"
  fi
}

start_node() {
  local i=$1 dir node port
  dir=$(dir_of "$i")
  node=$(node_of "$i")
  for port in "${AMQP_PORTS[$i]}" "${DIST_PORTS[$i]}"; do
    port_open "$port" && die "port $port is taken by another process; cannot start $node"
  done
  write_files "$i"
  local -a as_user=()
  if [ "$(id -u)" = 0 ] && id -u "$RUN_AS" >/dev/null 2>&1; then
    as_user=(runuser -u "$RUN_AS" --)
  fi
  (
    cd "$dir"
    "${as_user[@]}" env \
      HOME="$RUN_AS_HOME" \
      RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" \
      RABBITMQ_NODENAME="$node" \
      RABBITMQ_DIST_PORT="${DIST_PORTS[$i]}" \
      RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
      RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
      RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
      RABBITMQ_MNESIA_BASE="$dir/mnesia" \
      RABBITMQ_LOG_BASE="$dir/log" \
      RABBITMQ_PID_FILE="$(pid_file_of "$i")" \
      ERL_EPMD_ADDRESS=127.0.0.1 \
      ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}" \
      "$(server_bin)" -detached >"$dir/log/startup.log" 2>&1 9>&-
  ) || die "$node did not start; see $dir/log/startup.log"
  log "started $node (amqp 127.0.0.1:${AMQP_PORTS[$i]})"
}

# Waits for a node to run; fails when its VM exits (a failed boot) or the wait times out.
await_node() {
  local i=$1 node since=$SECONDS seen=0 nudged=0
  node=$(node_of "$i")
  while [ "$((SECONDS - since))" -lt "$BOOT_TIMEOUT" ]; do
    if vm_up "$i"; then
      seen=1
      if port_open "${AMQP_PORTS[$i]}"; then
        ctl "$node" await_startup >/dev/null 2>&1 && return 0
      elif [ "$nudged" = 0 ] && [ "$((SECONDS - since))" -ge 20 ]; then
        # A VM idling with RabbitMQ stopped and not booting (`stop_app` by hand, or a join that
        # failed half-way) is told to start it.
        nudged=1
        if [ "$(ctl "$node" eval 'rabbit:is_booting() orelse rabbit:is_running().' 2>/dev/null)" = false ]; then
          ctl "$node" start_app >/dev/null 2>&1 || true
        fi
      fi
    elif [ "$seen" = 1 ] || [ "$((SECONDS - since))" -ge 30 ]; then
      return 1 # the VM went away (a failed boot), or never came up
    fi
    sleep 1
  done
  return 1
}

# Why the node's last boot failed, from its log.
boot_error() {
  local log
  log="$(dir_of "$1")/log/$(node_of "$1").log"
  [ -r "$log" ] || return 0
  awk '/BOOT FAILED/ { n = NR } { line[NR] = $0 } END { if (n) for (i = n + 2; i <= n + 6 && i <= NR; i++) print line[i] }' "$log" |
    sed -e 's/^[^>]*> *//' -e '/^$/,$d' | cut -c1-300 || true
}

# Makes node i a member of seed's cluster (wiping node i's own data).
join() {
  local i=$1 seed=$2 node
  node=$(node_of "$i")
  ctl "$node" stop_app >/dev/null
  # The seed may still list an earlier incarnation of this node (its data wiped since).
  if has "$(members "$seed" disk_nodes)" "$node"; then
    ctl "$seed" forget_cluster_node "$node" >/dev/null 2>&1 || true
  fi
  # (join_cluster reports harmless errors about tables of the node it is still joining)
  local out
  out=$(ctl "$node" join_cluster "$seed" 2>&1) || die "$node could not join $seed: $out"
  ctl "$node" start_app >/dev/null
  log "joined $node to the cluster of $seed"
}

# Wipes a node that cannot boot and starts it afresh (only while another node runs).
rebuild() {
  local i=$1 j peer=""
  for j in 0 1 2; do
    if [ "$j" != "$i" ] && running "$j"; then peer=$(node_of "$j") && break; fi
  done
  [ -n "$peer" ] || return 1
  log "$(node_of "$i") cannot boot with its data; wiping it to join afresh"
  boot_error "$i" | sed 's/^/  /'
  if vm_up "$i" || vm_pid "$i" >/dev/null; then stop_node "$i"; fi
  ctl "$peer" forget_cluster_node "$(node_of "$i")" >/dev/null 2>&1 || true
  rm -rf "$(dir_of "$i")/mnesia"
  start_node "$i"
  await_node "$i"
}

# Every node of ours that runs is among the running nodes node i sees in its cluster.
clustered_with_running() {
  local list j
  list=$(members "$(node_of "$1")" running_nodes)
  for j in 0 1 2; do
    if running "$j"; then has "$list" "$(node_of "$j")" || return 1; fi
  done
}

cmd_start() {
  local i j failed=() up=1
  # Already there: one question to one node.
  for i in "${SELECTED[@]}"; do running "$i" || up=0; done
  if [ "$up" = 1 ] && clustered_with_running "${SELECTED[0]}"; then return 0; fi

  for i in "${SELECTED[@]}"; do
    vm_up "$i" || start_node "$i"
  done
  for i in "${SELECTED[@]}"; do
    await_node "$i" || failed+=("$i")
  done
  for i in "${failed[@]}"; do
    rebuild "$i" || {
      boot_error "$i" >&2
      die "$(node_of "$i") does not run (log: $(dir_of "$i")/log); 'tools/rabbitmq-cluster.sh reset' starts the cluster afresh"
    }
  done

  # The seed: the first running node already in a cluster with another of ours, else the first
  # running node (stockflow1 when all three were started).
  local seed="" first="" ours
  for j in 0 1 2; do
    running "$j" || continue
    first=${first:-$(node_of "$j")}
    ours=$(members "$(node_of "$j")" disk_nodes | grep -c '^stockflow[123]@' || true)
    if [ "$ours" -gt 1 ]; then seed=$(node_of "$j") && break; fi
  done
  seed=${seed:-$first}
  for i in "${SELECTED[@]}"; do
    [ "$(node_of "$i")" = "$seed" ] && continue
    has "$(members "$(node_of "$i")" disk_nodes)" "$seed" || join "$i" "$seed"
  done

  local deadline=$((SECONDS + 60))
  for i in "${SELECTED[@]}"; do
    until clustered_with_running "$i"; do
      [ "$SECONDS" -lt "$deadline" ] || die "the nodes run but do not form one cluster; see 'tools/rabbitmq-cluster.sh status', or 'reset'"
      sleep 1
    done
  done
}

stop_node() {
  local i=$1 node pid
  node=$(node_of "$i")
  pid=$(vm_pid "$i" || true)
  if ! ctl "$node" stop "$(pid_file_of "$i")" >/dev/null 2>&1 && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    # It did not answer: end its VM, by the pid its own pid file names.
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  log "stopped $node"
}

cmd_stop() {
  local i
  # In reverse, so stockflow1 goes last (the next start starts all three at once anyway).
  for ((i = ${#SELECTED[@]} - 1; i >= 0; i--)); do
    if vm_up "${SELECTED[$i]}" || vm_pid "${SELECTED[$i]}" >/dev/null; then stop_node "${SELECTED[$i]}"; fi
  done
}

cmd_status() {
  local i all=0 list
  for i in 0 1 2; do
    if running "$i"; then
      log "$(node_of "$i") running (amqp 127.0.0.1:${AMQP_PORTS[$i]})"
    elif vm_up "$i"; then
      log "$(node_of "$i") starting, paused or with RabbitMQ stopped (VM up)" && all=3
    else
      log "$(node_of "$i") stopped" && all=3
    fi
  done
  for i in 0 1 2; do
    if running "$i" && list=$(members "$(node_of "$i")" disk_nodes) && [ -n "$list" ]; then
      log "cluster members: $(paste -sd' ' <<<"$list")"
      log "running members: $(members "$(node_of "$i")" running_nodes | paste -sd' ')"
      break
    fi
  done
  return "$all"
}

cmd_urls() {
  local port urls=()
  for port in "${AMQP_PORTS[@]}"; do urls+=("amqp://guest:guest@127.0.0.1:$port"); done
  (
    IFS=,
    echo "${urls[*]}"
  )
}

cmd_reset() {
  cmd_stop
  local i
  for i in 0 1 2; do
    if vm_up "$i"; then die "$(node_of "$i") still runs; not wiping its data"; fi
    rm -rf "$(dir_of "$i")"
  done
  log "wiped $BASE/{${NAMES[0]},${NAMES[1]},${NAMES[2]}}"
  cmd_start
}

# One start, stop or reset at a time (test workers may call `start` at once).
lock() {
  mkdir -p "$BASE"
  exec 9>>"$BASE/.lock"
  flock -w 900 9 || die "another tools/rabbitmq-cluster.sh holds $BASE/.lock"
}

usage() {
  echo "usage: $0 start|stop [stockflow1|stockflow2|stockflow3 ...] | status | urls | reset" >&2
  exit 2
}

# The nodes named after the command (stockflow2 or stockflow2@localhost), else all three.
SELECTED=()
select_nodes() {
  local arg i found
  for arg in "$@"; do
    found=""
    for i in 0 1 2; do
      if [ "$arg" = "${NAMES[$i]}" ] || [ "$arg" = "$(node_of "$i")" ]; then found=$i; fi
    done
    [ -n "$found" ] || usage
    SELECTED+=("$found")
  done
  [ "${#SELECTED[@]}" -gt 0 ] || SELECTED=(0 1 2)
}

command="${1:-}"
[ "$#" -gt 0 ] && shift
case "$command" in
  start | stop) select_nodes "$@" ;;
  status | urls | reset) [ "$#" = 0 ] || usage && SELECTED=(0 1 2) ;;
  *) usage ;;
esac
case "$command" in
  start)
    command -v rabbitmqctl >/dev/null || die "rabbitmqctl not found"
    lock
    cmd_start
    ;;
  stop) lock && cmd_stop ;;
  status) cmd_status ;;
  urls) cmd_urls ;;
  reset) lock && cmd_reset ;;
esac

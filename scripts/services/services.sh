#!/usr/bin/env bash
# Local Apache Kafka (KRaft), FerretDB (MongoDB wire protocol, SQLite backend) and PostgreSQL on
# loopback, without Docker. Installs into a cache folder on first use and reuses it afterwards.
#
#   services.sh up [kafka] [mongo] [postgres]|down|status|env
#
# `up` starts the named services (default: all three); `npm start` leaves FerretDB out when the
# detections go to PostgreSQL.
#
# KAFKA_BROKER_COUNT=3 starts a Kafka cluster instead of the one broker: three combined
# broker+controller KRaft nodes on ports 29092/29094/29096 (controllers 29093/29095/29097), with
# replication factor 3 and min.insync.replicas 2 for every topic, internal ones included. With
# KAFKA_CONTROLLER_COUNT=3 (or 1) as well, the brokers are broker-only nodes and the KRaft quorum
# runs on that many controller-only nodes of their own (ports 29093/29095/29097), so losing
# brokers never costs the quorum. `up` records both counts in the run folder, so `env`, `status`
# and `down` need not repeat them.
#
# A service whose connection variable is already set (KAFKA_BROKERS, MONGO_URL, DATABASE_URL) is
# treated as external: it is neither started nor stopped, and `env` prints the given value.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# PostgreSQL refuses to run as root, and root's home is not traversable by the postgres user, so
# root gets a cache outside its home.
if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/intellisite; else default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/intellisite; fi
CACHE=${INTELLISITE_CACHE:-$default_cache}
# Run state (data, pid files) and logs can live elsewhere, e.g. a test's private broker on its own
# ports (INTELLISITE_KAFKA_PORT, INTELLISITE_KAFKA_CONTROLLER_PORT) that it can stop and restart.
RUN=${INTELLISITE_RUN_DIR:-$CACHE/run}
LOGS=${INTELLISITE_LOG_DIR:-$CACHE/logs}

KAFKA_VERSION=3.9.1
FERRETDB_VERSION=v1.24.2
KAFKA_PORT=${INTELLISITE_KAFKA_PORT:-29092}
KAFKA_CONTROLLER_PORT=${INTELLISITE_KAFKA_CONTROLLER_PORT:-29093}
# A cluster's node N listens on KAFKA_PORT + 2(N-1) and its controller on the port after, unless
# INTELLISITE_KAFKA_PORTS / INTELLISITE_KAFKA_CONTROLLER_PORTS list them (comma-separated).
if [ -n "${KAFKA_BROKER_COUNT:-}" ]; then KAFKA_NODES=$KAFKA_BROKER_COUNT
elif [ -f "$RUN/kafka-cluster" ]; then KAFKA_NODES=$(cat "$RUN/kafka-cluster")
else KAFKA_NODES=1; fi
[[ "$KAFKA_NODES" =~ ^[1-9]$ ]] || { echo "[services] error: KAFKA_BROKER_COUNT must be 1-9" >&2; exit 1; }
# Controller-only nodes: ids KAFKA_NODES+1 .. KAFKA_NODES+KAFKA_CONTROLLERS (none: every broker is
# also a controller).
if [ -n "${KAFKA_BROKER_COUNT:-}" ]; then KAFKA_CONTROLLERS=${KAFKA_CONTROLLER_COUNT:-0}
elif [ -f "$RUN/kafka-controllers" ]; then KAFKA_CONTROLLERS=$(cat "$RUN/kafka-controllers")
else KAFKA_CONTROLLERS=0; fi
[[ "$KAFKA_CONTROLLERS" =~ ^[0-9]$ ]] || { echo "[services] error: KAFKA_CONTROLLER_COUNT must be 0-9" >&2; exit 1; }
if [ "$KAFKA_CONTROLLERS" -gt 0 ] && [ "$KAFKA_NODES" -lt 2 ]; then
  echo "[services] error: KAFKA_CONTROLLER_COUNT needs KAFKA_BROKER_COUNT of 2 or more" >&2; exit 1
fi
KAFKA_TOTAL=$((KAFKA_NODES + KAFKA_CONTROLLERS))
MONGO_PORT=${INTELLISITE_MONGO_PORT:-27018}
PG_PORT=${INTELLISITE_PG_PORT:-25432}
PG_ROLE=intellisite
PG_PASSWORD=intellisite
PG_DATABASE=intellisite

KAFKA_HOME=$CACHE/kafka/$KAFKA_VERSION
FERRETDB_BIN=$CACHE/ferretdb/$FERRETDB_VERSION/ferretdb

log() { printf '[services] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A pid file counts only while its process is alive and is still ours (pids get reused after a
# reboot): the pid file sits next to a marker naming the program.
pid_alive() {
  [ -f "$1" ] || return 1
  local pid; pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null || return 1
  local marker; marker=$(cat "$1.marker" 2>/dev/null || true)
  [ -z "$marker" ] || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"
}

# wait_for NAME PIDFILE LOGFILE SECONDS CHECK...: polls CHECK until it succeeds; on failure or
# early exit of the process prints the log tail and exits non-zero.
# Liveness here is `kill -0` only, never pid_alive: we started this pid a moment ago, and until
# the forked shell has exec'd the program its command line is still this script's, so the marker
# check would report a live, starting service as dead (that race failed a CI run).
wait_for() {
  local name=$1 pidfile=$2 logfile=$3 seconds=$4; shift 4
  local deadline=$((SECONDS + seconds)) pid; pid=$(cat "$pidfile")
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited during start-up; last lines of $logfile:"; tail -n 40 "$logfile" >&2 || true
      rm -f "$pidfile"; exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$name not ready after ${seconds}s; last lines of $logfile:"; tail -n 40 "$logfile" >&2 || true
      kill -TERM "$pid" 2>/dev/null || true; rm -f "$pidfile"
      exit 1
    fi
    sleep 0.2
  done
}

stop_pidfile() {
  local name=$1 pidfile=$2
  if ! pid_alive "$pidfile"; then rm -f "$pidfile" "$pidfile.marker"; return 0; fi
  local pid; pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then log "$name did not stop in 30s; killing"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$pidfile" "$pidfile.marker"
  log "$name stopped"
}

# ---------------------------------------------------------------------------------------- Kafka
# Kafka 3.9 is the newest broker line that still serves every protocol version kafkajs 2.2.4 was
# written against; 4.x removed old versions (KIP-896) and kafkajs is unmaintained, so 3.9 is the
# version our client is known to support fully, transactions included.
install_kafka() {
  [ -f "$KAFKA_HOME/.complete" ] && return 0
  command -v java >/dev/null || die "java (17+) is required for Kafka"
  command -v mvn >/dev/null || die "mvn is required to fetch the Kafka broker from Maven Central"
  log "installing Kafka $KAFKA_VERSION from Maven Central into $KAFKA_HOME"
  rm -rf "$KAFKA_HOME"; mkdir -p "$KAFKA_HOME"
  mvn -B -q -f "$HERE/kafka-pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$KAFKA_HOME/libs" >"$LOGS/kafka-install.log" 2>&1 \
    || { tail -n 40 "$LOGS/kafka-install.log" >&2; die "Kafka install failed"; }
  touch "$KAFKA_HOME/.complete"
}

# node_port N / node_controller_port N: node N's listener ports (node 1 of a single broker: the
# historical KAFKA_PORT and KAFKA_CONTROLLER_PORT). With controller-only nodes, broker N has only
# node_port N, and controller k (node id KAFKA_NODES+k) only the controller port a combined node k
# would have (the k-th of INTELLISITE_KAFKA_CONTROLLER_PORTS).
is_controller_only() { [ "$1" -gt "$KAFKA_NODES" ]; }
node_port() {
  if [ -n "${INTELLISITE_KAFKA_PORTS:-}" ]; then echo "$INTELLISITE_KAFKA_PORTS" | cut -d, -f"$1"
  else echo $((KAFKA_PORT + 2 * ($1 - 1))); fi
}
node_controller_port() {
  local k=$1
  [ "$KAFKA_CONTROLLERS" -gt 0 ] && k=$(($1 - KAFKA_NODES))
  if [ -n "${INTELLISITE_KAFKA_CONTROLLER_PORTS:-}" ]; then echo "$INTELLISITE_KAFKA_CONTROLLER_PORTS" | cut -d, -f"$k"
  elif [ "$KAFKA_NODES" = 1 ]; then echo "$KAFKA_CONTROLLER_PORT"
  else echo $((KAFKA_PORT + 2 * (k - 1) + 1)); fi
}
# The port a node serves once started: a controller-only node has no broker listener.
node_serving_port() { if is_controller_only "$1"; then node_controller_port "$1"; else node_port "$1"; fi; }
# The quorum's members: every node, or only the controller-only ones.
controller_ids() {
  if [ "$KAFKA_CONTROLLERS" -gt 0 ]; then seq $((KAFKA_NODES + 1)) "$KAFKA_TOTAL"; else seq 1 "$KAFKA_NODES"; fi
}
# The single broker keeps its historical names (kafka/, kafka.pid, kafka.log); cluster nodes are
# kafka-N.
node_name() { if [ "$KAFKA_TOTAL" = 1 ]; then echo kafka; else echo "kafka-$1"; fi; }

kafka_ready() { port_open "$1" && grep -q 'Kafka Server started' "$2"; }

# node_properties N DIR: server.properties of node N. One node: replication 1 everywhere. A
# cluster: every partition on (up to) three nodes and acks=all writes needing two of them, so one
# node can be lost without losing a write or refusing one; the transaction log too, or a
# transactional producer would stop with its coordinator.
node_properties() {
  local n=$1 dir=$2 voters="" i
  for i in $(controller_ids); do voters+="${voters:+,}$i@127.0.0.1:$(node_controller_port "$i")"; done
  local rf=1 isr=1
  if [ "$KAFKA_NODES" -gt 1 ]; then rf=$((KAFKA_NODES < 3 ? KAFKA_NODES : 3)); isr=$((rf > 1 ? rf - 1 : 1)); fi
  if is_controller_only "$n"; then
    cat <<EOF
process.roles=controller
node.id=$n
controller.quorum.voters=$voters
listeners=CONTROLLER://127.0.0.1:$(node_controller_port "$n")
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT
EOF
  elif [ "$KAFKA_CONTROLLERS" -gt 0 ]; then
    cat <<EOF
process.roles=broker
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(node_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(node_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
EOF
  else
    cat <<EOF
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(node_port "$n"),CONTROLLER://127.0.0.1:$(node_controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(node_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
EOF
  fi
  # Storage and topic defaults on every node: a controller applies its own defaults to the topics
  # it creates.
  cat <<EOF
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=10
group.initial.rebalance.delay.ms=0
EOF
  if [ "$KAFKA_NODES" -gt 1 ]; then
    cat <<EOF
default.replication.factor=$rf
min.insync.replicas=$isr
EOF
  fi
}

# start_kafka_node N: starts node N unless it runs already (a cluster's `up` after one node was
# killed restarts just that one).
start_kafka_node() {
  local n=$1 name; name=$(node_name "$n")
  local dir=$RUN/$name pidfile=$RUN/$name.pid logfile=$LOGS/$name.log port
  port=$(node_serving_port "$n")
  if pid_alive "$pidfile"; then log "$name already running on 127.0.0.1:$port"; return 0; fi
  port_open "$port" && die "port $port is in use by another process (set INTELLISITE_KAFKA_PORT or KAFKA_BROKERS)"
  mkdir -p "$dir/data"
  node_properties "$n" "$dir" >"$dir/server.properties"
  cat >"$dir/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
EOF
  # Three JVMs share the machine with everything else: a cluster node gets a smaller heap.
  local cp="$KAFKA_HOME/libs/*" heap=(-Xms256m -Xmx1g)
  [ "$KAFKA_NODES" -gt 1 ] && heap=(-Xms128m -Xmx512m)
  # A controller-only node holds only the cluster's metadata.
  is_controller_only "$n" && heap=(-Xms64m -Xmx256m)
  local jopts=("${heap[@]}" -Dlog4j.configuration="file:$dir/log4j.properties")
  if [ ! -f "$dir/data/meta.properties" ]; then
    local id
    # Every node of a cluster is formatted with the same cluster id.
    if [ "$KAFKA_NODES" -gt 1 ] && [ -f "$RUN/kafka-cluster-id" ]; then id=$(cat "$RUN/kafka-cluster-id")
    else id=$(java -cp "$cp" "${jopts[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1); fi
    java -cp "$cp" "${jopts[@]}" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" >>"$LOGS/$name-format.log" 2>&1 \
      || { tail -n 20 "$LOGS/$name-format.log" >&2; die "formatting Kafka storage failed"; }
  fi
  : >"$logfile"
  nohup java "${jopts[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"; echo kafka.Kafka >"$pidfile.marker"
  wait_for "$name" "$pidfile" "$logfile" 90 kafka_ready "$port" "$logfile"
  echo "$name" >>"$RUN/started"
  log "$name $KAFKA_VERSION ready on 127.0.0.1:$port"
}

start_kafka() {
  install_kafka
  if [ "$KAFKA_TOTAL" = 1 ]; then
    start_kafka_node 1
    return 0
  fi
  [ -f "$RUN/kafka.pid" ] && pid_alive "$RUN/kafka.pid" && die "a single broker runs from $RUN; stop it first or use another INTELLISITE_RUN_DIR"
  [ -f "$RUN/kafka-cluster-id" ] || java -cp "$KAFKA_HOME/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 >"$RUN/kafka-cluster-id"
  echo "$KAFKA_NODES" >"$RUN/kafka-cluster"
  echo "$KAFKA_CONTROLLERS" >"$RUN/kafka-controllers"
  # All at once: a node's broker waits for a controller quorum, which needs a majority of nodes.
  # INTELLISITE_KAFKA_ONLY_NODES (e.g. "2") restarts just those, to bring back one of two lost nodes.
  local pids=() n failed=0 running=()
  for n in $(seq 1 "$KAFKA_TOTAL"); do
    [ -z "${INTELLISITE_KAFKA_ONLY_NODES:-}" ] || [[ ",$INTELLISITE_KAFKA_ONLY_NODES," == *",$n,"* ]] || continue
    start_kafka_node "$n" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  [ "$failed" = 0 ] || die "some Kafka nodes failed to start"
  # Every broker that runs, the ones left down on purpose (INTELLISITE_KAFKA_ONLY_NODES) aside.
  for n in $(seq 1 "$KAFKA_NODES"); do pid_alive "$RUN/$(node_name "$n").pid" && running+=("$n"); done
  [ "${#running[@]}" = 0 ] || wait_for_registration 60 "${running[@]}"
}

# Broker ids that the broker on port $1 lists in its cluster metadata, one a line.
brokers_seen_by() {
  timeout 30 java -Xms32m -Xmx128m -cp "$KAFKA_HOME/libs/*" kafka.admin.BrokerApiVersionsCommand \
    --bootstrap-server "127.0.0.1:$1" 2>/dev/null | sed -n 's/^[^ ]* (id: \([0-9]*\) rack: .*/\1/p' || true
}

# wait_for_registration SECONDS ID...: waits until each of these brokers lists every one of them
# in its cluster metadata. A node logs "Kafka Server started" once it is itself unfenced; the other
# brokers learn that from the metadata log a little later (0.1 s on an idle machine, more on a
# busy one), so a client bootstrapping from one of them right after `up` could see two brokers of
# three: topics created then fail for too few brokers, or a test sees a broker missing.
wait_for_registration() {
  local seconds=$1; shift
  local ids=("$@") pending=("$@") deadline=$((SECONDS + seconds)) n id seen missing="" views
  views=$(mktemp -d)
  while :; do
    local still=()
    missing=""
    for n in "${pending[@]}"; do brokers_seen_by "$(node_port "$n")" >"$views/$n" & done
    wait
    for n in "${pending[@]}"; do
      seen=" $(tr '\n' ' ' <"$views/$n")"
      for id in "${ids[@]}"; do
        if [[ "$seen" != *" $id "* ]]; then still+=("$n"); missing+=" broker $n lacks $id;"; break; fi
      done
    done
    [ "${#still[@]}" = 0 ] && break
    [ "$SECONDS" -lt "$deadline" ] || { rm -rf "$views"; die "Kafka brokers not all registered after ${seconds}s:$missing"; }
    pending=("${still[@]}")
    sleep 1
  done
  rm -rf "$views"
  log "kafka: brokers $(IFS=,; echo "${ids[*]}") all in the cluster metadata"
}

# -------------------------------------------------------------------------------------- FerretDB
# No mongod can be installed here; FerretDB 1.x is a real database speaking the MongoDB wire
# protocol. Its module lacks the generated build/version/version.txt (FerretDB issue #2982) and
# panics at start without it, so we build from a copy of the module with that file written.
install_ferretdb() {
  [ -x "$FERRETDB_BIN" ] && return 0
  command -v go >/dev/null || die "go is required to build FerretDB"
  log "building FerretDB $FERRETDB_VERSION from the Go module proxy (about a minute)"
  local src; src=$(mktemp -d)
  local moddir
  moddir=$(cd "$src" && GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$moddir" ] || die "could not download FerretDB $FERRETDB_VERSION"
  cp -r "$moddir/." "$src/ferretdb"; chmod -R u+w "$src/ferretdb"
  echo "$FERRETDB_VERSION" >"$src/ferretdb/build/version/version.txt"
  mkdir -p "$(dirname "$FERRETDB_BIN")"
  (cd "$src/ferretdb" && CGO_ENABLED=0 go build -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb) >"$LOGS/ferretdb-install.log" 2>&1 \
    || { tail -n 40 "$LOGS/ferretdb-install.log" >&2; die "FerretDB build failed"; }
  mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
  rm -rf "$src"
}

start_mongo() {
  local dir=$RUN/ferretdb pidfile=$RUN/ferretdb.pid
  if pid_alive "$pidfile"; then log "ferretdb already running on 127.0.0.1:$MONGO_PORT"; return 0; fi
  port_open "$MONGO_PORT" && die "port $MONGO_PORT is in use by another process (set INTELLISITE_MONGO_PORT or MONGO_URL)"
  install_ferretdb
  mkdir -p "$dir/data"
  : >"$LOGS/ferretdb.log"
  nohup "$FERRETDB_BIN" --handler=sqlite --sqlite-url="file:$dir/data/" --state-dir="$dir" \
    --listen-addr="127.0.0.1:$MONGO_PORT" --debug-addr=- --telemetry=disable --log-level=warn \
    >>"$LOGS/ferretdb.log" 2>&1 </dev/null &
  echo $! >"$pidfile"; echo "$FERRETDB_BIN" >"$pidfile.marker"
  wait_for ferretdb "$pidfile" "$LOGS/ferretdb.log" 30 port_open "$MONGO_PORT"
  echo mongo >>"$RUN/started"
  log "ferretdb $FERRETDB_VERSION (sqlite) ready on 127.0.0.1:$MONGO_PORT"
}

# ------------------------------------------------------------------------------------ PostgreSQL
pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
    [ "$(id -u)" = 0 ] || die "PostgreSQL server binaries not found; install Debian's postgresql package"
    log "installing PostgreSQL from Debian's packages"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >"$LOGS/postgres-install.log" 2>&1 \
      || { tail -n 40 "$LOGS/postgres-install.log" >&2; die "PostgreSQL install failed"; }
    d=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$d"
}

# As root, PostgreSQL's own programs run as the postgres system user (initdb refuses root).
as_pg_prefix() { if [ "$(id -u)" = 0 ]; then echo setpriv --reuid=postgres --regid=postgres --init-groups; fi; }
as_pg() { $(as_pg_prefix) "$@"; }

start_postgres() {
  local dir=$RUN/postgres pidfile=$RUN/postgres.pid bin
  if pid_alive "$pidfile"; then log "postgres already running on 127.0.0.1:$PG_PORT"; return 0; fi
  port_open "$PG_PORT" && die "port $PG_PORT is in use by another process (set INTELLISITE_PG_PORT or DATABASE_URL)"
  bin=$(pg_bindir)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  chmod 700 "$dir"
  local fresh=0
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
      >"$LOGS/postgres-initdb.log" 2>&1 || { tail -n 20 "$LOGS/postgres-initdb.log" >&2; die "initdb failed"; }
    fresh=1
  fi
  : >"$LOGS/postgres.log"
  # nohup and setpriv both exec, so $! is the postmaster's own pid.
  nohup $(as_pg_prefix) "$bin/postgres" -D "$dir/data" -p "$PG_PORT" -k "$dir" \
    -c listen_addresses=127.0.0.1 -c max_connections=200 >>"$LOGS/postgres.log" 2>&1 </dev/null &
  echo $! >"$pidfile"; echo "$dir/data" >"$pidfile.marker"
  wait_for postgres "$pidfile" "$LOGS/postgres.log" 30 "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
  if [ "$fresh" = 1 ] || ! as_pg "$bin/psql" -h "$dir" -p "$PG_PORT" -U postgres -tAc "select 1 from pg_roles where rolname='$PG_ROLE'" | grep -q 1; then
    as_pg "$bin/psql" -q -h "$dir" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASSWORD'" \
      -c "CREATE DATABASE $PG_DATABASE OWNER $PG_ROLE" >>"$LOGS/postgres.log" 2>&1 \
      || { tail -n 20 "$LOGS/postgres.log" >&2; die "creating the $PG_ROLE role failed"; }
  fi
  echo postgres >>"$RUN/started"
  log "postgres $("$bin/postgres" --version | awk '{print $3}') ready on 127.0.0.1:$PG_PORT"
}

# ----------------------------------------------------------------------------------------- verbs
kafka_url() {
  if [ -n "${KAFKA_BROKERS:-}" ]; then echo "$KAFKA_BROKERS"; return; fi
  local urls="" n
  for n in $(seq 1 "$KAFKA_NODES"); do urls+="${urls:+,}127.0.0.1:$(node_port "$n")"; done
  echo "$urls"
}
mongo_url() { echo "${MONGO_URL:-mongodb://127.0.0.1:$MONGO_PORT/intellisite}"; }
pg_url() { echo "${DATABASE_URL:-postgres://$PG_ROLE:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DATABASE}"; }
# The detections store: the caller's, else PostgreSQL's intellisite_detections database beside the
# users' one (the services create it on first use).
detections_store_url() {
  if [ -n "${DETECTIONS_STORE_URL:-}" ]; then echo "$DETECTIONS_STORE_URL"; return; fi
  local url; url=$(pg_url)
  # Same server and credentials, another database; any query string stays.
  local base=${url%%\?*} query=""
  [ "$base" = "$url" ] || query="?${url#*\?}"
  echo "${base%/*}/intellisite_detections$query"
}

cmd_up() {
  local wanted=" ${*:-kafka mongo postgres} " name
  for name in $wanted; do
    case "$name" in kafka | mongo | postgres) ;; *) die "unknown service '$name' (kafka, mongo, postgres)" ;; esac
  done
  mkdir -p "$RUN" "$LOGS"
  local t0=$SECONDS
  # They start in parallel; each exits non-zero with its log tail on failure.
  local pids=()
  if [[ "$wanted" == *" kafka "* ]]; then
    if [ -z "${KAFKA_BROKERS:-}" ]; then start_kafka & pids+=($!); else log "kafka: using external $KAFKA_BROKERS"; fi
  fi
  if [[ "$wanted" == *" mongo "* ]]; then
    if [ -z "${MONGO_URL:-}" ]; then start_mongo & pids+=($!); else log "mongo: using external $MONGO_URL"; fi
  fi
  if [[ "$wanted" == *" postgres "* ]]; then
    if [ -z "${DATABASE_URL:-}" ]; then start_postgres & pids+=($!); else log "postgres: using external DATABASE_URL"; fi
  fi
  local failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  [ "$failed" = 0 ] || die "some services failed to start (logs in $LOGS)"
  log "all services ready in $((SECONDS - t0))s (cache: $CACHE)"
}

cmd_down() {
  # Only what `up` started: external services are never touched.
  stop_pidfile kafka "$RUN/kafka.pid"
  local n
  if [ -f "$RUN/kafka-cluster" ]; then
    local total=$(($(cat "$RUN/kafka-cluster") + $(cat "$RUN/kafka-controllers" 2>/dev/null || echo 0)))
    for n in $(seq 1 "$total"); do stop_pidfile "kafka-$n" "$RUN/kafka-$n.pid" & done
    wait
    rm -f "$RUN/kafka-cluster" "$RUN/kafka-controllers"
  fi
  stop_pidfile ferretdb "$RUN/ferretdb.pid"
  stop_pidfile postgres "$RUN/postgres.pid"
  rm -f "$RUN/started"
}

status_line() {
  local name=$1 var=$2 pidfile=$3 where=$4
  if [ -n "${!var:-}" ]; then printf '%-9s external  %s\n' "$name" "${!var}"
  elif pid_alive "$pidfile"; then printf '%-9s running   %s (pid %s)\n' "$name" "$where" "$(cat "$pidfile")"
  else printf '%-9s stopped\n' "$name"; return 1; fi
}

cmd_status() {
  local rc=0
  if [ "$KAFKA_NODES" = 1 ]; then
    status_line kafka KAFKA_BROKERS "$RUN/kafka.pid" "$(kafka_url)" || rc=3
  else
    local n
    for n in $(seq 1 "$KAFKA_NODES"); do
      status_line "kafka-$n" KAFKA_BROKERS "$RUN/kafka-$n.pid" "127.0.0.1:$(node_port "$n")" || rc=3
    done
    for n in $(seq $((KAFKA_NODES + 1)) "$KAFKA_TOTAL"); do
      status_line "kafka-$n" KAFKA_BROKERS "$RUN/kafka-$n.pid" "controller 127.0.0.1:$(node_controller_port "$n")" || rc=3
    done
  fi
  status_line mongo MONGO_URL "$RUN/ferretdb.pid" "$(mongo_url)" || rc=3
  status_line postgres DATABASE_URL "$RUN/postgres.pid" "127.0.0.1:$PG_PORT" || rc=3
  echo "logs: $LOGS"
  return $rc
}

cmd_env() {
  echo "export KAFKA_BROKERS=$(kafka_url)"
  # Topics the indexer, the API and the producer create get the cluster's replication factor.
  [ -n "${KAFKA_BROKERS:-}" ] || [ "$KAFKA_NODES" = 1 ] || echo "export TOPIC_REPLICATION_FACTOR=$((KAFKA_NODES < 3 ? KAFKA_NODES : 3))"
  echo "export MONGO_URL=$(mongo_url)"
  echo "export DATABASE_URL=$(pg_url)"
  # Named outright: the services read MONGO_URL as the store when this is unset, so a shell that
  # evaluates these lines would otherwise store detections in FerretDB.
  echo "export DETECTIONS_STORE_URL=$(detections_store_url)"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac

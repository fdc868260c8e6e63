#!/usr/bin/env bash
# A local Apache Kafka 4.3.1 node (KRaft, broker + controller in one JVM) on loopback, run
# straight from Kafka's jars on Maven Central: no Docker, no tarball. Needs Java 17+, and Maven
# once, to fetch the jars. The version is docker-compose.yml's (a unit test keeps them equal).
#
# Usage: deploy/local/kafka.sh start|launch|stop|kill|status|logs [-f]|fetch|tool <class> [args]
#
#   start   fetch the jars if needed, format the storage once, start the broker in the
#           background and wait until it is ready (below). Idempotent: if this node already
#           runs, only waits for it; if another Kafka answers on the port, does nothing.
#   launch  the same without waiting (to start the nodes of a cluster together: no node is
#           ready before a quorum of controllers is up; `start` each one afterwards to wait).
#   stop    SIGTERM (a controlled shutdown), SIGKILL after KAFKA_STOP_TIMEOUT. Idempotent.
#   kill    SIGKILL: a crash, for fault-injection tests. The next start recovers the data.
#   status  exit 0 if the node is ready, else 1.
#   logs    the tail of the broker's server.log; "logs -f" follows it.
#   fetch   download the jars into the cache (start does it when needed).
#   tool    run a Kafka command-line class with the cached jars, e.g.
#           tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server B describe --status
#
# Ready means: Kafka's BrokerApiVersionsCommand (kafka-broker-api-versions.sh, the probe of
# docker-compose.yml's healthcheck) gets a Metadata answer that lists this node, and an
# ApiVersions answer from it.
#
# Files: $STATE_DIR/kafka-jars/4.3.1/lib       the jar cache, shared by every node
#        $KAFKA_DIR/{server.properties,kafka.pid,data/,logs/,tls/}
#
# Environment (defaults: the shared single broker of `make up`):
#   KAFKA_PORT             client port on 127.0.0.1 (9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port (KAFKA_PORT+1)
#   STATE_DIR              state root (<repo>/.local, git-ignored)
#   KAFKA_DIR              this node's directory ($STATE_DIR/kafka-$KAFKA_PORT)
#   KAFKA_HEAP_OPTS        JVM heap ("-Xmx512m -Xms256m")
#   KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS  how long a new consumer group waits for more
#                          members before its first assignment (0, for quick tests; benchmarks
#                          use Kafka's own default, 3000)
#   KAFKA_READY_TIMEOUT    seconds to wait for readiness (90)
#   KAFKA_STOP_TIMEOUT     seconds to wait for a controlled shutdown (30)
#   JAVA_HOME              optional; else java from PATH
# A node of a multi-node cluster (tests/reliability/cluster.py starts three on loopback):
#   KAFKA_NODE_ID          node.id (1)
#   KAFKA_VOTERS           controller.quorum.voters (this node alone: 1@127.0.0.1:<ctl port>)
#   KAFKA_REPLICATION      replication factor of new and internal topics (1); above 1,
#                          min.insync.replicas is one less (3 -> 2: acks=all survives one loss)
#   KAFKA_CLUSTER_ID       the cluster id every node is formatted with (one node: a random one)
# A SASL_SSL listener beside the plain one, to test clients against an encrypted,
# authenticated broker:
#   KAFKA_SASL_SSL_PORT    if set, also listen on 127.0.0.1:$KAFKA_SASL_SSL_PORT with TLS and
#                          SCRAM-SHA-512 (the PLAINTEXT port stays: probe, inter-broker)
#   KAFKA_SASL_SSL_USER    the SCRAM user ("ratings"), created when the storage is formatted
#   KAFKA_SASL_SSL_PASSWORD  its password ("ratings-local-only"); letters, digits, ._- only
#   openssl makes a throwaway CA and a certificate for 127.0.0.1/localhost in $KAFKA_DIR/tls/
#   on the first such start; clients trust tls/ca.pem:
#     KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_SASL_SSL_PORT KAFKA_SECURITY_PROTOCOL=SASL_SSL
#     KAFKA_SASL_MECHANISM=SCRAM-SHA-512 KAFKA_SASL_USERNAME=ratings
#     KAFKA_SASL_PASSWORD=ratings-local-only KAFKA_SSL_CA_FILE=$KAFKA_DIR/tls/ca.pem
# A listener whose clients reach it through a proxy on another port (the soak's slow link
# between one service and Kafka): the broker advertises the proxy's port on it, so a client
# that bootstraps there keeps every connection on the proxy:
#   KAFKA_ROUTED_PORT             if set, also listen on 127.0.0.1:$KAFKA_ROUTED_PORT (PLAINTEXT)
#   KAFKA_ROUTED_ADVERTISED_PORT  the port advertised on it (the proxy's; required with it)
set -euo pipefail

KAFKA_VERSION=4.3.1

SUPPORT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kafka
REPO_ROOT=$(cd "$SUPPORT_DIR/../../.." && pwd)
STATE_DIR=${STATE_DIR:-$REPO_ROOT/.local}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
KAFKA_DIR=${KAFKA_DIR:-$STATE_DIR/kafka-$KAFKA_PORT}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}
KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS=${KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS:-0}
KAFKA_READY_TIMEOUT=${KAFKA_READY_TIMEOUT:-90}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
KAFKA_NODE_ID=${KAFKA_NODE_ID:-1}
KAFKA_VOTERS=${KAFKA_VOTERS:-$KAFKA_NODE_ID@127.0.0.1:$KAFKA_CONTROLLER_PORT}
KAFKA_REPLICATION=${KAFKA_REPLICATION:-1}
KAFKA_CLUSTER_ID=${KAFKA_CLUSTER_ID:-}
KAFKA_SASL_SSL_PORT=${KAFKA_SASL_SSL_PORT:-}
KAFKA_SASL_SSL_USER=${KAFKA_SASL_SSL_USER:-ratings}
KAFKA_SASL_SSL_PASSWORD=${KAFKA_SASL_SSL_PASSWORD:-ratings-local-only}
KAFKA_ROUTED_PORT=${KAFKA_ROUTED_PORT:-}
KAFKA_ROUTED_ADVERTISED_PORT=${KAFKA_ROUTED_ADVERTISED_PORT:-}

LIB=$STATE_DIR/kafka-jars/$KAFKA_VERSION/lib
PROPS=$KAFKA_DIR/server.properties
PID_FILE=$KAFKA_DIR/kafka.pid
DATA_DIR=$KAFKA_DIR/data
LOG_DIR=$KAFKA_DIR/logs
TLS_DIR=$KAFKA_DIR/tls

log() { printf 'kafka.sh[%s]: %s\n' "$KAFKA_PORT" "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s; }

[[ -z $KAFKA_ROUTED_PORT || -n $KAFKA_ROUTED_ADVERTISED_PORT ]] \
    || { printf 'kafka.sh: KAFKA_ROUTED_PORT needs KAFKA_ROUTED_ADVERTISED_PORT\n' >&2; exit 1; }
for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" ${KAFKA_SASL_SSL_PORT:+"$KAFKA_SASL_SSL_PORT"} \
    ${KAFKA_ROUTED_PORT:+"$KAFKA_ROUTED_PORT" "$KAFKA_ROUTED_ADVERTISED_PORT"}; do
    [[ $port =~ ^[0-9]+$ ]] && (( port >= 1 && port <= 65535 )) || die "'$port' is not a TCP port"
done
[[ $KAFKA_SASL_SSL_PASSWORD =~ ^[A-Za-z0-9._-]+$ && $KAFKA_SASL_SSL_USER =~ ^[A-Za-z0-9._-]+$ ]] \
    || die "KAFKA_SASL_SSL_USER and KAFKA_SASL_SSL_PASSWORD: letters, digits and ._- only"

# ------------------------------------------------------------------------------------ java ---

JAVA=java
[[ -z ${JAVA_HOME:-} || ! -x ${JAVA_HOME:-}/bin/java ]] || JAVA=$JAVA_HOME/bin/java

require_java() {
    command -v "$JAVA" >/dev/null || die "java not found; Kafka needs Java 17+ (apt-get install openjdk-17-jre-headless)"
    local version
    version=$("$JAVA" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
    (( ${version%%.*} >= 17 )) 2>/dev/null || die "$JAVA is Java '$version'; Kafka 4 needs 17 or newer"
}

# tool <class> [args...]: a short-lived Kafka command-line program (fast-starting JVM flags).
tool() {
    timeout 60 "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$SUPPORT_DIR/log4j2-tools.properties" -cp "$LIB/*" "$@"
}

# fetch: the runtime jars of deploy/local/kafka/pom.xml into the cache, once.
fetch() {
    local cache=${LIB%/lib} tmp
    [[ -f $cache/.complete ]] && return 0
    mkdir -p "$cache"
    exec 9>"$cache/../.fetch.lock"   # two nodes starting at once on a fresh box fetch once
    flock 9
    if [[ ! -f $cache/.complete ]]; then
        command -v mvn >/dev/null || die "mvn not found; it fetches the Kafka jars once (apt-get install maven)"
        log "fetching the Kafka $KAFKA_VERSION jars from Maven Central (first run only)..."
        tmp=$cache/lib.tmp.$$
        mvn -B -f "$SUPPORT_DIR/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
            -DoutputDirectory="$tmp" >"$cache/fetch.log" 2>&1 9>&- \
            || { rm -rf "$tmp"; die "Maven failed; see $cache/fetch.log"; }
        [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || die "no kafka_2.13-$KAFKA_VERSION.jar in $tmp"
        rm -rf "$LIB" && mv "$tmp" "$LIB"
        echo "kafka=$KAFKA_VERSION" >"$cache/.complete"
        log "cached $(find "$LIB" -name '*.jar' | wc -l) jars in $LIB"
    fi
    exec 9>&-
}

# ------------------------------------------------------------------------------- process ---

# pid: the pid in the pid file, if that process is alive and is this node's broker.
pid() {
    local p stat
    p=$(cat "$PID_FILE" 2>/dev/null) || return 1
    stat=$(cat "/proc/$p/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]] || return 1   # a zombie: dead, not yet reaped
    tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF " kafka.Kafka $PROPS" || return 1
    echo "$p"
}

port_open() { timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

ready() {
    port_open "$KAFKA_PORT" || return 1
    tool org.apache.kafka.tools.BrokerApiVersionsCommand \
        --bootstrap-server "127.0.0.1:$KAFKA_PORT" >"$KAFKA_DIR/probe.out" 2>&1 \
        && grep -q -- "(id: $KAFKA_NODE_ID rack.* -> (" "$KAFKA_DIR/probe.out"
}

# await <pid>: until ready; dies (after showing the log and stopping the process) if not.
await() {
    local p=$1 t0 deadline
    t0=$(now)
    deadline=$((t0 + KAFKA_READY_TIMEOUT))
    log "waiting up to ${KAFKA_READY_TIMEOUT}s for the broker (pid $p) to be ready..."
    until ready; do
        if [[ $(pid) != "$p" ]]; then
            tail -n 40 "$LOG_DIR/server.log" "$LOG_DIR/kafka.out" >&2 2>/dev/null || true
            die "the broker exited while starting; logs in $LOG_DIR"
        fi
        if (( $(now) > deadline )); then
            tail -n 40 "$LOG_DIR/server.log" "$KAFKA_DIR/probe.out" >&2 2>/dev/null || true
            terminate "$p"
            die "not ready within ${KAFKA_READY_TIMEOUT}s; stopped it; logs in $LOG_DIR"
        fi
        sleep 1
    done
    log "Kafka $KAFKA_VERSION node $KAFKA_NODE_ID ready on 127.0.0.1:$KAFKA_PORT in $(( $(now) - t0 )) s"
}

# terminate <pid>: SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT.
terminate() {
    local p=$1 deadline
    deadline=$(( $(now) + KAFKA_STOP_TIMEOUT ))
    kill -TERM "$p" 2>/dev/null || true
    while [[ $(pid) == "$p" ]]; do
        if (( $(now) > deadline )); then
            log "pid $p did not stop within ${KAFKA_STOP_TIMEOUT}s; SIGKILL"
            kill -KILL "$p" 2>/dev/null || true
            deadline=$(( $(now) + 10 ))
        fi
        sleep 0.2
    done
    rm -f "$PID_FILE"
}

# ------------------------------------------------------------------------------- config ---

write_tls() {
    [[ -s $TLS_DIR/keystore.pem ]] && return 0
    command -v openssl >/dev/null || die "openssl not found; it makes the SASL_SSL listener's certificate"
    mkdir -p "$TLS_DIR"
    log "making a throwaway CA and broker certificate in $TLS_DIR"
    {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -subj "/CN=agent-ratings local Kafka CA" -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" \
        && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=127.0.0.1" -keyout "$TLS_DIR/broker.key" -out "$TLS_DIR/broker.csr" \
        && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$TLS_DIR/broker.ext" \
        && openssl x509 -req -in "$TLS_DIR/broker.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
            -CAcreateserial -days 30 -extfile "$TLS_DIR/broker.ext" -out "$TLS_DIR/broker.pem"
    } >"$TLS_DIR/openssl.log" 2>&1 || die "openssl failed; see $TLS_DIR/openssl.log"
    (umask 077 && cat "$TLS_DIR/broker.key" "$TLS_DIR/broker.pem" >"$TLS_DIR/keystore.pem")
}

write_properties() {
    local rf=$KAFKA_REPLICATION min_isr=$(( KAFKA_REPLICATION > 1 ? KAFKA_REPLICATION - 1 : 1 ))
    local listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT" protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    [[ -z $KAFKA_SASL_SSL_PORT ]] || {
        listeners+=",SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
        protocols+=",SASL_SSL:SASL_SSL"
    }
    local advertised=$listeners
    [[ -z $KAFKA_ROUTED_PORT ]] || {
        listeners+=",ROUTED://127.0.0.1:$KAFKA_ROUTED_PORT"
        advertised+=",ROUTED://127.0.0.1:$KAFKA_ROUTED_ADVERTISED_PORT"
        protocols+=",ROUTED:PLAINTEXT"
    }
    cat >"$PROPS" <<EOF
# Written by deploy/local/kafka.sh on every start: edits are overwritten.
process.roles=broker,controller
node.id=$KAFKA_NODE_ID
controller.quorum.voters=$KAFKA_VOTERS
listeners=$listeners,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
log.dirs=$DATA_DIR

# Topics: six partitions, on $rf node(s); acks=all needs $min_isr in sync
num.partitions=6
default.replication.factor=$rf
min.insync.replicas=$min_isr
auto.create.topics.enable=false

# Internal topics replicated the same way, with few partitions (the default 50 slow the
# first group join on a small machine)
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
transaction.state.log.num.partitions=$rf
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=$KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS

# Small-machine sizing (2 cores)
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
EOF
    [[ -n $KAFKA_SASL_SSL_PORT ]] || return 0
    cat >>"$PROPS" <<EOF

# SASL_SSL listener: TLS with the certificate in $TLS_DIR, SCRAM-SHA-512 users from the
# metadata log (created when the storage was formatted)
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$TLS_DIR/keystore.pem
EOF
}

format_storage() {
    [[ ! -f $DATA_DIR/meta.properties ]] || return 0
    local cid=$KAFKA_CLUSTER_ID
    [[ -n $cid ]] || cid=$(tool kafka.tools.StorageTool random-uuid 2>>"$LOG_DIR/format.log") \
        || die "no cluster id from StorageTool random-uuid; see $LOG_DIR/format.log"
    local -a scram=()
    [[ -z $KAFKA_SASL_SSL_PORT ]] \
        || scram=(--add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_SSL_USER,password=$KAFKA_SASL_SSL_PASSWORD]")
    log "formatting $DATA_DIR (cluster id $cid)"
    tool kafka.tools.StorageTool format -t "$cid" -c "$PROPS" "${scram[@]}" >>"$LOG_DIR/format.log" 2>&1 \
        || die "formatting failed; see $LOG_DIR/format.log"
}

# --------------------------------------------------------------------------------- commands ---

# launch: start the JVM in the background, unless this node runs; prints its pid.
launch() {
    local p
    if p=$(pid); then echo "$p"; return 0; fi
    port_open "$KAFKA_PORT" && die "127.0.0.1:$KAFKA_PORT is taken by a process not started from $KAFKA_DIR"
    port_open "$KAFKA_CONTROLLER_PORT" && die "controller port 127.0.0.1:$KAFKA_CONTROLLER_PORT is taken"
    mkdir -p "$DATA_DIR" "$LOG_DIR"
    [[ -z $KAFKA_SASL_SSL_PORT ]] || write_tls
    write_properties
    format_storage
    log "starting Kafka $KAFKA_VERSION node $KAFKA_NODE_ID on 127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT)"
    printf '\n===== %s starting =====\n' "$(date '+%F %T')" >>"$LOG_DIR/kafka.out"
    # Its own session (setsid), so a Ctrl-C in the caller's terminal does not reach it. A
    # background subshell is no process group leader, so setsid does not fork: $! is the JVM.
    # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is a list of flags
    (cd "$KAFKA_DIR" && exec setsid "$JAVA" $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dlog4j2.shutdownHookEnabled=false \
        -Dkafka.logs.dir="$LOG_DIR" -Dlog4j2.configurationFile="$SUPPORT_DIR/log4j2.properties" \
        -cp "$LIB/*" kafka.Kafka "$PROPS") >>"$LOG_DIR/kafka.out" 2>&1 </dev/null 8>&- &
    local launched=$!
    echo "$launched" >"$PID_FILE"
    for _ in {1..50}; do   # until the subshell has become the JVM (pid checks the command line)
        [[ $(pid) != "$launched" ]] || break
        sleep 0.1
    done
    echo "$launched"
}

lock() {
    mkdir -p "$KAFKA_DIR"
    exec 8>"$KAFKA_DIR/.lock"
    flock -w 300 8 || die "another kafka.sh holds $KAFKA_DIR/.lock"
}

cmd_start() {
    lock
    if ! pid >/dev/null && port_open "$KAFKA_PORT"; then
        ready || die "127.0.0.1:$KAFKA_PORT is taken by something that is not a Kafka broker"
        log "a Kafka broker not started from $KAFKA_DIR already answers on 127.0.0.1:$KAFKA_PORT"
        return 0
    fi
    local p
    if p=$(pid); then
        log "already running (pid $p)"
    else
        p=$(launch)
    fi
    await "$p"
}

cmd_stop() {
    lock
    local p
    if p=$(pid); then
        log "stopping pid $p (SIGTERM, up to ${KAFKA_STOP_TIMEOUT}s)"
        terminate "$p"
        log "stopped"
    else
        rm -f "$PID_FILE"
        log "not running"
    fi
}

cmd_kill() {
    local p
    p=$(pid) || die "not running"
    kill -KILL "$p"
    while [[ $(pid) == "$p" ]]; do sleep 0.1; done
    rm -f "$PID_FILE"
    log "killed pid $p (SIGKILL)"
}

case ${1:-} in
    start) require_java; fetch; cmd_start ;;
    launch) require_java; fetch; lock; launch >/dev/null ;;
    stop) cmd_stop ;;
    kill) cmd_kill ;;
    status)
        require_java
        mkdir -p "$KAFKA_DIR"
        if [[ -d $LIB ]] && ready; then log "ready"; else log "not ready"; exit 1; fi ;;
    logs)
        if [[ ${2:-} == -f ]]; then exec tail -n 100 -F "$LOG_DIR/server.log"; fi
        tail -n 200 "$LOG_DIR/server.log" ;;
    fetch) require_java; fetch; log "Kafka $KAFKA_VERSION jars in $LIB" ;;
    tool) shift; require_java; fetch; tool "$@" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

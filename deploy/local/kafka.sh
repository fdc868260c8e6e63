#!/usr/bin/env bash
# Local Apache Kafka (KRaft, combined broker+controller): one node, or with
# "cluster" three nodes for fault-injection tests; run straight from Apache
# Kafka's jars on Maven Central. Needs only Java 17+
# and Maven (Maven only for the one-time jar fetch). No Docker, no tarball.
#
# Usage: deploy/local/kafka.sh start|stop|status|fetch|logs [-f]
#        deploy/local/kafka.sh cluster start|stop|status|leader|bootstrap
#        deploy/local/kafka.sh cluster kill|start-node|stop-node|logs N [-f]
#
#   start   fetch jars if needed, format storage once, start the broker in
#           the background and wait until it answers a Metadata request.
#           Idempotent: exits 0 if a broker already answers on the port.
#   stop    SIGTERM, wait up to KAFKA_STOP_TIMEOUT (30 s), then SIGKILL.
#           Idempotent: exits 0 if nothing is running.
#   status  exit 0 if the broker answers on 127.0.0.1:$KAFKA_PORT, else 1.
#   fetch   download the jars into the cache (done automatically by start).
#   logs    print the tail of the broker log; "logs -f" follows it.
#
# Environment:
#   KAFKA_PORT             client port (default 9092), bound to 127.0.0.1
#   KAFKA_CONTROLLER_PORT  KRaft controller port (default KAFKA_PORT+1)
#   KAFKA_VERSION          Kafka version (default: first that works of
#                          4.3.1, 4.1.1; an already cached one is preferred)
#   STATE_DIR              state root (default <repo>/.local, git-ignored):
#                            $STATE_DIR/kafka-jars/<version>/lib   jar cache
#                            $STATE_DIR/kafka-$KAFKA_PORT/         data, logs,
#                              pid, server.properties, cluster.id
#   KAFKA_HEAP_OPTS        broker heap (default "-Xmx512m -Xms256m")
#   KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS
#                          how long a new consumer group waits for more members
#                          before its first assignment (default 0, for quick
#                          tests; Kafka's own default, 3000, for benchmarks)
#   KAFKA_READY_TIMEOUT    seconds to wait for readiness per attempt (90)
#   KAFKA_STOP_TIMEOUT     seconds to wait for a clean shutdown (30)
#   PYTHON                 optional python with aiokafka installed; if set,
#                          readiness is probed with aiokafka describe_cluster
#                          instead of Kafka's BrokerApiVersionsCommand.
#   JAVA_HOME              optional; $JAVA_HOME/bin/java is used if present.
#
# A SASL_SSL listener beside the plain one (single broker only), for testing
# clients against an encrypted, authenticated broker:
#   KAFKA_SASL_SSL_PORT    if set, also listen on 127.0.0.1:$KAFKA_SASL_SSL_PORT
#                          with TLS and SASL SCRAM-SHA-512 (the PLAINTEXT port
#                          stays, for the readiness probe and inter-broker use)
#   KAFKA_SASL_SSL_USER    the SCRAM-SHA-512 user (default "ratings")
#   KAFKA_SASL_SSL_PASSWORD  its password (default "ratings-local-only");
#                          letters, digits and ._- only
#                          The user is created when the storage is formatted,
#                          i.e. on the first start of a fresh state directory.
#   A throwaway CA and a broker certificate for 127.0.0.1 and localhost are
#   made with openssl in $STATE_DIR/kafka-$KAFKA_PORT/tls/ on the first such
#   start; clients trust tls/ca.pem:
#     KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_SASL_SSL_PORT
#     KAFKA_SECURITY_PROTOCOL=SASL_SSL KAFKA_SASL_MECHANISM=SCRAM-SHA-512
#     KAFKA_SASL_USERNAME=ratings KAFKA_SASL_PASSWORD=ratings-local-only
#     KAFKA_SSL_CA_FILE=$STATE_DIR/kafka-$KAFKA_PORT/tls/ca.pem
#
# Cluster mode ("cluster ..."): three KRaft nodes on loopback, each a combined
# broker+controller and one of three controller voters (the smallest quorum
# that survives losing a node), for fault-injection tests. It never touches
# the single broker above. Node N (1..3) listens on
#   client     127.0.0.1:$KAFKA_CLUSTER_PORT + 2(N-1)   (9792, 9794, 9796)
#   controller 127.0.0.1:$KAFKA_CLUSTER_PORT + 2(N-1)+1 (9793, 9795, 9797)
# with data, logs, pid and server.properties in
# $STATE_DIR/kafka-cluster-$KAFKA_CLUSTER_PORT/node-N/ and one shared cluster.id.
# New topics default to replication factor 3 and min.insync.replicas=2, and so
# do the internal ones (__consumer_offsets, __transaction_state): acks=all
# writes keep succeeding with one node down and fail with two down.
#
#   cluster start       start the three nodes together (a node is ready only
#                       once a quorum exists) and wait until each one answers
#                       a Metadata request that lists itself. Idempotent.
#   cluster stop        SIGTERM all nodes at once, SIGKILL after the timeout.
#   cluster status      one line per node; exit 0 only if all three answer.
#   cluster leader      print the node id of the active controller (the KRaft
#                       quorum leader), from Kafka's MetadataQuorumCommand.
#   cluster bootstrap   print the bootstrap servers string for clients.
#   cluster kill N      kill -9 node N (a crash; the others keep the quorum).
#   cluster start-node N  (re)start node N and wait until it has rejoined.
#   cluster stop-node N   stop node N cleanly (controlled shutdown).
#   cluster logs N [-f] node N's server.log.
#
#   KAFKA_CLUSTER_PORT     node 1's client port (default 9792); the cluster
#                          uses the six ports from there.
#   KAFKA_HEAP_OPTS        in cluster mode, per node (default
#                          "-Xmx384m -Xms128m": three JVMs on a small machine)
#   KAFKA_READY_TIMEOUT, KAFKA_STOP_TIMEOUT, PYTHON, JAVA_HOME as above.
#
# By hand: deploy/local/kafka.sh cluster start
#          KAFKA_BOOTSTRAP_SERVERS=$(deploy/local/kafka.sh cluster bootstrap) \
#            TOPIC_REPLICATION_FACTOR=3 TOPIC_MIN_INSYNC_REPLICAS=2 \
#            .venv/bin/python -m shared.topics
#          deploy/local/kafka.sh cluster kill "$(deploy/local/kafka.sh cluster leader)"
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUPPORT_DIR=$SCRIPT_DIR/kafka
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
POM=$SUPPORT_DIR/pom.xml
BROKER_LOG4J=$SUPPORT_DIR/log4j2.properties
TOOLS_LOG4J=$SUPPORT_DIR/log4j2-tools.properties

DEFAULT_VERSIONS=(4.3.1 4.1.1)

CLUSTER_MODE=0
[[ ${1:-} != cluster ]] || CLUSTER_MODE=1
CLUSTER_NODES=3
KAFKA_CLUSTER_PORT=${KAFKA_CLUSTER_PORT:-9792}
NODE_ID=1

KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-}
if (( CLUSTER_MODE )); then
    KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx384m -Xms128m}
else
    KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}
fi
KAFKA_READY_TIMEOUT=${KAFKA_READY_TIMEOUT:-90}
KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS=${KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS:-0}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
KAFKA_SASL_SSL_PORT=${KAFKA_SASL_SSL_PORT:-}
KAFKA_SASL_SSL_USER=${KAFKA_SASL_SSL_USER:-ratings}
KAFKA_SASL_SSL_PASSWORD=${KAFKA_SASL_SSL_PASSWORD:-ratings-local-only}
STATE_DIR=${STATE_DIR:-$REPO_ROOT/.local}

PROG="kafka.sh[$KAFKA_PORT]"
(( ! CLUSTER_MODE )) || PROG="kafka.sh[cluster $KAFKA_CLUSTER_PORT]"

log() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

is_port() { [[ $1 =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= 65535 )); }

is_port "$KAFKA_PORT" || die "KAFKA_PORT must be a TCP port number, got '$KAFKA_PORT'"
if [[ -z $KAFKA_CONTROLLER_PORT ]]; then
    KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
fi
is_port "$KAFKA_CONTROLLER_PORT" || die "KAFKA_CONTROLLER_PORT must be a TCP port number, got '$KAFKA_CONTROLLER_PORT'"
[[ $KAFKA_PORT != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"
[[ $KAFKA_READY_TIMEOUT =~ ^[0-9]+$ ]] || die "KAFKA_READY_TIMEOUT must be a number of seconds"
[[ $KAFKA_STOP_TIMEOUT =~ ^[0-9]+$ ]] || die "KAFKA_STOP_TIMEOUT must be a number of seconds"
if [[ -n $KAFKA_SASL_SSL_PORT ]]; then
    (( ! CLUSTER_MODE )) || die "KAFKA_SASL_SSL_PORT is for the single broker, not cluster mode"
    is_port "$KAFKA_SASL_SSL_PORT" || die "KAFKA_SASL_SSL_PORT must be a TCP port number, got '$KAFKA_SASL_SSL_PORT'"
    [[ $KAFKA_SASL_SSL_PORT != "$KAFKA_PORT" && $KAFKA_SASL_SSL_PORT != "$KAFKA_CONTROLLER_PORT" ]] \
        || die "KAFKA_SASL_SSL_PORT must differ from KAFKA_PORT and KAFKA_CONTROLLER_PORT"
    [[ $KAFKA_SASL_SSL_USER =~ ^[A-Za-z0-9._-]+$ ]] || die "KAFKA_SASL_SSL_USER: letters, digits and ._- only"
    [[ $KAFKA_SASL_SSL_PASSWORD =~ ^[A-Za-z0-9._-]+$ ]] || die "KAFKA_SASL_SSL_PASSWORD: letters, digits and ._- only"
fi
if (( CLUSTER_MODE )); then
    is_port "$KAFKA_CLUSTER_PORT" && is_port $((KAFKA_CLUSTER_PORT + 2 * CLUSTER_NODES - 1)) \
        || die "KAFKA_CLUSTER_PORT must leave room for $((2 * CLUSTER_NODES)) ports, got '$KAFKA_CLUSTER_PORT'"
fi

mkdir -p "$STATE_DIR" || die "cannot create STATE_DIR '$STATE_DIR'"
STATE_DIR=$(cd "$STATE_DIR" && pwd)
JARS_ROOT=$STATE_DIR/kafka-jars
BROKER_DIR=$STATE_DIR/kafka-$KAFKA_PORT
DATA_DIR=$BROKER_DIR/data
LOG_DIR=$BROKER_DIR/logs
PID_FILE=$BROKER_DIR/kafka.pid
PROPS=$BROKER_DIR/server.properties
CLUSTER_ID_FILE=$BROKER_DIR/cluster.id
VERSION_FILE=$BROKER_DIR/kafka.version
TLS_DIR=$BROKER_DIR/tls
CLUSTER_DIR=$STATE_DIR/kafka-cluster-$KAFKA_CLUSTER_PORT

node_port() { printf '%s' $((KAFKA_CLUSTER_PORT + 2 * ($1 - 1))); }

# select_node <n>: point every per-broker variable at cluster node n, so the
# single-broker functions below (launch, probe, terminate...) act on it.
select_node() {
    NODE_ID=$1
    KAFKA_PORT=$(node_port "$NODE_ID")
    KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
    BROKER_DIR=$CLUSTER_DIR/node-$NODE_ID
    DATA_DIR=$BROKER_DIR/data
    LOG_DIR=$BROKER_DIR/logs
    PID_FILE=$BROKER_DIR/kafka.pid
    PROPS=$BROKER_DIR/server.properties
    CLUSTER_ID_FILE=$CLUSTER_DIR/cluster.id   # every node formats with the same id
    VERSION_FILE=$BROKER_DIR/kafka.version
    PROG="kafka.sh[cluster $KAFKA_CLUSTER_PORT node $NODE_ID]"
}

JAVA=
KAFKA_VER=
LIB=

# Fast-starting JVM flags for the short-lived tools (format, probe).
TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

now() { date +%s; }

# ----------------------------------------------------------------- checks ---

require_java() {
    if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
        JAVA=$JAVA_HOME/bin/java
    elif command -v java >/dev/null 2>&1; then
        JAVA=$(command -v java)
    else
        die "java not found (PATH or JAVA_HOME). Kafka ${DEFAULT_VERSIONS[0]} needs Java 17 or newer, e.g. 'apt-get install openjdk-17-jre-headless'."
    fi
    local raw major
    raw=$("$JAVA" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}') || true
    major=${raw%%.*}
    if [[ $major == 1 ]]; then                # 1.8.0_xxx style
        major=$(printf '%s' "$raw" | cut -d. -f2)
    fi
    major=${major%%[!0-9]*}
    [[ -n $major ]] || die "cannot determine the Java version of $JAVA ('$raw')"
    if (( major < 17 )); then
        die "$JAVA is Java $raw; Kafka 4.x brokers need Java 17 or newer. Install a JDK 17+ or point JAVA_HOME at one."
    fi
}

require_mvn() {
    command -v mvn >/dev/null 2>&1 \
        || die "mvn (Apache Maven) not found on PATH; it is needed once to fetch the Kafka jars from Maven Central (e.g. 'apt-get install maven')."
}

# ------------------------------------------------------------- jar cache ---

pom_hash() { sha256sum "$POM" | cut -c1-64; }

cache_dir() { printf '%s/%s' "$JARS_ROOT" "$1"; }

cache_ok() {
    local dir
    dir=$(cache_dir "$1")
    [[ -f $dir/.complete && -f $dir/lib/kafka_2.13-$1.jar ]] || return 1
    [[ $(head -n1 "$dir/.complete") == "$(pom_hash)" ]]
}

# fetch_version <version>: populate $STATE_DIR/kafka-jars/<version>/lib.
fetch_version() {
    local v=$1 dir flog tmp list log4j_ver slf4j_ver bridge
    dir=$(cache_dir "$v")
    mkdir -p "$dir"
    # Serialise fetches (two instances may be started at once on a fresh box).
    exec 9>"$JARS_ROOT/.fetch.lock"
    flock 9
    if cache_ok "$v"; then
        exec 9>&-
        return 0
    fi
    require_mvn
    log "fetching Kafka $v jars from Maven Central (first run only)..."
    local t0
    t0=$(now)
    flog=$dir/fetch.log
    : >"$flog"
    list=$dir/deps.txt
    rm -f "$list"
    # Pass 1: which slf4j/log4j2 versions does this Kafka bring itself?
    if ! mvn -B -f "$POM" dependency:list -Dkafka.version="$v" \
            -DincludeGroupIds=org.apache.logging.log4j,org.slf4j \
            -DoutputFile="$list" >>"$flog" 2>&1 9>&-; then
        warn "resolving Kafka $v failed (Maven output in $flog):"
        grep -E '\[ERROR\]' "$flog" | head -n 5 >&2 || true
        exec 9>&-
        return 1
    fi
    log4j_ver=$(sed -nE 's/^ *org\.apache\.logging\.log4j:log4j-api:jar:([^:]+):.*/\1/p' "$list" | head -n1)
    slf4j_ver=$(sed -nE 's/^ *org\.slf4j:slf4j-api:jar:([^:]+):.*/\1/p' "$list" | head -n1)
    if [[ -z $log4j_ver ]]; then
        warn "Kafka $v does not depend on log4j2 (Kafka 3.x uses reload4j); this script supports Kafka 4.x only"
        exec 9>&-
        return 1
    fi
    if [[ $slf4j_ver == 1.* ]]; then bridge=log4j-slf4j-impl; else bridge=log4j-slf4j2-impl; fi
    log "  Kafka $v uses slf4j-api $slf4j_ver and log4j $log4j_ver -> adding $bridge $log4j_ver"
    # Pass 2: copy the runtime jars plus the logging bridge into a temp dir.
    tmp=$dir/lib.tmp.$$
    rm -rf "$tmp"
    if ! mvn -B -f "$POM" dependency:copy-dependencies -Dkafka.version="$v" \
            -Dlog4j.version="$log4j_ver" -Dlog4j.slf4j.bridge="$bridge" \
            -DincludeScope=runtime -DoutputDirectory="$tmp" >>"$flog" 2>&1 9>&-; then
        warn "copying the Kafka $v jars failed (Maven output in $flog):"
        grep -E '\[ERROR\]' "$flog" | head -n 5 >&2 || true
        rm -rf "$tmp"
        exec 9>&-
        return 1
    fi
    local j
    for j in "kafka_2.13-$v.jar" "kafka-clients-$v.jar" "kafka-tools-$v.jar" \
             "$bridge-$log4j_ver.jar" "log4j-core-$log4j_ver.jar"; do
        if [[ ! -f $tmp/$j ]]; then
            warn "expected jar $j missing after the copy (see $flog)"
            rm -rf "$tmp"
            exec 9>&-
            return 1
        fi
    done
    # Prove the jars run on this Java before accepting them.
    if ! "$JAVA" "${TOOL_JVM_OPTS[@]}" -cp "$tmp/*" -Dlog4j2.configurationFile="$TOOLS_LOG4J" \
            kafka.tools.StorageTool random-uuid >>"$flog" 2>&1 9>&-; then
        warn "Kafka $v jars do not run on $JAVA (see $flog):"
        tail -n 5 "$flog" >&2
        rm -rf "$tmp"
        exec 9>&-
        return 1
    fi
    rm -rf "$dir/lib"
    if ! mv "$tmp" "$dir/lib"; then
        exec 9>&-
        return 1
    fi
    { pom_hash; echo "kafka=$v log4j=$log4j_ver slf4j=$slf4j_ver bridge=$bridge"; } >"$dir/.complete"
    exec 9>&-
    log "  cached $(find "$dir/lib" -name '*.jar' | wc -l) jars ($(du -sh "$dir/lib" | cut -f1)) in $dir/lib in $(( $(now) - t0 )) s"
}

# resolve_version [nofetch]: sets KAFKA_VER and LIB.
resolve_version() {
    local nofetch=${1:-} v candidates
    if [[ -n ${KAFKA_VERSION:-} ]]; then
        candidates=("$KAFKA_VERSION")
    else
        candidates=("${DEFAULT_VERSIONS[@]}")
    fi
    for v in "${candidates[@]}"; do
        if cache_ok "$v"; then
            KAFKA_VER=$v
            LIB=$(cache_dir "$v")/lib
            return 0
        fi
    done
    [[ -z $nofetch ]] || return 1
    mkdir -p "$JARS_ROOT"
    for v in "${candidates[@]}"; do
        if fetch_version "$v"; then
            KAFKA_VER=$v
            LIB=$(cache_dir "$v")/lib
            return 0
        fi
        if (( ${#candidates[@]} > 1 )); then
            warn "Kafka $v is not usable here; trying the next candidate"
        fi
    done
    die "could not fetch a usable Kafka (${candidates[*]}) from Maven Central; see $JARS_ROOT/<version>/fetch.log"
}

# -------------------------------------------------------------- processes ---

# pids of brokers started with *our* server.properties (exact path match).
scan_broker_pids() {
    local d cmd
    for d in /proc/[0-9]*; do
        cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
        if [[ $cmd == *" kafka.Kafka $PROPS"* ]]; then
            printf '%s\n' "${d#/proc/}"
        fi
    done
}

is_our_broker() {
    local pid=$1 cmd
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmd == *" kafka.Kafka $PROPS"* ]]
}

# Prints the pid of our running broker, if any.
broker_pid() {
    local pid=
    if [[ -f $PID_FILE ]]; then
        pid=$(head -n1 "$PID_FILE" 2>/dev/null || true)
        if is_our_broker "$pid"; then
            printf '%s\n' "$pid"
            return 0
        fi
    fi
    pid=$(scan_broker_pids | head -n1)
    [[ -n $pid ]] || return 1
    printf '%s\n' "$pid" >"$PID_FILE"
    printf '%s\n' "$pid"
}

port_open() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

PY_PROBE='
import asyncio, sys
from aiokafka.admin import AIOKafkaAdminClient
async def main():
    admin = AIOKafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)
    await admin.start()
    try:
        info = await admin.describe_cluster()
        ids = ",".join(str(b["node_id"]) for b in sorted(info["brokers"], key=lambda b: b["node_id"]))
        print("cluster_id=%s brokers=%d ids=%s" % (info["cluster_id"], len(info["brokers"]), ids))
    finally:
        await admin.close()
asyncio.run(main())
'

# probe: does a Kafka broker answer a Metadata request on our port? In
# cluster mode the answer must also list this node: registered and unfenced.
probe() {
    local out=$BROKER_DIR/probe.out
    mkdir -p "$BROKER_DIR"
    if [[ -n ${PYTHON:-} ]] && "$PYTHON" -c 'import aiokafka' >/dev/null 2>&1; then
        timeout 30 "$PYTHON" -c "$PY_PROBE" "127.0.0.1:$KAFKA_PORT" >"$out" 2>&1 8>&- 9>&- \
            && grep -q '^cluster_id=' "$out" \
            && { (( ! CLUSTER_MODE )) || grep -Eq "ids=([0-9]+,)*$NODE_ID(,|\$)" "$out"; }
        return
    fi
    [[ -n $LIB ]] || return 1
    # BrokerApiVersionsCommand sends Metadata (until the broker lists itself)
    # then ApiVersions to every broker; exit 0 only if both were answered.
    timeout 40 "$JAVA" "${TOOL_JVM_OPTS[@]}" -cp "$LIB/*" -Dlog4j2.configurationFile="$TOOLS_LOG4J" \
        org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
        >"$out" 2>&1 8>&- 9>&- \
        && grep -q -- '-> (' "$out" \
        && { (( ! CLUSTER_MODE )) || grep -q -- "(id: $NODE_ID rack" "$out"; }
}

# wait_ready <pid>: 0 = answers, 1 = timeout, 2 = process died.
wait_ready() {
    local pid=$1 deadline
    deadline=$(( $(now) + KAFKA_READY_TIMEOUT ))
    while (( $(now) < deadline )); do
        if ! kill -0 "$pid" 2>/dev/null; then
            return 2
        fi
        if port_open "$KAFKA_PORT" && probe; then
            return 0
        fi
        sleep 1
    done
    return 1
}

show_broker_log() {
    local n=${1:-40}
    if [[ -s $LOG_DIR/server.log ]]; then
        printf -- '----- last %s lines of %s -----\n' "$n" "$LOG_DIR/server.log" >&2
        tail -n "$n" "$LOG_DIR/server.log" >&2
    fi
    if [[ -s $LOG_DIR/kafka.out ]]; then
        printf -- '----- last %s lines of %s (stdout/stderr) -----\n' "$n" "$LOG_DIR/kafka.out" >&2
        tail -n "$n" "$LOG_DIR/kafka.out" >&2
    fi
    printf -- '-----\n' >&2
}

# terminate <pid>: SIGTERM, wait, SIGKILL.
terminate() {
    local pid=$1 t0
    t0=$(now)
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if (( $(now) - t0 >= KAFKA_STOP_TIMEOUT )); then
            warn "broker pid $pid did not stop within ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            local i
            for i in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
            break
        fi
        sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && return 1
    log "broker (pid $pid) stopped in $(( $(now) - t0 )) s"
}

# ---------------------------------------------------------------- config ---

# write_throwaway_tls: a CA and a certificate for 127.0.0.1/localhost signed by
# it, once per broker directory; the broker reads key + chain from one PEM file.
write_throwaway_tls() {
    [[ -s $TLS_DIR/keystore.pem ]] && return 0
    command -v openssl >/dev/null 2>&1 \
        || die "openssl not found; it makes the SASL_SSL listener's throwaway certificates (e.g. 'apt-get install openssl')"
    mkdir -p "$TLS_DIR"
    log "making a throwaway CA and broker certificate in $TLS_DIR"
    local olog=$TLS_DIR/openssl.log
    {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -subj "/CN=agent-ratings local Kafka CA" -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" \
        && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=127.0.0.1" -keyout "$TLS_DIR/broker.key" -out "$TLS_DIR/broker.csr" \
        && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$TLS_DIR/broker.ext" \
        && openssl x509 -req -in "$TLS_DIR/broker.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
            -CAcreateserial -days 30 -extfile "$TLS_DIR/broker.ext" -out "$TLS_DIR/broker.pem"
    } >"$olog" 2>&1 || { cat "$olog" >&2; die "openssl failed (see $olog)"; }
    cat "$TLS_DIR/broker.key" "$TLS_DIR/broker.pem" >"$TLS_DIR/keystore.pem.tmp"
    chmod 600 "$TLS_DIR/keystore.pem.tmp" "$TLS_DIR/ca.key" "$TLS_DIR/broker.key"
    mv "$TLS_DIR/keystore.pem.tmp" "$TLS_DIR/keystore.pem"
}

write_server_properties() {
    local listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT"
    local advertised="PLAINTEXT://127.0.0.1:$KAFKA_PORT"
    local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    if [[ -n $KAFKA_SASL_SSL_PORT ]]; then
        listeners+=",SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
        advertised+=",SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
        protocols+=",SASL_SSL:SASL_SSL"
    fi
    cat >"$PROPS" <<EOF
# Generated by deploy/local/kafka.sh on every start -- edits are overwritten.
# Single-node KRaft: combined broker + controller, loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
log.dirs=$DATA_DIR

# Topics
num.partitions=6
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false

# Internal topics sized for one node (the default 50 partitions slow the first group join)
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=$KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS

# Small-machine sizing (2 cores, 512 MB heap)
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=33554432
EOF
    [[ -n $KAFKA_SASL_SSL_PORT ]] || return 0
    cat >>"$PROPS" <<EOF

# SASL_SSL listener (KAFKA_SASL_SSL_PORT): TLS with the throwaway certificate
# in $TLS_DIR, SCRAM-SHA-512 users from the metadata log (created at format time)
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$TLS_DIR/keystore.pem
EOF
}

# write_cluster_node_properties: node $NODE_ID of the three-voter cluster.
write_cluster_node_properties() {
    local voters= n port
    for n in $(seq 1 "$CLUSTER_NODES"); do
        port=$(node_port "$n")
        voters+="${voters:+,}$n@127.0.0.1:$((port + 1))"
    done
    cat >"$PROPS" <<EOF
# Generated by deploy/local/kafka.sh cluster on every start -- edits are overwritten.
# Node $NODE_ID of $CLUSTER_NODES: combined broker + controller, static quorum, loopback only.
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR

# Topics: every partition on all three nodes; acks=all needs two of them
num.partitions=6
default.replication.factor=3
min.insync.replicas=2
auto.create.topics.enable=false
unclean.leader.election.enable=false

# Internal topics replicated the same way (few partitions: the default 50 slow a small box)
offsets.topic.replication.factor=3
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0

# Small-machine sizing (2 cores shared by three JVMs)
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
EOF
}

cluster_id() {
    local cid=
    if [[ -f $DATA_DIR/meta.properties ]]; then
        cid=$(sed -n 's/^cluster\.id=//p' "$DATA_DIR/meta.properties" | head -n1)
    fi
    if [[ -z $cid && -s $CLUSTER_ID_FILE ]]; then
        cid=$(head -n1 "$CLUSTER_ID_FILE")
    fi
    if [[ -z $cid ]]; then
        cid=$("$JAVA" "${TOOL_JVM_OPTS[@]}" -cp "$LIB/*" -Dlog4j2.configurationFile="$TOOLS_LOG4J" \
            kafka.tools.StorageTool random-uuid 2>>"$LOG_DIR/format.log" 8>&- 9>&-) \
            || die "kafka.tools.StorageTool random-uuid failed (see $LOG_DIR/format.log)"
        cid=$(printf '%s' "$cid" | tail -n1 | tr -d '[:space:]')
        [[ -n $cid ]] || die "kafka.tools.StorageTool random-uuid printed nothing"
    fi
    printf '%s\n' "$cid" >"$CLUSTER_ID_FILE"
    printf '%s' "$cid"
}

format_storage() {
    local cid
    cid=$(cluster_id) || exit 1
    if [[ -f $DATA_DIR/meta.properties ]]; then
        log "reusing formatted storage in $DATA_DIR (cluster id $cid)"
        return 0
    fi
    log "formatting storage in $DATA_DIR (cluster id $cid)"
    local -a scram=()
    if [[ -n $KAFKA_SASL_SSL_PORT ]]; then
        scram=(--add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_SSL_USER,password=$KAFKA_SASL_SSL_PASSWORD]")
        log "  with the SCRAM-SHA-512 user '$KAFKA_SASL_SSL_USER'"
    fi
    # StorageTool calls System.exit, so it runs as its own process.
    if ! "$JAVA" "${TOOL_JVM_OPTS[@]}" -cp "$LIB/*" -Dlog4j2.configurationFile="$TOOLS_LOG4J" \
            kafka.tools.StorageTool format -t "$cid" -c "$PROPS" --ignore-formatted "${scram[@]}" \
            >>"$LOG_DIR/format.log" 2>&1 8>&- 9>&-; then
        tail -n 20 "$LOG_DIR/format.log" >&2
        die "formatting $DATA_DIR failed (full output in $LOG_DIR/format.log)"
    fi
    printf '%s\n' "$KAFKA_VER" >"$VERSION_FILE"
}

# ----------------------------------------------------------------- start ---

# launch_broker: write the config, format once, start the JVM in the
# background without waiting; sets LAUNCHED_PID.
LAUNCHED_PID=
launch_broker() {
    local pid cand
    mkdir -p "$DATA_DIR" "$LOG_DIR" || die "cannot create $DATA_DIR / $LOG_DIR"
    if (( CLUSTER_MODE )); then
        write_cluster_node_properties || die "cannot write $PROPS"
    else
        [[ -z $KAFKA_SASL_SSL_PORT ]] || write_throwaway_tls
        write_server_properties || die "cannot write $PROPS"
    fi
    format_storage
    log "starting Kafka $KAFKA_VER on 127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT)"
    {
        printf '\n===== %s starting Kafka %s =====\n' "$(date '+%F %T')" "$KAFKA_VER"
    } >>"$LOG_DIR/kafka.out"
    # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is a list of flags
    (
        cd "$BROKER_DIR"
        exec nohup setsid "$JAVA" $KAFKA_HEAP_OPTS \
            -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
            -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
            -Djava.awt.headless=true \
            -Dlog4j2.shutdownHookEnabled=false \
            -Dkafka.logs.dir="$LOG_DIR" \
            -Dlog4j2.configurationFile="$BROKER_LOG4J" \
            -cp "$LIB/*" kafka.Kafka "$PROPS"
    ) >>"$LOG_DIR/kafka.out" 2>&1 </dev/null 8>&- 9>&- &
    pid=$!
    # setsid may fork; make sure we record the JVM's pid.
    local i
    for i in $(seq 1 20); do
        if is_our_broker "$pid"; then break; fi
        cand=$(scan_broker_pids | head -n1)
        if [[ -n $cand ]]; then pid=$cand; break; fi
        sleep 0.1
    done
    printf '%s\n' "$pid" >"$PID_FILE"
    LAUNCHED_PID=$pid
}

# await_broker <pid> <t0>: 0 = ready, 1 = failed (broker stopped again).
await_broker() {
    local pid=$1 t0=$2 rc
    log "broker pid $pid; waiting up to ${KAFKA_READY_TIMEOUT}s for it to answer a Metadata request..."
    rc=0
    wait_ready "$pid" || rc=$?
    if (( rc == 0 )); then
        log "Kafka $KAFKA_VER ready on 127.0.0.1:$KAFKA_PORT in $(( $(now) - t0 )) s (pid $pid, state $BROKER_DIR)"
        return 0
    fi
    if (( rc == 2 )); then
        warn "broker process $pid exited during startup"
    else
        if port_open "$KAFKA_PORT"; then
            warn "broker did not answer within ${KAFKA_READY_TIMEOUT}s (last probe output: $(tail -n1 "$BROKER_DIR/probe.out" 2>/dev/null))"
        else
            warn "broker did not open 127.0.0.1:$KAFKA_PORT within ${KAFKA_READY_TIMEOUT}s"
        fi
    fi
    show_broker_log 40
    if kill -0 "$pid" 2>/dev/null; then
        terminate "$pid" || true
    fi
    rm -f "$PID_FILE"
    return 1
}

# start_once: 0 = ready, 1 = failed (broker stopped again).
start_once() {
    local t0
    t0=$(now)
    launch_broker
    await_broker "$LAUNCHED_PID" "$t0"
}

cmd_start() {
    require_java
    resolve_version
    mkdir -p "$BROKER_DIR"
    exec 8>"$BROKER_DIR/.lock"
    if ! flock -w 300 8; then
        die "another kafka.sh is busy with $BROKER_DIR (lock held for 5 min)"
    fi

    local pid=
    pid=$(broker_pid) || pid=
    if port_open "$KAFKA_PORT"; then
        if probe; then
            if [[ -n $pid ]]; then
                log "Kafka already running on 127.0.0.1:$KAFKA_PORT (pid $pid); nothing to do"
            else
                log "a Kafka broker already answers on 127.0.0.1:$KAFKA_PORT (not started from $BROKER_DIR); nothing to do"
            fi
            return 0
        fi
        if [[ -z $pid ]]; then
            die "127.0.0.1:$KAFKA_PORT is in use by something that does not answer Kafka requests; choose another KAFKA_PORT"
        fi
    fi
    if [[ -n $pid ]]; then
        log "broker pid $pid is already starting; waiting for it..."
        local rc=0
        wait_ready "$pid" || rc=$?
        if (( rc == 0 )); then
            log "Kafka ready on 127.0.0.1:$KAFKA_PORT (pid $pid)"
            return 0
        fi
        warn "existing broker pid $pid did not become ready; restarting it"
        show_broker_log 40
        terminate "$pid" || die "could not stop broker pid $pid"
        rm -f "$PID_FILE"
    fi
    if port_open "$KAFKA_CONTROLLER_PORT"; then
        die "controller port 127.0.0.1:$KAFKA_CONTROLLER_PORT is already in use; set KAFKA_CONTROLLER_PORT"
    fi
    if [[ -n $KAFKA_SASL_SSL_PORT ]] && port_open "$KAFKA_SASL_SSL_PORT"; then
        die "SASL_SSL port 127.0.0.1:$KAFKA_SASL_SSL_PORT is already in use; set another KAFKA_SASL_SSL_PORT"
    fi
    if [[ -f $VERSION_FILE && $(head -n1 "$VERSION_FILE") != "$KAFKA_VER" ]]; then
        warn "$DATA_DIR was formatted by Kafka $(head -n1 "$VERSION_FILE"); starting Kafka $KAFKA_VER on it." \
             "Downgrades fail; if so, stop and 'rm -rf $BROKER_DIR'."
    fi

    if start_once; then
        return 0
    fi
    warn "start attempt 1 failed; retrying once..."
    sleep 2
    if port_open "$KAFKA_PORT" || port_open "$KAFKA_CONTROLLER_PORT"; then
        sleep 5
    fi
    start_once || die "Kafka did not start on 127.0.0.1:$KAFKA_PORT after 2 attempts; logs in $LOG_DIR"
}

cmd_stop() {
    mkdir -p "$BROKER_DIR"
    exec 8>"$BROKER_DIR/.lock"
    flock -w 300 8 || die "another kafka.sh is busy with $BROKER_DIR"
    local pid= found=0
    while pid=$(broker_pid); do
        found=1
        log "stopping broker pid $pid (SIGTERM, up to ${KAFKA_STOP_TIMEOUT}s)..."
        terminate "$pid" || die "broker pid $pid survived SIGKILL"
        rm -f "$PID_FILE"
    done
    rm -f "$PID_FILE"
    if (( ! found )); then
        if port_open "$KAFKA_PORT"; then
            warn "no broker started from $BROKER_DIR is running, but something listens on 127.0.0.1:$KAFKA_PORT; leaving it alone"
        else
            log "not running"
        fi
    fi
}

cmd_status() {
    local pid=
    pid=$(broker_pid) || pid=
    local can_probe=0
    if [[ -n ${PYTHON:-} ]] && "$PYTHON" -c 'import aiokafka' >/dev/null 2>&1; then
        can_probe=1
    else
        require_java
        if resolve_version nofetch; then can_probe=1; fi
    fi
    if (( can_probe )); then
        if port_open "$KAFKA_PORT" && probe; then
            log "running: Kafka answers on 127.0.0.1:$KAFKA_PORT${pid:+ (pid $pid)}${KAFKA_VER:+, jars $KAFKA_VER}, state $BROKER_DIR"
            return 0
        fi
    elif port_open "$KAFKA_PORT"; then
        log "127.0.0.1:$KAFKA_PORT is open but no jars are cached to verify it is Kafka (run: $0 fetch)"
        return 1
    fi
    if [[ -n $pid ]]; then
        log "not answering on 127.0.0.1:$KAFKA_PORT, but broker pid $pid is running (starting up or unhealthy; see $0 logs)"
    else
        log "not running"
    fi
    return 1
}

cmd_fetch() {
    require_java
    resolve_version
    log "Kafka $KAFKA_VER jars ready in $LIB"
}

cmd_logs() {
    local f=$LOG_DIR/server.log
    [[ -f $f ]] || die "no broker log yet at $f"
    if [[ ${1:-} == -f ]]; then
        exec tail -n 100 -F "$f"
    fi
    tail -n "${LINES_TO_SHOW:-200}" "$f"
}

# --------------------------------------------------------------- cluster ---

cluster_bootstrap() {
    local n out=
    for n in $(seq 1 "$CLUSTER_NODES"); do
        out+="${out:+,}127.0.0.1:$(node_port "$n")"
    done
    printf '%s' "$out"
}

cluster_lock() {
    mkdir -p "$CLUSTER_DIR" || die "cannot create $CLUSTER_DIR"
    exec 8>"$CLUSTER_DIR/.lock"
    flock -w 300 8 || die "another kafka.sh is busy with $CLUSTER_DIR (lock held for 5 min)"
}

require_node_number() {
    [[ ${1:-} =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= CLUSTER_NODES )) \
        || die "give a node number from 1 to $CLUSTER_NODES, got '${1:-}'"
}

# prepare_node <n>: launch node n unless it runs; LAUNCHED_PID is the pid to
# wait for, empty if the node already answers.
prepare_node() {
    local pid=
    select_node "$1"
    LAUNCHED_PID=
    pid=$(broker_pid) || pid=
    if [[ -n $pid ]]; then
        if port_open "$KAFKA_PORT" && probe; then
            log "already running on 127.0.0.1:$KAFKA_PORT (pid $pid)"
        else
            LAUNCHED_PID=$pid   # still starting (or waiting for a quorum): wait for it
        fi
        return 0
    fi
    if port_open "$KAFKA_PORT" || port_open "$KAFKA_CONTROLLER_PORT"; then
        die "127.0.0.1:$KAFKA_PORT or :$KAFKA_CONTROLLER_PORT is taken by a process not started from $BROKER_DIR; choose another KAFKA_CLUSTER_PORT"
    fi
    launch_broker
}

cmd_cluster_start() {
    require_java
    resolve_version
    cluster_lock
    local t0 n attempt
    local -a waiting=() failed=()
    local -A pids=()
    t0=$(now)
    # All nodes first: none becomes ready before two controllers elect a leader.
    for n in $(seq 1 "$CLUSTER_NODES"); do
        prepare_node "$n"
        if [[ -n $LAUNCHED_PID ]]; then
            pids[$n]=$LAUNCHED_PID
            waiting+=("$n")
        fi
    done
    for attempt in 1 2; do
        failed=()
        for n in "${waiting[@]}"; do
            select_node "$n"
            await_broker "${pids[$n]}" "$t0" || failed+=("$n")
        done
        (( ${#failed[@]} )) || break
        (( attempt == 1 )) || die "node(s) ${failed[*]} did not start after 2 attempts; logs in $CLUSTER_DIR/node-*/logs"
        PROG="kafka.sh[cluster $KAFKA_CLUSTER_PORT]"
        warn "node(s) ${failed[*]} did not start; retrying them once..."
        sleep 2
        for n in "${failed[@]}"; do
            select_node "$n"
            launch_broker
            pids[$n]=$LAUNCHED_PID
        done
        waiting=("${failed[@]}")
    done
    PROG="kafka.sh[cluster $KAFKA_CLUSTER_PORT]"
    log "cluster of $CLUSTER_NODES ready in $(( $(now) - t0 )) s; bootstrap $(cluster_bootstrap); state $CLUSTER_DIR"
}

cmd_cluster_stop() {
    cluster_lock
    local n pid deadline
    local -A pids=()
    # All at once: stopping them one by one would leave the last ones without a quorum to
    # acknowledge their controlled shutdown, waiting for the timeout.
    for n in $(seq 1 "$CLUSTER_NODES"); do
        select_node "$n"
        pid=$(broker_pid) || continue
        pids[$n]=$pid
        kill -TERM "$pid" 2>/dev/null || true
    done
    PROG="kafka.sh[cluster $KAFKA_CLUSTER_PORT]"
    if (( ${#pids[@]} == 0 )); then
        log "not running"
        return 0
    fi
    log "stopping node(s) ${!pids[*]} (SIGTERM, up to ${KAFKA_STOP_TIMEOUT}s)..."
    deadline=$(( $(now) + KAFKA_STOP_TIMEOUT ))
    for n in "${!pids[@]}"; do
        pid=${pids[$n]}
        while kill -0 "$pid" 2>/dev/null && (( $(now) < deadline )); do
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            warn "node $n (pid $pid) did not stop in time; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
        fi
        kill -0 "$pid" 2>/dev/null && die "node $n (pid $pid) survived SIGKILL"
        rm -f "$CLUSTER_DIR/node-$n/kafka.pid"
    done
    log "stopped"
}

# probe_summary: the brokers the last probe's Metadata answer listed.
probe_summary() {
    local out=$BROKER_DIR/probe.out ids
    if grep -q '^cluster_id=' "$out"; then
        grep '^cluster_id=' "$out" | tail -n1
        return
    fi
    ids=$(sed -nE 's/.*\(id: ([0-9]+) rack.*/\1/p' "$out" | sort -n | paste -sd, -)
    printf 'brokers=%s ids=%s' "$(printf '%s' "$ids" | tr ',' '\n' | grep -c .)" "$ids"
}

cmd_cluster_status() {
    local n pid up=0
    if [[ -z ${PYTHON:-} ]] || ! "$PYTHON" -c 'import aiokafka' >/dev/null 2>&1; then
        require_java
        resolve_version nofetch || die "no Kafka jars cached to probe with (run: $0 fetch)"
    fi
    for n in $(seq 1 "$CLUSTER_NODES"); do
        select_node "$n"
        pid=$(broker_pid) || pid=
        if port_open "$KAFKA_PORT" && probe; then
            log "running on 127.0.0.1:$KAFKA_PORT${pid:+ (pid $pid)}; $(probe_summary)"
            up=$((up + 1))
        elif [[ -n $pid ]]; then
            log "not answering on 127.0.0.1:$KAFKA_PORT, but pid $pid is running (starting, or no quorum)"
        else
            log "not running"
        fi
    done
    (( up == CLUSTER_NODES ))
}

cmd_cluster_leader() {
    local out=$CLUSTER_DIR/quorum.out leader
    require_java
    resolve_version nofetch || die "no Kafka jars cached (run: $0 fetch)"
    mkdir -p "$CLUSTER_DIR"
    timeout 60 "$JAVA" "${TOOL_JVM_OPTS[@]}" -cp "$LIB/*" -Dlog4j2.configurationFile="$TOOLS_LOG4J" \
        org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$(cluster_bootstrap)" \
        describe --status >"$out" 2>&1 8>&- 9>&- \
        || { cat "$out" >&2; die "MetadataQuorumCommand failed"; }
    leader=$(sed -nE 's/^LeaderId:[[:space:]]*([0-9]+).*/\1/p' "$out" | head -n1)
    [[ -n $leader ]] || { cat "$out" >&2; die "no LeaderId in the quorum description"; }
    printf '%s\n' "$leader"
}

cmd_cluster_kill() {
    require_node_number "${1:-}"
    cluster_lock
    local pid
    select_node "$1"
    pid=$(broker_pid) || die "node $1 is not running"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && die "node $1 (pid $pid) survived SIGKILL"
    rm -f "$PID_FILE"
    log "killed (SIGKILL, pid $pid)"
}

cmd_cluster_start_node() {
    require_node_number "${1:-}"
    require_java
    resolve_version
    cluster_lock
    local t0
    t0=$(now)
    prepare_node "$1"
    [[ -n $LAUNCHED_PID ]] || return 0
    if ! await_broker "$LAUNCHED_PID" "$t0"; then
        warn "start attempt 1 failed; retrying once..."
        sleep 2
        t0=$(now)
        launch_broker
        await_broker "$LAUNCHED_PID" "$t0" || die "node $1 did not start after 2 attempts; logs in $LOG_DIR"
    fi
}

cmd_cluster_stop_node() {
    require_node_number "${1:-}"
    cluster_lock
    local pid
    select_node "$1"
    pid=$(broker_pid) || { log "not running"; return 0; }
    log "stopping pid $pid (SIGTERM, up to ${KAFKA_STOP_TIMEOUT}s)..."
    terminate "$pid" || die "node $1 (pid $pid) survived SIGKILL"
    rm -f "$PID_FILE"
}

cmd_cluster() {
    local sub=${1:-}
    shift || true
    case $sub in
        start) cmd_cluster_start ;;
        stop) cmd_cluster_stop ;;
        status) cmd_cluster_status ;;
        leader) cmd_cluster_leader ;;
        bootstrap) cluster_bootstrap; echo ;;
        kill) cmd_cluster_kill "$@" ;;
        start-node) cmd_cluster_start_node "$@" ;;
        stop-node) cmd_cluster_stop_node "$@" ;;
        logs)
            require_node_number "${1:-}"
            select_node "$1"
            shift
            cmd_logs "$@"
            ;;
        *) usage >&2; exit 2 ;;
    esac
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

main() {
    local cmd=${1:-}
    shift || true
    case $cmd in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        fetch) cmd_fetch ;;
        logs) cmd_logs "$@" ;;
        cluster) cmd_cluster "$@" ;;
        -h|--help|help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"

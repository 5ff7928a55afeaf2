#!/bin/sh
# Start a one-node Apache Kafka (KRaft, combined broker+controller) from env:
#   KAFKA_NODE_ID          node.id (default 1)
#   KAFKA_DATA_DIR         server.properties and kafka-logs/ live here (a volume)
#   KAFKA_LISTEN_HOST      bind address of the client listener (default 0.0.0.0)
#   KAFKA_ADVERTISED_HOST  host name clients are told to use (default kafka, the service)
#   KAFKA_PORT             client (PLAINTEXT) port (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port, loopback only (default 9093)
#   KAFKA_CLUSTER_ID       22-char base64url id for the first format (default: random)
#   KAFKA_NUM_PARTITIONS   partitions of auto-created topics (default 1)
#   KAFKA_HEAP_OPTS        JVM heap flags (default -Xms256m -Xmx512m)
#   KAFKA_LIBS, KAFKA_LOG4J  jar folder and log4j2 config (image defaults)
# The storage is formatted once; later starts reuse kafka-logs/meta.properties.
set -eu

: "${KAFKA_NODE_ID:=1}"
: "${KAFKA_DATA_DIR:=/var/lib/kafka}"
: "${KAFKA_LISTEN_HOST:=0.0.0.0}"
: "${KAFKA_ADVERTISED_HOST:=kafka}"
: "${KAFKA_PORT:=9092}"
: "${KAFKA_CONTROLLER_PORT:=9093}"
: "${KAFKA_NUM_PARTITIONS:=1}"
: "${KAFKA_HEAP_OPTS:=-Xms256m -Xmx512m}"
: "${KAFKA_LIBS:=/opt/kafka/libs}"
: "${KAFKA_LOG4J:=/opt/kafka/config/log4j2.xml}"

CP="${KAFKA_LIBS}/*"
CONF="${KAFKA_DATA_DIR}/server.properties"
LOG_DIRS="${KAFKA_DATA_DIR}/kafka-logs"
mkdir -p "${LOG_DIRS}"

cat > "${CONF}" <<PROPS
# Written by kafka-entrypoint.sh on every start.
process.roles=broker,controller
node.id=${KAFKA_NODE_ID}
controller.quorum.voters=${KAFKA_NODE_ID}@127.0.0.1:${KAFKA_CONTROLLER_PORT}
listeners=PLAINTEXT://${KAFKA_LISTEN_HOST}:${KAFKA_PORT},CONTROLLER://127.0.0.1:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://${KAFKA_ADVERTISED_HOST}:${KAFKA_PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${LOG_DIRS}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=2097152
num.partitions=${KAFKA_NUM_PARTITIONS}
auto.create.topics.enable=true
PROPS

LOG4J_OPT="-Dlog4j2.configurationFile=${KAFKA_LOG4J}"

if [ ! -f "${LOG_DIRS}/meta.properties" ]; then
    cluster_id="${KAFKA_CLUSTER_ID:-}"
    if [ -z "${cluster_id}" ]; then
        cluster_id="$(java "${LOG4J_OPT}" -cp "${CP}" kafka.tools.StorageTool random-uuid)"
    fi
    echo "kafka-entrypoint: formatting ${LOG_DIRS} with cluster id ${cluster_id}" >&2
    # With controller.quorum.voters set, format WITHOUT --standalone.
    java "${LOG4J_OPT}" -cp "${CP}" kafka.tools.StorageTool format \
        -t "${cluster_id}" -c "${CONF}"
fi

# KAFKA_HEAP_OPTS is split into words on purpose.
# shellcheck disable=SC2086
exec java ${KAFKA_HEAP_OPTS} "${LOG4J_OPT}" -cp "${CP}" kafka.Kafka "${CONF}"

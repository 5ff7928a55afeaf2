# syntax=docker/dockerfile:1
# Apache Kafka (KRaft, one combined broker+controller) assembled from its Maven Central
# jars with the same POM the local test broker uses (streams/broker/pom.xml), so the
# container and the tests run the same Kafka version.
# Build from the repository root (compose does this with context ".."):
#   docker build -f docker/kafka.Dockerfile -t gravitas-kafka .
# The build context is trimmed by docker/kafka.Dockerfile.dockerignore (BuildKit).

# Must equal <kafka.version> in streams/broker/pom.xml and
# gravitas.streams.broker.KAFKA_VERSION (tests/test_docker_compose.py checks both).
ARG KAFKA_VERSION=4.1.1

# ---- stage 1: resolve the runtime jars ------------------------------------------------
FROM maven:3.9-eclipse-temurin-17 AS jars
ARG KAFKA_VERSION
WORKDIR /build
COPY streams/broker/pom.xml pom.xml
RUN --mount=type=cache,target=/root/.m2 \
    mvn -B -q -f pom.xml \
        org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory=/opt/kafka/libs \
    && test -f "/opt/kafka/libs/kafka_2.13-${KAFKA_VERSION}.jar"

# ---- stage 2: the broker --------------------------------------------------------------
FROM eclipse-temurin:17-jre AS kafka
ARG KAFKA_VERSION
LABEL org.opencontainers.image.title="gravitas-kafka" \
      org.apache.kafka.version="${KAFKA_VERSION}"

COPY --from=jars /opt/kafka/libs /opt/kafka/libs
COPY docker/kafka-log4j2.xml /opt/kafka/config/log4j2.xml
COPY --chmod=0755 docker/kafka-entrypoint.sh /usr/local/bin/kafka-entrypoint.sh

RUN groupadd --gid 10002 kafka \
    && useradd --uid 10002 --gid 10002 --no-create-home --home-dir /var/lib/kafka \
       --shell /usr/sbin/nologin kafka \
    && mkdir -p /var/lib/kafka \
    && chown kafka:kafka /var/lib/kafka

ENV KAFKA_DATA_DIR=/var/lib/kafka \
    KAFKA_NODE_ID=1 \
    KAFKA_ADVERTISED_HOST=kafka \
    KAFKA_PORT=9092 \
    KAFKA_CONTROLLER_PORT=9093 \
    KAFKA_HEAP_OPTS="-Xms256m -Xmx512m"

USER kafka
WORKDIR /var/lib/kafka
VOLUME ["/var/lib/kafka"]
EXPOSE 9092

# The client listener accepts connections (bash's /dev/tcp; the JRE image has no nc).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=6 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${KAFKA_PORT:-9092}"]

ENTRYPOINT ["/usr/local/bin/kafka-entrypoint.sh"]

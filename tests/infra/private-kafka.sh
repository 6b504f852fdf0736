#!/usr/bin/env bash
# A throw-away single-node KRaft broker for tests that must stop and restart
# a broker without disturbing the shared one (e.g. collector recovery).
# Usage: private-kafka.sh start DIR PORT CONTROLLER_PORT [SASL_PORT]
#          formats DIR once, waits until ready; with SASL_PORT also a
#          SASL_PLAINTEXT listener with PLAIN and SCRAM-SHA-256 users
#          alice/alice-secret (and admin/admin-secret for PLAIN)
#        private-kafka.sh start-tls DIR PORT CONTROLLER_PORT SSL_PORT SASL_SSL_PORT
#          as start, plus TLS listeners with certificates made by
#          tls-certs.sh in DIR/tls: SSL requires a client certificate
#          (mTLS), SASL_SSL takes PLAIN alice/alice-secret over TLS
#        private-kafka.sh kill DIR                          (SIGKILL, like a crash)
#        PRIVATE_KAFKA_AUTHORIZER=1 in the environment of start turns on
#          KRaft's ACL authorizer: PLAINTEXT clients (ANONYMOUS) and admin
#          are super users, everyone else (alice) needs ACLs
#          (kafka-run-class.sh org.apache.kafka.tools.AclCommand)
# Needs the jars installed by install.sh.
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$SRC/common.sh"
cmd="${1:?start|start-tls|kill}"; dir="${2:?DIR}"
cp="$LAGWATCH_KAFKA_HOME/libs/*"
case "$cmd" in
start|start-tls)
    port="${3:?PORT}"; cport="${4:?CONTROLLER_PORT}"; sport=""
    [[ "$cmd" == start ]] && sport="${5:-}"
    mkdir -p "$dir/data" "$dir/logs"
    listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
    advertised="PLAINTEXT://127.0.0.1:$port"
    sasl=""
    tls=""
    if [[ "$cmd" == start-tls ]]; then
        tport="${5:?SSL_PORT}"; stport="${6:?SASL_SSL_PORT}"
        "$SRC/tls-certs.sh" "$dir/tls"
        listeners="$listeners,SSL://127.0.0.1:$tport,SASL_SSL://127.0.0.1:$stport"
        advertised="$advertised,SSL://127.0.0.1:$tport,SASL_SSL://127.0.0.1:$stport"
        tls="ssl.keystore.type=PEM
ssl.keystore.location=$dir/tls/server.pem
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.pem
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.ssl.client.auth=none
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\"admin-secret\" user_alice=\"alice-secret\";"
    fi
    if [[ -n "$sport" ]]; then
        listeners="$listeners,SASL_PLAINTEXT://127.0.0.1:$sport"
        advertised="$advertised,SASL_PLAINTEXT://127.0.0.1:$sport"
        sasl="sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\"admin-secret\" user_alice=\"alice-secret\";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
    fi
    authorizer=""
    if [[ "${PRIVATE_KAFKA_AUTHORIZER:-0}" == 1 ]]; then
        authorizer="authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS;User:admin
allow.everyone.if.no.acl.found=false"
    fi
    cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL
$sasl
$tls
$authorizer
log.dirs=$dir/data
$LAGWATCH_KAFKA_TEST_PROPERTIES
num.network.threads=1
num.io.threads=2
PROPS
    if [[ ! -f "$dir/data/meta.properties" ]]; then
        # A cluster id may not start with "-": the storage tool would read it
        # as an option (one start in 64 failed that way).
        id="$(python3 -c 'import base64, itertools, uuid; print(next(i for i in (base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=") for _ in itertools.count()) if not i.startswith("-")))')"
        if ! java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$SRC/kafka-tools-log4j2.xml" -cp "$cp" \
            kafka.tools.StorageTool format --cluster-id "$id" --config "$dir/server.properties" \
            --add-scram 'SCRAM-SHA-256=[name=alice,password=alice-secret]' >"$dir/logs/format.log" 2>&1; then
            echo "private broker: storage format failed:" >&2
            tail -n 20 "$dir/logs/format.log" >&2
            exit 1
        fi
    fi
    nohup java -Xmx384m -XX:+UseG1GC -Dlog4j2.configurationFile="$SRC/kafka-log4j2.xml" -Dkafka.logs.dir="$dir/logs" \
        -cp "$cp" kafka.Kafka "$dir/server.properties" >"$dir/logs/stdout.log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 180); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then exit 0; fi
        if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then break; fi
        sleep 0.5
    done
    echo "private broker did not start on port $port; its output:" >&2
    tail -n 30 "$dir/logs/stdout.log" >&2 || true
    tail -n 30 "$dir/logs/server.log" >&2 || true
    exit 1
    ;;
kill)
    if [[ -s "$dir/pid" ]]; then kill -9 "$(cat "$dir/pid")" 2>/dev/null || true; rm -f "$dir/pid"; fi
    ;;
*) echo "usage: $0 start DIR PORT CONTROLLER_PORT [SASL_PORT] | start-tls DIR PORT CONTROLLER_PORT SSL_PORT SASL_SSL_PORT | kill DIR" >&2; exit 2 ;;
esac

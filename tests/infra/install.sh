#!/usr/bin/env bash
# Install (once, cached) everything the lagwatch integration tests need:
#   - mariadb-server (Debian package)          -> system
#   - Python venv with chdb-core + aiosmtpd    -> $LAGWATCH_CACHE_DIR/venv
#   - schemathesis (API fuzzing), same venv    -> $LAGWATCH_CACHE_DIR/venv
#   - Apache Kafka broker + tools jars         -> $LAGWATCH_CACHE_DIR/kafka-<version>/libs
#   - Jolokia JVM agent (optional)             -> $LAGWATCH_CACHE_DIR/jolokia
#   - Prometheus JMX exporter agent (optional) -> $LAGWATCH_CACHE_DIR/jmx-exporter
#   - chromium (Debian) + playwright-core (npm) -> system, $LAGWATCH_CACHE_DIR/node
# Idempotent: each piece is skipped when its completion marker exists.
# Usage: install.sh [--force]   (--force re-does the cached pieces)
# LAGWATCH_INSTALL_TEST_TOOLS=0 leaves out what only the tests use
# (schemathesis, chromium, playwright-core); deploy/quickstart.sh sets it.
# The default (1) installs everything, so CI and tests/run.sh are unchanged.
set -euo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

FORCE=0
for a in "$@"; do
    case "$a" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) lw_die "unknown argument: $a" ;;
    esac
done

mkdir -p "$LAGWATCH_CACHE_DIR"
# Serialise concurrent installs (e.g. two up.sh started at once).
exec 9>"$LAGWATCH_CACHE_DIR/.install.lock"
flock 9

START=$(lw_now)

# ---------------------------------------------------------------- MariaDB ---
install_mariadb() {
    if lw_mysqld_bin >/dev/null; then
        lw_log "mariadb: server binary present ($(lw_mysqld_bin)), skipping apt"
        return
    fi
    command -v apt-get >/dev/null || lw_die "mariadb-server missing and apt-get not available"
    lw_log "mariadb: installing mariadb-server via apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >/dev/null
    lw_mysqld_bin >/dev/null || lw_die "mariadb-server installed but no mariadbd/mysqld found"
    lw_log "mariadb: installed ($(lw_mysqld_bin))"
}

# ------------------------------------------------------------- Python venv ---
install_venv() {
    local want="$LAGWATCH_CHDB_SPEC $LAGWATCH_AIOSMTPD_SPEC $LAGWATCH_CH_CODECS_SPEC"
    if [[ $FORCE -eq 0 && -f "$LAGWATCH_VENV/.lagwatch-ok" && "$(cat "$LAGWATCH_VENV/.lagwatch-ok")" == "$want" ]]; then
        lw_log "venv: cached at $LAGWATCH_VENV"
        return
    fi
    local py="${LAGWATCH_PYTHON:-python3}"
    command -v "$py" >/dev/null || lw_die "python3 not found"
    if [[ ! -x "$LAGWATCH_VENV_PY" ]]; then
        lw_log "venv: creating $LAGWATCH_VENV with $($py --version 2>&1)"
        "$py" -m venv "$LAGWATCH_VENV"
    fi
    lw_log "venv: pip install $want"
    # shellcheck disable=SC2086 # the codecs spec is a list of requirements
    "$LAGWATCH_VENV_PY" -m pip install -q --disable-pip-version-check "$LAGWATCH_CHDB_SPEC" "$LAGWATCH_AIOSMTPD_SPEC" \
        $LAGWATCH_CH_CODECS_SPEC
    # Verify: the chdb-core wheel is imported as `chdb`.
    "$LAGWATCH_VENV_PY" - <<'PY'
from importlib.metadata import version
import chdb
import aiosmtpd
import lz4.block, lz4.frame  # noqa: F401,E401
from clickhouse_cityhash.cityhash import CityHash128  # noqa: F401
from chdb import session  # noqa: F401
r = chdb.query("SELECT version()", "CSV")
print("[lagwatch-infra] venv: chdb-core %s imports as `chdb`, engine %s, aiosmtpd %s"
      % (version("chdb-core"), r.bytes().decode().strip().strip('"'), version("aiosmtpd")))
PY
    printf '%s' "$want" >"$LAGWATCH_VENV/.lagwatch-ok"
}

# ------------------------------------------------------------ schemathesis ---
# API fuzzing for tests/api/schemathesis.sh, in the same venv, with its own
# completion marker (so a changed version re-installs only this piece).
: "${LAGWATCH_SCHEMATHESIS_SPEC:=schemathesis==4.32.5}"
install_schemathesis() {
    local marker="$LAGWATCH_VENV/.schemathesis-ok"
    if [[ $FORCE -eq 0 && -f "$marker" && "$(cat "$marker")" == "$LAGWATCH_SCHEMATHESIS_SPEC" ]]; then
        lw_log "schemathesis: cached in $LAGWATCH_VENV"
        return
    fi
    lw_log "schemathesis: pip install $LAGWATCH_SCHEMATHESIS_SPEC"
    "$LAGWATCH_VENV_PY" -m pip install -q --disable-pip-version-check "$LAGWATCH_SCHEMATHESIS_SPEC"
    "$LAGWATCH_VENV/bin/schemathesis" --version >&2 || lw_die "schemathesis installed but does not run"
    printf '%s' "$LAGWATCH_SCHEMATHESIS_SPEC" >"$marker"
}

# ------------------------------------------------------------- Kafka jars ---
install_kafka() {
    if [[ $FORCE -eq 0 && -f "$LAGWATCH_KAFKA_HOME/.lagwatch-ok" \
          && "$(cat "$LAGWATCH_KAFKA_HOME/.lagwatch-ok")" == "$LAGWATCH_KAFKA_STAMP" ]]; then
        lw_log "kafka: cached at $LAGWATCH_KAFKA_HOME"
        return
    fi
    command -v mvn >/dev/null || lw_die "mvn (Maven) not found"
    command -v java >/dev/null || lw_die "java not found"
    local v="$LAGWATCH_KAFKA_VERSION" work
    work="$(mktemp -d "$LAGWATCH_CACHE_DIR/.kafka-build.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" RETURN
    cat >"$work/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by lagwatch tests/infra/install.sh: resolves the Kafka broker + tools runtime classpath. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>lagwatch.testinfra</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$v</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$v</version>
    </dependency>
    <!-- logging backend: slf4j 2 -> log4j2, configured by tests/infra/kafka-log4j2.xml.
         slf4j-api is pinned to 2.x explicitly: transitive deps would otherwise pick 1.7.x,
         which cannot bind to log4j-slf4j2-impl. -->
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>$LAGWATCH_SLF4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId>
      <version>$LAGWATCH_LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$LAGWATCH_LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-1.2-api</artifactId>
      <version>$LAGWATCH_LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
    lw_log "kafka: resolving org.apache.kafka:kafka_2.13:$v + kafka-tools:$v from Maven Central (repo $LAGWATCH_M2_REPO)"
    # shellcheck disable=SC2086
    if ! mvn -B -q -Dstyle.color=never ${LAGWATCH_MAVEN_OPTS:-} -f "$work/pom.xml" -Dmaven.repo.local="$LAGWATCH_M2_REPO" \
            "$LAGWATCH_MAVEN_DEP_PLUGIN:copy-dependencies" \
            -DincludeScope=runtime -DoutputDirectory="$work/libs" >"$work/mvn.log" 2>&1; then
        tail -n 40 "$work/mvn.log" >&2
        lw_die "kafka: maven resolution failed (see above)"
    fi
    # Drop any competing slf4j binding / log4j1 implementation that might sneak in.
    rm -f "$work"/libs/slf4j-reload4j-*.jar "$work"/libs/slf4j-log4j12-*.jar "$work"/libs/reload4j-*.jar \
          "$work"/libs/logback-classic-*.jar "$work"/libs/slf4j-simple-*.jar "$work"/libs/slf4j-nop-*.jar
    local need
    for need in "kafka_2.13-$v.jar" "kafka-tools-$v.jar" "kafka-clients-$v.jar" "log4j-core-$LAGWATCH_LOG4J_VERSION.jar" "slf4j-api-$LAGWATCH_SLF4J_VERSION.jar"; do
        [[ -f "$work/libs/$need" ]] || lw_die "kafka: $need missing after resolution"
    done
    rm -rf "$LAGWATCH_KAFKA_HOME.tmp"
    mkdir -p "$LAGWATCH_KAFKA_HOME.tmp"
    mv "$work/libs" "$LAGWATCH_KAFKA_HOME.tmp/libs"
    cp "$work/pom.xml" "$LAGWATCH_KAFKA_HOME.tmp/pom.xml"
    printf '%s' "$LAGWATCH_KAFKA_STAMP" >"$LAGWATCH_KAFKA_HOME.tmp/.lagwatch-ok"
    rm -rf "$LAGWATCH_KAFKA_HOME"
    mv "$LAGWATCH_KAFKA_HOME.tmp" "$LAGWATCH_KAFKA_HOME"
    lw_log "kafka: $(find "$LAGWATCH_KAFKA_HOME/libs" -name '*.jar' | wc -l) jars in $LAGWATCH_KAFKA_HOME/libs"
}

# ------------------------------------------------------- broker JVM agents ---
# install_agent NAME ARTIFACT JAR FAILED_MARKER WITHOUT: copies the Maven
# ARTIFACT (group:artifact:version:jar[:classifier]) next to JAR. Optional:
# a failed resolution leaves FAILED_MARKER (not retried without --force)
# and the broker runs WITHOUT the agent.
install_agent() {
    local name="$1" artifact="$2" jar="$3" failed="$4" without="$5" dir out
    if [[ $FORCE -eq 0 && -f "$jar" ]]; then
        lw_log "$name: cached at $jar"
        return
    fi
    if [[ $FORCE -eq 0 && -f "$failed" ]]; then
        lw_warn "$name: $artifact previously failed to resolve; continuing without it (install.sh --force retries)"
        return
    fi
    dir="$(dirname "$jar")"
    mkdir -p "$dir"
    rm -f "$failed"
    lw_log "$name: resolving $artifact"
    # shellcheck disable=SC2086
    if out="$(mvn -B -q -Dstyle.color=never ${LAGWATCH_MAVEN_OPTS:-} -Dmaven.repo.local="$LAGWATCH_M2_REPO" "$LAGWATCH_MAVEN_DEP_PLUGIN:copy" \
            -Dartifact="$artifact" -DoutputDirectory="$dir" 2>&1)" && [[ -f "$jar" ]]; then
        lw_log "$name: OK ($jar)"
    else
        printf '%s\n' "$out" | tail -n 15 >&2
        echo "resolution failed at $(date -Is)" >"$failed"
        lw_warn "$name: could not resolve the agent; Kafka will run without $without"
    fi
}

install_jolokia() {
    install_agent jolokia "org.jolokia:jolokia-agent-jvm:$LAGWATCH_JOLOKIA_VERSION:jar:javaagent" \
        "$LAGWATCH_JOLOKIA_JAR" "$LAGWATCH_JOLOKIA_FAILED" Jolokia
}

# The Prometheus JMX exporter's Java agent, attached to the test broker next
# to Jolokia so the collector's exporter path is tested against the real
# thing. Without it the exporter tests fail saying so.
install_jmx_exporter() {
    install_agent jmx-exporter "io.prometheus.jmx:jmx_prometheus_javaagent:$LAGWATCH_JMX_EXPORTER_VERSION:jar" \
        "$LAGWATCH_JMX_EXPORTER_JAR" "$LAGWATCH_JMX_EXPORTER_FAILED" "the Prometheus JMX exporter"
}

# ------------------------------------------- web page test: Chromium + playwright-core ---
# tests/tests/web_ui.rs drives the team web page through tests/web/ui.mjs:
# Debian's Chromium (apt package `chromium`, /usr/bin/chromium) and the npm
# package playwright-core, pinned, in $LAGWATCH_CACHE_DIR/node. playwright-core
# never downloads a browser; the script passes executablePath.
: "${LAGWATCH_PLAYWRIGHT_VERSION:=1.65.1}"
LAGWATCH_NODE_DIR="$LAGWATCH_CACHE_DIR/node"
install_web_browser() {
    if [[ -x /usr/bin/chromium ]] && command -v node >/dev/null && command -v npm >/dev/null; then
        lw_log "web: chromium and node present, skipping apt"
    else
        command -v apt-get >/dev/null || lw_die "chromium or node missing and apt-get not available"
        local packages=(chromium)
        command -v node >/dev/null || packages+=(nodejs)
        command -v npm >/dev/null || packages+=(npm)
        lw_log "web: installing ${packages[*]} via apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
        [[ -x /usr/bin/chromium ]] || lw_die "web: chromium installed but /usr/bin/chromium is missing"
    fi
    local want="playwright-core@$LAGWATCH_PLAYWRIGHT_VERSION"
    if [[ $FORCE -eq 0 && -f "$LAGWATCH_NODE_DIR/.lagwatch-ok" && "$(cat "$LAGWATCH_NODE_DIR/.lagwatch-ok")" == "$want" ]]; then
        lw_log "web: $want cached in $LAGWATCH_NODE_DIR"
        return
    fi
    mkdir -p "$LAGWATCH_NODE_DIR"
    printf '{\n  "name": "lagwatch-web-test",\n  "private": true,\n  "dependencies": { "playwright-core": "%s" }\n}\n' \
        "$LAGWATCH_PLAYWRIGHT_VERSION" >"$LAGWATCH_NODE_DIR/package.json"
    lw_log "web: npm install $want into $LAGWATCH_NODE_DIR"
    (cd "$LAGWATCH_NODE_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --loglevel=error >/dev/null) \
        || lw_die "web: npm install $want failed"
    (cd "$LAGWATCH_NODE_DIR" && node -e 'const p = require("playwright-core/package.json"); if (p.version !== process.argv[1]) process.exit(1)' \
        "$LAGWATCH_PLAYWRIGHT_VERSION") || lw_die "web: playwright-core $LAGWATCH_PLAYWRIGHT_VERSION does not load from $LAGWATCH_NODE_DIR"
    lw_log "web: $want with $(/usr/bin/chromium --version 2>/dev/null | head -n 1), node $(node --version)"
    printf '%s' "$want" >"$LAGWATCH_NODE_DIR/.lagwatch-ok"
}
# ------------------------------------------- end of web page test block ---

install_mariadb
install_venv
install_kafka
install_jolokia
install_jmx_exporter
if [[ "${LAGWATCH_INSTALL_TEST_TOOLS:-1}" != 0 ]]; then
    install_schemathesis
    install_web_browser
else
    lw_log "test tools (schemathesis, chromium, playwright-core) skipped: LAGWATCH_INSTALL_TEST_TOOLS=0"
fi

lw_log "install complete in $(( $(lw_now) - START ))s (cache: $LAGWATCH_CACHE_DIR)"

#!/usr/bin/env bash
# Apache Kafka for the real-broker test suites: one KRaft node (broker and
# controller in one JVM) on loopback, from Maven Central.
#
#   scripts/kafka.sh start DIR [VERSION]   resolves the broker's jars (once;
#                                          cached in ~/.m2 and .cache/kafka),
#                                          formats a new broker in DIR (emptied
#                                          first), starts it, waits until it
#                                          answers and prints its bootstrap
#                                          address
#   scripts/kafka.sh restart DIR           stops it and starts it again on its
#                                          data and ports; prints the address
#   scripts/kafka.sh stop DIR              stops it (SIGTERM, then SIGKILL);
#                                          DIR keeps its data and log
#   scripts/kafka.sh topics DIR ARGS...    Kafka's own kafka-topics tool
#                                          (TopicCommand) against it
#
# VERSION defaults to $SESSIOND_KAFKA_VERSION, else 3.9.2.  Needs java (17)
# and mvn; without them, or without Maven Central, it fails and says so.
# DIR/pid holds the JVM's pid (for SIGSTOP/SIGCONT), DIR/broker.log its log.
#
# Besides its own listener the broker has a second one, PROXIED, that it
# advertises at another port, where nothing listens until a test starts a
# proxy there (tests/support/proxy.h): a client bootstrapped through that
# proxy is told to reach the broker through it for every connection, so
# the test can cut that client alone off the network.  DIR/proxied holds
# "ADVERTISED_PORT LISTENER_PORT"; the advertised port lies below the
# kernel's ephemeral range, so no client connection takes it meanwhile.
#
# A third listener, SASL, takes SASL_PLAINTEXT with SCRAM-SHA-512 (the user
# made at format time) and PLAIN for the same user and password: DIR/sasl
# holds "HOST:PORT USER PASSWORD" (a test credential, nothing else uses
# it).  librdkafka before 2.6.1 (Debian 12 has 2.0.2) cannot do SCRAM with
# Kafka 4 (its issue 4895): PLAIN is there for that.  The broker creates no topic on
# first use, as production clusters often run: each suite creates its own.
#
# Two more take TLS, with a test PKI that start makes in DIR/tls (openssl,
# EC P-256 keys, a fraction of a second; every password there is a test
# credential, nothing else uses it):
#   SASL_SSL  SASL over TLS, SCRAM-SHA-512 and PLAIN for the user of SASL:
#             DIR/sasl_ssl holds "HOST:PORT USER PASSWORD"
#   MTLS      TLS with a client certificate required (ssl.client.auth):
#             DIR/mtls holds "HOST:PORT"
#   DIR/tls/ca.pem           the CA that signed the broker's certificate (for
#                            127.0.0.1 and localhost: subjectAltName
#                            IP:127.0.0.1, DNS:localhost) and the clients'
#   DIR/tls/client.pem       a client certificate (CN=sessiond-client) ...
#   DIR/tls/client.key       ... and its key, encrypted (PKCS#8, AES-256) with
#                            the passphrase in DIR/tls/client.key.pass
#   DIR/tls/client.p12       the two in a PKCS#12 keystore, its password the
#                            same passphrase (librdkafka's ssl.keystore.*)
#   DIR/tls/expired.pem      a client certificate of the same CA and key
#                            whose validity ended in 2021: MTLS refuses it
#   DIR/tls/other-ca.pem     an unrelated CA, which signed nothing the broker
#                            shows: a client trusting it alone refuses the broker
# The broker's own keystore (DIR/tls/broker.p12, PKCS12) and its trust of
# ca.pem (PEM) are in server.properties; both Kafka 3.9 and 4.x read them.
set -euo pipefail
cmd=${1:-}
dir=${2:-}
version=${3:-${SESSIOND_KAFKA_VERSION:-3.9.2}}
root=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "kafka.sh: $*" >&2; exit 1; }

# The broker's classpath: kafka_2.13 and its dependencies, as Maven resolves them.
resolve() {
  local lib=$root/.cache/kafka/$version/lib
  command -v java >/dev/null || die "java is needed to run Apache Kafka (OpenJDK 17: apt-get install openjdk-17-jre-headless)"
  if [ ! -f "$lib/.complete" ]; then
    command -v mvn >/dev/null || die "mvn is needed to fetch Apache Kafka from Maven Central (apt-get install maven)"
    rm -rf "$lib"
    mkdir -p "$lib"
    if ! mvn -q -B -f "$root/tests/kafka/pom.xml" dependency:copy-dependencies \
           -Dkafka.version="$version" -DoutputDirectory="$lib" >"$lib/../mvn.log" 2>&1; then
      cat "$lib/../mvn.log" >&2
      die "cannot resolve org.apache.kafka:kafka_2.13:$version from Maven Central (log above)"
    fi
    ls "$lib"/kafka_2.13-"$version".jar >/dev/null 2>&1 || die "Maven gave no kafka_2.13-$version.jar"
    touch "$lib/.complete"
  fi
  classpath=$(printf '%s:' "$lib"/*.jar)
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A free port below the ephemeral range (which starts at 32768 by default).
free_fixed_port() {
  /usr/bin/python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(1000):
    port = random.randrange(20000, min(low, 32768))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
PY
}

# The test PKI of the TLS listeners, in $dir/tls (see the header).  EC
# keys, so that making them costs next to nothing at each start.
keystore_pass=sessiond-keystore-secret
make_tls() {
  local t=$dir/tls ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) log=$dir/tls/openssl.log rc
  mkdir -p "$t"
  # set -e inside a subshell whose status is tested is ignored: test it after.
  set +e
  (
    set -e
    cd "$t"
    echo sessiond-key-passphrase >client.key.pass
    # The CAs: self-signed, a CA's extensions (openssl req's default v3_ca).
    openssl req -x509 "${ec[@]}" -nodes -keyout ca.key -out ca.pem -days 3650 \
      -subj "/CN=sessiond test CA"
    openssl req -x509 "${ec[@]}" -nodes -keyout other-ca.key -out other-ca.pem -days 3650 \
      -subj "/CN=sessiond other test CA"
    rm other-ca.key # it signs nothing
    # The broker: the names clients reach it by, in its keystore with the CA.
    openssl req "${ec[@]}" -nodes -keyout broker.key -out broker.csr -subj "/CN=localhost"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile broker.ext -out broker.pem
    openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker \
      -passout "pass:$keystore_pass" -out broker.p12
    # The client: its key encrypted, so that a test can look for the
    # passphrase (ssl.key.password) wherever sessiond writes.
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-256-cbc \
      -pass file:client.key.pass -out client.key
    openssl req -new -key client.key -passin file:client.key.pass -out client.csr \
      -subj "/CN=sessiond-client"
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out client.pem
    openssl pkcs12 -export -in client.pem -inkey client.key -passin file:client.key.pass \
      -certfile ca.pem -name client -passout "pass:$(cat client.key.pass)" -out client.p12
    # The expired one: openssl x509 -req of OpenSSL 3.0 cannot date a
    # certificate in the past, openssl ca can.
    mkdir -p ca.d
    : >ca.d/index.txt
    cat >ca.d/ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = $t/ca.d/index.txt
new_certs_dir = $t/ca.d
serial = $t/ca.d/serial
default_md = sha256
policy = any
x509_extensions = client
unique_subject = no
[any]
commonName = supplied
[client]
extendedKeyUsage = clientAuth
CNF
    echo 1000 >ca.d/serial
    openssl ca -batch -config ca.d/ca.cnf -cert ca.pem -keyfile ca.key -notext \
      -startdate 20200101000000Z -enddate 20210101000000Z -in client.csr -out expired.pem
    rm -rf ca.d ./*.csr ./*.ext ca.srl
  ) >"$log" 2>&1
  rc=$?
  set -e
  [ "$rc" -eq 0 ] || die "cannot make the test certificates in $t: $(tail -5 "$log")"
}

# Settings for a test broker.  Against the defaults: one replica of the
# internal topics, few partitions for them (50 would each be created at
# first use), no delay before a group's first rebalance, session timeouts
# down to 1 s allowed (the crash tests kill members and wait one out), and
# timed-out transactions looked for every second instead of every ten.
configure() {
  local port ctl proxied advertised sasl sasl_ssl mtls
  port=$(free_port)
  ctl=$(free_port)
  proxied=$(free_port)
  sasl=$(free_port)
  sasl_ssl=$(free_port)
  mtls=$(free_port)
  advertised=$(free_fixed_port)
  [ -n "$advertised" ] || die "no free port below the ephemeral range for the PROXIED listener"
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctl
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctl,PROXIED://127.0.0.1:$proxied,SASL://127.0.0.1:$sasl,SASL_SSL://127.0.0.1:$sasl_ssl,MTLS://127.0.0.1:$mtls
advertised.listeners=PLAINTEXT://127.0.0.1:$port,PROXIED://127.0.0.1:$advertised,SASL://127.0.0.1:$sasl,SASL_SSL://127.0.0.1:$sasl_ssl,MTLS://127.0.0.1:$mtls
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PROXIED:PLAINTEXT,SASL:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_sessiond="sessiond-test-secret";
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_sessiond="sessiond-test-secret";
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/tls/broker.p12
ssl.keystore.password=$keystore_pass
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.pem
listener.name.mtls.ssl.client.auth=required
log.dirs=$dir/data
num.partitions=4
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
log.segment.bytes=16777216
EOF
  echo "127.0.0.1:$port" >"$dir/bootstrap"
  echo "$advertised $proxied" >"$dir/proxied"
  echo "127.0.0.1:$sasl sessiond sessiond-test-secret" >"$dir/sasl"
  echo "127.0.0.1:$sasl_ssl sessiond sessiond-test-secret" >"$dir/sasl_ssl"
  echo "127.0.0.1:$mtls" >"$dir/mtls"
  local id
  id=$(java -cp "$classpath" kafka.tools.StorageTool random-uuid 2>>"$dir/broker.log") ||
    die "kafka.tools.StorageTool random-uuid failed: $(tail -5 "$dir/broker.log")"
  java -cp "$classpath" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" \
    --add-scram 'SCRAM-SHA-512=[name="sessiond",password="sessiond-test-secret"]' \
    >>"$dir/broker.log" 2>&1 || die "cannot format $dir: $(tail -5 "$dir/broker.log")"
}

# Starts the broker configured in $dir.
launch() {
  command -v kcat >/dev/null || die "kcat is needed to see the broker answer (scripts/deps.sh installs it)"
  local bootstrap
  bootstrap=$(cat "$dir/bootstrap")
  # A small heap, one GC thread and the quick JIT: two cores run the tests too.
  java -Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    -cp "$classpath" kafka.Kafka "$dir/server.properties" >>"$dir/broker.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 600); do # 60 s
    if kcat -b "$bootstrap" -L -m 5 2>/dev/null | grep -q '1 brokers'; then
      echo "$bootstrap"
      return
    fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "kafka.sh: Apache Kafka $version did not answer on $bootstrap; the end of its log:" >&2
  tail -30 "$dir/broker.log" >&2
  stop
  exit 1
}

stop() {
  [ -f "$dir/pid" ] || return 0
  local pid
  pid=$(cat "$dir/pid")
  kill -CONT "$pid" 2>/dev/null || true # a stopped JVM cannot act on SIGTERM
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

[ -n "$dir" ] || die "usage: scripts/kafka.sh start|restart|stop|topics DIR [VERSION|ARGS...]"
case $cmd in
start)
  [ -d "$dir" ] && stop
  rm -rf "$dir"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  resolve
  make_tls
  configure
  echo "$version" >"$dir/version"
  launch
  ;;
restart)
  [ -f "$dir/server.properties" ] || die "$dir holds no broker: use start"
  dir=$(cd "$dir" && pwd)
  version=$(cat "$dir/version")
  resolve
  stop
  launch
  ;;
stop) stop ;;
topics)
  version=$(cat "$dir/version")
  resolve
  shift 2
  exec java -cp "$classpath" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$(cat "$dir/bootstrap")" "$@"
  ;;
*) die "usage: scripts/kafka.sh start|restart|stop|topics DIR [VERSION|ARGS...]" ;;
esac

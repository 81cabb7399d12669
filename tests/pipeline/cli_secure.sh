#!/usr/bin/env bash
# sessiond on a secured Apache Kafka: the ctest fixture broker's SASL_SSL
# and MTLS listeners and its test PKI (scripts/kafka.sh, DIR/tls).  Every
# setting of TLS and SASL, secrets included, goes in environment twins
# (SESSIOND_X_*), none on a command line.
#   SASL_SSL: publish; run exactly-once into SQLite until the changes are
#     out; tail them; DELETE through the HTTP API (its own producer);
#     replay into a fresh store, which must equal the live one.
#   MTLS: publish, run, tail with the client certificate and its encrypted
#     key (ssl.key.password), and publish with the PKCS#12 keystore.
#   Nothing written anywhere (stdout, stderr and logs of every command,
#     librdkafka's configuration dump at debug level, /metrics, the output
#     topic, run's command line) holds the password or the key passphrase.
#   A wrong password, a CA that did not sign the broker's certificate, a
#     host name the certificate does not hold, an expired client
#     certificate and a wrong key passphrase each stop run, replay, publish
#     and tail with exit 1, one message saying which, within the default
#     --startup-timeout (30 s), never showing a secret.
# SCRAM-SHA-512 on Kafka 3; PLAIN on Kafka 4, which refuses librdkafka
# 2.0.2's SCRAM (README, "SCRAM and Kafka 4").
# usage: cli_secure.sh SESSIOND
set -uo pipefail
bin=$1
kafka_sh=${SESSIOND_TEST_KAFKA_SH:?names scripts/kafka.sh}
kafka_dir=${SESSIOND_TEST_KAFKA_DIR:?names the broker the ctest fixture kafka.start started}
tls=$kafka_dir/tls
for f in sasl_ssl mtls tls/ca.pem tls/client.pem tls/client.key tls/client.key.pass \
         tls/client.p12 tls/expired.pem tls/other-ca.pem; do
  [ -s "$kafka_dir/$f" ] || { echo "cli_secure: $kafka_dir/$f is missing: a broker scripts/kafka.sh started before its TLS listeners?"; exit 1; }
done
read -r sasl_addr user pass <"$kafka_dir/sasl_ssl"
read -r mtls_addr <"$kafka_dir/mtls"
key_pass=$(cat "$tls/client.key.pass")
bootstrap=$(cat "$kafka_dir/bootstrap")
mechanism=SCRAM-SHA-512
[ "${SESSIOND_KAFKA_VERSION%%.*}" -ge 4 ] 2>/dev/null && mechanism=PLAIN
bound=30 # seconds: the default --startup-timeout, which no command here overrides

tmp=$(mktemp -d)
out_dir=$tmp/out # every file a command of this test writes, grepped for secrets at the end
mkdir -p "$out_dir"
prefix="sec$$-$(date +%s)."
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null
      "$kafka_sh" topics "$kafka_dir" --delete --topic "${prefix//./\\.}.*" >/dev/null 2>&1
      rm -rf "$tmp"' EXIT
source "$(dirname "$0")/../support/check.sh"

say() { echo "== $*"; }
# expect NAME EXPECTED ACTUAL: check, and say so when it holds.
expect() {
  check "$@"
  [ "$2" == "$3" ] && echo "ok   $1"
  return 0
}
# The summary line of publish (librdkafka may warn before it, e.g. while a
# new broker loads its coordinators).
summary() { grep '^sessiond publish: ' "$1"; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# The two listeners' settings, as an operator's environment file holds them.
sasl_env=(SESSIOND_X_SECURITY_PROTOCOL=SASL_SSL "SESSIOND_X_SASL_MECHANISMS=$mechanism"
          "SESSIOND_X_SASL_USERNAME=$user" "SESSIOND_X_SASL_PASSWORD=$pass"
          "SESSIOND_X_SSL_CA_LOCATION=$tls/ca.pem"
          SESSIOND_X_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM=https)
mtls_env=(SESSIOND_X_SECURITY_PROTOCOL=SSL "SESSIOND_X_SSL_CA_LOCATION=$tls/ca.pem"
          "SESSIOND_X_SSL_CERTIFICATE_LOCATION=$tls/client.pem"
          "SESSIOND_X_SSL_KEY_LOCATION=$tls/client.key" "SESSIOND_X_SSL_KEY_PASSWORD=$key_pass")

say "Kafka ${SESSIOND_KAFKA_VERSION:-?}: SASL_SSL at $sasl_addr ($mechanism, user $user), MTLS at $mtls_addr"
s_in=${prefix}s.events s_out=${prefix}s.changes s_dlq=${prefix}s.dlq
m_in=${prefix}m.events m_out=${prefix}m.changes m_dlq=${prefix}m.dlq
# Kafka's kafka-topics tool, a JVM each: side by side.
makers=()
for t in "$s_in:2" "$s_out:2" "$s_dlq:1" "$m_in:2" "$m_out:2" "$m_dlq:1"; do
  "$kafka_sh" topics "$kafka_dir" --create --topic "${t%:*}" --partitions "${t##*:}" \
    >"$tmp/topic-${t%:*}.log" 2>&1 &
  makers+=($!)
done
for m in "${makers[@]}"; do
  wait "$m" || { echo "cli_secure: cannot create a topic:"; cat "$tmp"/topic-*.log; exit 1; }
done

# Events dated now, so their sessions are visible: ID PREFIX FILE TASKS...
events() {
  /usr/bin/python3 - "$@" <<'PY'
import datetime, json, sys
tag, path = sys.argv[1], sys.argv[2]
now = datetime.datetime.now(datetime.timezone.utc)
def at(minutes): return (now - datetime.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
rows = [("c1", "task.created", "t1", "scenario_generation", 30), ("c2", "task.created", "t2", "image_analysis", 29),
        ("c3", "task.created", "t3", "video_generation", 28), ("x1", "task.completed", "t1", "scenario_generation", 20),
        ("x2", "task.failed", "t2", "image_analysis", 19)]
with open(path, "w") as f:
    for eid, kind, task, ttype, ago in rows:
        e = {"event_id": tag + eid, "event_type": kind, "task_id": tag + task, "task_type": ttype, "occurred_at": at(ago)}
        if kind == "task.created": e["short_id"] = tag + "s1"
        f.write(json.dumps(e) + "\n")
PY
}
# The changes of a tail as "task change_type|…", sorted.
changes_of() {
  /usr/bin/python3 -c 'import json,sys; print("|".join(sorted(c["session"]["task_id"]+" "+c["change_type"]+(" "+c["reason"] if c["reason"]=="manual" else "") for c in map(json.loads, sys.stdin))))' <"$1"
}
# run in the background: LOG ENV... -- ARGS...; sets run_pid and http.
start_run() {
  local log=$1 envs=()
  shift
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" "$bin" run "$@" --batch-ms 20ms --http-addr 127.0.0.1:0 >"$log" 2>&1 &
  run_pid=$!
  pids+=("$run_pid")
  for _ in $(seq 300); do # 30 s
    grep -q 'partitions assigned' "$log" && break
    kill -0 "$run_pid" 2>/dev/null || break
    sleep 0.1
  done
  http=$(grep -o 'msg=listening addr=[^ ]*' "$log" | head -1 | cut -d= -f3)
}
stop_run() { # SIGTERM, at most 15 s (then SIGKILL); returns run's exit status
  kill -TERM "$run_pid" 2>/dev/null
  for _ in $(seq 150); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$run_pid" 2>/dev/null
  wait "$run_pid"
}

# ---------------------------------------------------------------- SASL_SSL
say "SASL_SSL: publish, run --delivery exactly-once, tail, DELETE, replay"
events s- "$tmp/s.jsonl"
env "${sasl_env[@]}" "$bin" publish --brokers "$sasl_addr" --topic "$s_in" "$tmp/s.jsonl" \
  >"$out_dir/s-publish.out" 2>"$out_dir/s-publish.err"
expect "SASL_SSL publish: exit 0, five events" "0 sessiond publish: 5 events published to $s_in" \
  "$? $(summary "$out_dir/s-publish.err")"

start_run "$out_dir/s-run.log" "${sasl_env[@]}" SESSIOND_HTTP_TOKEN=tok3n -- \
  --brokers "$sasl_addr" --input-topics "$s_in" --output-topic "$s_out" --dlq-topic "$s_dlq" \
  --group "${prefix}s" --delivery exactly-once --transactional-id "${prefix}s-tx" \
  --store "sqlite:$tmp/s.db"
expect "SASL_SSL run: joined its group, HTTP up" "1 1" \
  "$(grep -c 'partitions assigned' "$out_dir/s-run.log" | awk '{print ($1 > 0)}') $([ -n "$http" ] && echo 1)"
tr '\0' ' ' <"/proc/$run_pid/cmdline" >"$out_dir/s-run.cmdline" 2>/dev/null

env "${sasl_env[@]}" "$bin" tail --brokers "$sasl_addr" --topic "$s_out" --from earliest --count 5 \
  --idle 30s >"$out_dir/s-tail.out" 2>"$out_dir/s-tail.err"
expect "SASL_SSL run + tail (read_committed): the five changes" \
  "s-t1 session.created|s-t1 session.status_changed|s-t2 session.created|s-t2 session.removed|s-t3 session.created" \
  "$(changes_of "$out_dir/s-tail.out")"
# The counter moves once the commit returned, a moment after tail may see it.
committed() {
  curl -s "http://$http/metrics" | tee "$out_dir/s-metrics.txt" |
    awk '/^sessiond_transactions_total\{outcome="committed"\}/ {print ($NF > 0)}'
}
for _ in $(seq 50); do [ "$(committed)" = 1 ] && break; sleep 0.1; done
expect "SASL_SSL run: exactly-once, transactions committed (/metrics)" 1 "$(committed)"
for _ in $(seq 100); do [ "$(curl -s "http://$http/readyz")" = '{"status":"ready"}' ] && break; sleep 0.1; done
expect "SASL_SSL run: ready" '{"status":"ready"}' "$(curl -s "http://$http/readyz")"

code=$(curl -s -o "$out_dir/s-delete.json" -w '%{http_code}' -X DELETE \
       -H 'Authorization: Bearer tok3n' "http://$http/api/v1/sessions/task/s-t3")
expect "SASL_SSL DELETE (the API's producer over SASL_SSL): 202" 202 "$code"
for _ in $(seq 100); do # 10 s
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$http/api/v1/sessions/task/s-t3")" = 404 ] && break
  sleep 0.1
done
expect "SASL_SSL DELETE: the session is gone" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://$http/api/v1/sessions/task/s-t3")"
env "${sasl_env[@]}" "$bin" tail --brokers "$sasl_addr" --topic "$s_out" --from earliest --count 6 \
  --idle 30s >"$out_dir/s-tail2.out" 2>"$out_dir/s-tail2.err"
expect "SASL_SSL tail: t3 removed, reason manual, follows" \
  "s-t1 session.created|s-t1 session.status_changed|s-t2 session.created|s-t2 session.removed|s-t3 session.created|s-t3 session.removed manual" \
  "$(changes_of "$out_dir/s-tail2.out")"
curl -s "http://$http/metrics" >"$out_dir/s-metrics2.txt"
"$bin" sessions --store "sqlite:$tmp/s.db" --short-id s-s1 >"$out_dir/s-sessions.json"
stop_run
expect "SASL_SSL run: SIGTERM, exit 0" 0 "$?"

# Replay, with librdkafka's own configuration dump (debug=conf) in its log.
env "${sasl_env[@]}" "$bin" replay --brokers "$sasl_addr" --input-topics "$s_in" \
  --store "sqlite:$tmp/s-replay.db" --from earliest --log-level debug -X debug=conf,security \
  >"$out_dir/s-replay.out" 2>"$out_dir/s-replay.err"
expect "SASL_SSL replay: exit 0, caught up" "0 1" "$? $(grep -c 'caught up' "$out_dir/s-replay.out" "$out_dir/s-replay.err" | awk -F: '{n += $2} END {print (n > 0)}')"
expect "SASL_SSL replay: librdkafka's configuration dump (debug=conf) shows sasl.password [redacted]" 1 \
  "$(grep -c 'sasl.password = \[redacted\]' "$out_dir/s-replay.err" | awk '{print ($1 > 0)}')"
"$bin" sessions --store "sqlite:$tmp/s-replay.db" --short-id s-s1 >"$out_dir/s-replay-sessions.json"
strip_ts() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("timestamp"); print(json.dumps(d, sort_keys=True))' "$1"; }
expect "SASL_SSL replay: the fresh store equals the live one (t1 completed)" \
  "$(strip_ts "$out_dir/s-sessions.json")" "$(strip_ts "$out_dir/s-replay-sessions.json")"
expect "SASL_SSL replay: t1 completed is all that is left of s1" "s-t1 completed" \
  "$(/usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(s["task_id"]+" "+s["status"] for s in d["sessions"]))' <"$out_dir/s-replay-sessions.json")"

# ---------------------------------------------------------------- MTLS
say "MTLS: publish, run, tail with the client certificate and its encrypted key; publish with a PKCS#12 keystore"
events m- "$tmp/m.jsonl"
env "${mtls_env[@]}" "$bin" publish --brokers "$mtls_addr" --topic "$m_in" "$tmp/m.jsonl" \
  >"$out_dir/m-publish.out" 2>"$out_dir/m-publish.err"
expect "MTLS publish: exit 0, five events" "0 sessiond publish: 5 events published to $m_in" \
  "$? $(summary "$out_dir/m-publish.err")"
start_run "$out_dir/m-run.log" "${mtls_env[@]}" -- --brokers "$mtls_addr" --input-topics "$m_in" \
  --output-topic "$m_out" --dlq-topic "$m_dlq" --group "${prefix}m" --store "sqlite:$tmp/m.db"
expect "MTLS run: joined its group" 1 "$(grep -c 'partitions assigned' "$out_dir/m-run.log" | awk '{print ($1 > 0)}')"
env "${mtls_env[@]}" "$bin" tail --brokers "$mtls_addr" --topic "$m_out" --from earliest --count 5 \
  --idle 30s >"$out_dir/m-tail.out" 2>"$out_dir/m-tail.err"
expect "MTLS run + tail: the five changes" \
  "m-t1 session.created|m-t1 session.status_changed|m-t2 session.created|m-t2 session.removed|m-t3 session.created" \
  "$(changes_of "$out_dir/m-tail.out")"
curl -s "http://$http/metrics" >"$out_dir/m-metrics.txt"
stop_run
expect "MTLS run: SIGTERM, exit 0" 0 "$?"
printf '{"event_id":"m-k1","event_type":"task.created","task_id":"m-t4","task_type":"scenario_generation","short_id":"m-s2","occurred_at":"%s"}\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$tmp/m2.jsonl"
env SESSIOND_X_SECURITY_PROTOCOL=SSL "SESSIOND_X_SSL_CA_LOCATION=$tls/ca.pem" \
  "SESSIOND_X_SSL_KEYSTORE_LOCATION=$tls/client.p12" "SESSIOND_X_SSL_KEYSTORE_PASSWORD=$key_pass" \
  "$bin" publish --brokers "$mtls_addr" --topic "$m_in" "$tmp/m2.jsonl" \
  >"$out_dir/m-p12.out" 2>"$out_dir/m-p12.err"
expect "MTLS publish with ssl.keystore.location (PKCS#12): exit 0" \
  "0 sessiond publish: 1 events published to $m_in" "$? $(summary "$out_dir/m-p12.err")"

# ---------------------------------------------------------------- failures
# fail CASE REGEXP WRONG ENV... -- BROKERS: each command stops with exit 1
# and one line matching REGEXP, within the bound, neither the secrets nor
# WRONG (a wrong secret given) in what it says.
fail() {
  local case=$1 regexp=$2 wrong=$3 envs=() brokers cmd args t0 ms rc
  shift 3
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  brokers=$2
  say "$case: run, replay, publish, tail stop at start-up"
  for cmd in run replay publish tail; do
    case $cmd in
      run) args=(--input-topics "$s_in" --output-topic "$s_out" --dlq-topic "$s_dlq" --group "${prefix}x"
                 --store "sqlite:$tmp/x.db" --http-addr off) ;;
      replay) args=(--input-topics "$s_in" --store "sqlite:$tmp/x.db" --from earliest) ;;
      publish) args=(--topic "$s_in" "$tmp/s.jsonl") ;;
      tail) args=(--topic "$s_out") ;;
    esac
    local log=$out_dir/fail-${case// /_}-$cmd.txt
    t0=$(date +%s%N)
    timeout $((bound + 30)) env "${envs[@]}" "$bin" "$cmd" --brokers "$brokers" "${args[@]}" >"$log" 2>&1
    rc=$?
    ms=$(ms_since "$t0")
    expect "$case: $cmd exits 1" 1 "$rc"
    expect "$case: $cmd stops within the ${bound} s bound (took $ms ms)" 1 "$((ms < bound * 1000))"
    expect "$case: $cmd says: /$regexp/" 1 "$(grep -cE "^sessiond $cmd: .*$regexp" "$log" | awk '{print ($1 > 0)}')"
    [ -n "$wrong" ] &&
      expect "$case: $cmd does not show the wrong secret" 0 "$(grep -cF -- "$wrong" "$log")"
    grep -E "^sessiond $cmd: " "$log" | head -1 | sed 's/^/     /'
  done
}
port=${sasl_addr##*:}
with() { # NAME=VALUE...: sasl_env with those replaced
  local e k
  for e in "${sasl_env[@]}"; do
    k=${e%%=*}
    printf '%s\n' "$@" | grep -q "^$k=" || echo "$e"
  done
  printf '%s\n' "$@"
}
mapfile -t env_wrong < <(with SESSIOND_X_SASL_PASSWORD=not-the-password-0x5e)
fail "wrong password" \
  "Kafka at $sasl_addr refused SASL authentication \(mechanism $mechanism, user $user\)" \
  not-the-password-0x5e "${env_wrong[@]}" -- "$sasl_addr"
mapfile -t env_other_ca < <(with "SESSIOND_X_SSL_CA_LOCATION=$tls/other-ca.pem")
fail "untrusted CA" \
  "TLS with Kafka at $sasl_addr failed: the certificate of broker $sasl_addr comes from the CA CN=sessiond test CA, which ssl.ca.location \(.*/other-ca.pem\) does not hold" \
  "" "${env_other_ca[@]}" -- "$sasl_addr"
# librdkafka checks the certificate against the name it was given for the
# broker: 127.1 is 127.0.0.1 to the resolver, but not a name the
# certificate holds (IP:127.0.0.1, DNS:localhost).
fail "host name mismatch" \
  "the certificate of broker 127\.1:$port is not for 127\.1 \(hostname mismatch; it names IP:127\.0\.0\.1, DNS:localhost\)" \
  "" "${sasl_env[@]}" -- "127.1:$port"
mapfile -t env_expired < <(printf '%s\n' "${mtls_env[@]}" | sed "s|^SESSIOND_X_SSL_CERTIFICATE_LOCATION=.*|SESSIOND_X_SSL_CERTIFICATE_LOCATION=$tls/expired.pem|")
fail "expired client certificate" \
  "the client certificate CN=sessiond-client of ssl.certificate.location \(.*/expired.pem\) expired at 2021-01-01T00:00:00Z" \
  "" "${env_expired[@]}" -- "$mtls_addr"
mapfile -t env_bad_key < <(printf '%s\n' "${mtls_env[@]}" | sed "s|^SESSIOND_X_SSL_KEY_PASSWORD=.*|SESSIOND_X_SSL_KEY_PASSWORD=not-the-passphrase-0x5e|")
fail "wrong key passphrase" \
  "cannot decrypt the client key .*/client.key with ssl.key.password: it is not that key's passphrase" \
  not-the-passphrase-0x5e "${env_bad_key[@]}" -- "$mtls_addr"

say "ssl.endpoint.identification.algorithm reaches librdkafka through its twin"
mapfile -t env_none < <(with SESSIOND_X_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM=none)
env "${env_none[@]}" "$bin" tail --brokers "127.1:$port" --topic "$s_out" --from earliest --count 1 \
  --idle 20s >"$out_dir/none-tail.out" 2>"$out_dir/none-tail.err"
expect "ssl.endpoint.identification.algorithm=none: 127.1 is accepted" "0 1" \
  "$? $(grep -c '"change_id"' "$out_dir/none-tail.out")"

# ---------------------------------------------------------------- secrets
say "no secret anywhere: $(ls "$out_dir" | wc -l) files of stdout, stderr, logs, /metrics, tail output, run's command line"
expect "the files exist and are not empty" 1 "$([ "$(cat "$out_dir"/* | wc -c)" -gt 1000 ] && echo 1)"
expect "the SASL password appears nowhere" "" "$(grep -rlF -- "$pass" "$out_dir")"
expect "the key passphrase appears nowhere" "" "$(grep -rlF -- "$key_pass" "$out_dir")"
expect "the broker's keystore password appears nowhere" "" "$(grep -rlF -- sessiond-keystore-secret "$out_dir")"
expect "/metrics answered (build_info)" 1 "$(grep -c '^sessiond_build_info{' "$out_dir/s-metrics.txt")"

finish cli_secure

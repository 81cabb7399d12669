"""How the MongoDB store meets the replies MongoDB gives under faults.

python3-mockupdb plays the server and answers each command as a scenario
says; tests/faults/fault_client applies one batch through the real store
(mongo-c-driver) and reports how each attempt ended.

    /usr/bin/python3 mongo_faults.py PATH/TO/fault_client
"""
import datetime
import json
import os
import socket
import subprocess
import sys
import threading
import time

from mockupdb import MockupDB

CLIENT = sys.argv[1]
PASSED = []
FAILED = []


def check(name, condition, detail=""):
    (PASSED if condition else FAILED).append(name)
    if not condition:
        print("FAIL %s %s" % (name, detail))


def start_server(ssl=False, **hello):
    # The limits a MongoDB 5.0 server announces.
    reply = dict(ismaster=True, isWritablePrimary=True, maxWireVersion=13,
                 minWireVersion=0, maxWriteBatchSize=100000,
                 maxMessageSizeBytes=48000000, maxBsonObjectSize=16777216, **hello)
    server = MockupDB(auto_ismaster=reply, ssl=ssl)
    server.autoresponds("hello", **reply)
    server.autoresponds("endSessions", ok=1)
    server.run()
    return server


def empty_cursor(request):
    ns = "%s.%s" % (request.doc["$db"], request.doc["find"])
    request.reply({"cursor": {"id": 0, "ns": ns, "firstBatch": []}, "ok": 1})


def open_scenario_sessions(request):
    """Reads back the batch's scenario sessions as open, so the store goes on
    to check the save markers for them."""
    ids = request.doc["filter"]["$or"][0]["_id"]["$in"]
    docs = [{"_id": t, "short_id": "s%d" % (int(t[1:]) % 3),
             "task_type": "scenario_generation", "removed": None,
             "created_at": datetime.datetime(2026, 3, 1, 11), "log": []}
            for t in ids if int(t[1:]) % 5 == 0]
    ns = "%s.%s" % (request.doc["$db"], request.doc["find"])
    request.reply({"cursor": {"id": 0, "ns": ns, "firstBatch": docs}, "ok": 1})


def answer_normally(request):
    if request.command_name == "find":
        if request.doc["find"] == "sessions":
            open_scenario_sessions(request)
        else:
            empty_cursor(request)
    else:
        request.ok(n=0, nModified=0)


def run_client(server, events, attempts, answer=None, uri=None, timeout=30):
    """Runs fault_client against uri (default: the server's), passing each
    request it sends to answer(request) (default: answer_normally).
    Returns the client's report lines and the requests it saw, as
    "command:collection"."""
    proc = subprocess.Popen([CLIENT, uri or server.uri, str(events), str(attempts)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    answer = answer or answer_normally
    names = []
    deadline = time.time() + timeout
    while server and proc.poll() is None and time.time() < deadline:
        try:
            request = server.receives(timeout=0.5)
        except AssertionError:  # nothing arrived yet
            continue
        names.append("%s:%s" % (request.command_name,
                                request.doc.get(request.command_name, "")))
        answer(request)
    out, err = proc.communicate(timeout=timeout)
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    if not lines:
        print("fault_client said nothing; stderr:\n" + err)
    return lines, names


def first_write_then(fault):
    """Applies fault to the first write to the sessions collection, then
    answers normally."""
    state = {"done": False}

    def answer(request):
        if (not state["done"] and request.command_name == "update"
                and request.doc["update"] == "sessions"):
            state["done"] = True
            fault(request)
        else:
            answer_normally(request)
    return answer


def scenario_round_trips():
    # The commands of a batch do not grow with its size.
    counts = {}
    for events in (10, 200, 1000):
        server = start_server()
        lines, names = run_client(server, events, 1)
        server.stop()
        ok = lines and lines[-1]["rc"] == "ok"
        check("round trips: batch of %d applies" % events, ok, lines)
        counts[events] = (lines[-1]["commands"] if ok else None, names)
    c10, c200, c1000 = counts[10][0], counts[200][0], counts[1000][0]
    check("round trips: the same for 10, 200 and 1000 events",
          c10 == c200 == c1000, counts)
    check("round trips: at most 5 per batch (saves, scenario creates, writes, read-back, check)",
          c1000 is not None and c1000 <= 5, counts[1000][1])
    print("round trips per batch: %s (%s)" % (c1000, ", ".join(counts[1000][1])))


def scenario_connection_dropped():
    server = start_server()
    lines, _ = run_client(server, 20, 2, first_write_then(lambda r: r.hangup()))
    server.stop()
    check("dropped connection: transient", lines and lines[0]["rc"] == "transient", lines)
    check("dropped connection: the retried batch applies",
          len(lines) == 2 and lines[1]["rc"] == "ok", lines)


def scenario_server_error(name, code, message):
    server = start_server()
    lines, _ = run_client(server, 20, 2, first_write_then(
        lambda r: r.command_err(code=code, errmsg=message)))
    server.stop()
    check("%s: transient" % name, lines and lines[0]["rc"] == "transient", lines)
    check("%s: message names the server and code" % name,
          lines and str(code) in lines[0]["message"] and "localhost" in lines[0]["message"],
          lines)
    check("%s: retry applies" % name, len(lines) == 2 and lines[1]["rc"] == "ok", lines)


def scenario_write_concern():
    server = start_server()
    lines, _ = run_client(server, 20, 2, first_write_then(lambda r: r.ok(
        n=1, nModified=1, writeConcernError={
            "code": 64, "codeName": "WriteConcernFailed",
            "errmsg": "waiting for replication timed out"})))
    server.stop()
    check("write concern error: transient", lines and lines[0]["rc"] == "transient", lines)
    check("write concern error: retry applies", len(lines) == 2 and lines[1]["rc"] == "ok",
          lines)


def scenario_duplicate_key():
    # Another writer inserted the document between our filter and our
    # upsert: the store runs the bulk again and it applies.
    server = start_server()
    lines, names = run_client(server, 20, 1, first_write_then(lambda r: r.ok(
        n=0, nModified=0, writeErrors=[{
            "index": 0, "code": 11000,
            "errmsg": "E11000 duplicate key error collection: faults.sessions"}])))
    server.stop()
    check("duplicate key on upsert: already there, not an error",
          lines and lines[0]["rc"] == "ok", lines)
    check("duplicate key on upsert: the bulk was sent again",
          names.count("update:sessions") == 2, names)


def scenario_auth_failure():
    server = start_server()
    server.autoresponds("saslStart", ok=0, code=18, codeName="AuthenticationFailed",
                        errmsg="Authentication failed.")
    host = "localhost:%d" % server.port
    lines, _ = run_client(server, 5, 1, uri="mongodb://alice:s3cret-pw@%s/?authSource=admin" % host)
    server.stop()
    msg = lines[0]["message"] if lines else ""
    check("authentication failure: fatal", lines and lines[0]["rc"] == "fatal", lines)
    check("authentication failure: names user and host", "alice" in msg and host in msg, msg)
    check("authentication failure: never the password", "s3cret-pw" not in msg, msg)


def scenario_selection_timeout():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    uri = "mongodb://127.0.0.1:%d/?serverSelectionTimeoutMS=500" % port
    lines, _ = run_client(None, 5, 1, uri=uri)
    check("no server: transient", lines and lines[0]["rc"] == "transient", lines)
    check("no server: names the hosts",
          lines and "127.0.0.1:%d" % port in lines[0]["message"], lines)


def scenario_slow_reply():
    # A reply slower than socketTimeoutMS: the driver gives up on the socket.
    server = start_server()

    def late_reply(request):
        try:
            request.ok(n=0)
        except OSError:  # the client hung up already
            pass

    def slow(request):  # replies later, while the next requests are answered
        threading.Timer(1.5, late_reply, [request]).start()
    lines, _ = run_client(server, 20, 2, first_write_then(slow),
                          uri=server.uri + "/?socketTimeoutMS=400")
    server.stop()
    check("slow reply: transient", lines and lines[0]["rc"] == "transient", lines)
    check("slow reply: retry applies", len(lines) == 2 and lines[1]["rc"] == "ok", lines)


def scenario_tls():
    # mockupdb speaks only TLS when asked, with its own self-signed
    # certificate (CN "server", no subjectAltName): the URI's TLS options
    # must reach the driver for a batch to apply at all.  A failed
    # handshake ends mockupdb's accept thread: one server per case.
    import mockupdb
    pem = os.path.join(os.path.dirname(mockupdb.__file__), "server.pem")
    cases = (("the URI's CA file, host names not checked", True,
              "tls=true&tlsCAFile=%s&tlsAllowInvalidHostnames=true" % pem, ""),
             ("an untrusted certificate", False, "tls=true", "certificate verify failed"),
             ("a host name the certificate does not name", False, "tls=true&tlsCAFile=" + pem,
              "hostname mismatch"),
             ("plain text to a TLS server", False, "", "calling hello"))
    for name, applies, options, why in cases:
        server = start_server(ssl=True)
        host = "localhost:%d" % server.port
        uri = "mongodb://alice:s3cret-pw@%s/?authSource=admin&serverSelectionTimeoutMS=1500&%s" % (
            host, options) if not applies else "mongodb://%s/?%s" % (host, options)
        lines, _ = run_client(server, 5, 1, uri=uri)
        server.stop()
        msg = lines[0]["message"] if lines else ""
        if applies:
            check("tls: %s: the batch applies" % name, lines and lines[-1]["rc"] == "ok", lines)
            continue
        # not applied, to be retried, saying why without the password
        check("tls: %s: not applied, retriable" % name, lines and lines[0]["rc"] == "transient", lines)
        check("tls: %s: names the host and why" % name, host in msg and why in msg, msg)
        check("tls: %s: never the password" % name, "s3cret-pw" not in msg, msg)
        print("tls: %s: %s" % (name, msg))


if __name__ == "__main__":
    scenario_round_trips()
    scenario_connection_dropped()
    scenario_server_error("NotWritablePrimary", 10107, "not primary")
    scenario_server_error("PrimarySteppedDown", 189, "primary stepped down")
    scenario_write_concern()
    scenario_duplicate_key()
    scenario_auth_failure()
    scenario_selection_timeout()
    scenario_slow_reply()
    scenario_tls()
    print("mongo_faults: %d passed, %d failed" % (len(PASSED), len(FAILED)))
    sys.exit(1 if FAILED else 0)

#define _POSIX_C_SOURCE 200809L
#include "recfx.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sessiond/session_json.h"
#include "sessiond/timefmt.h"

/* Short sessions: a killed member holds the group for session.timeout.ms
 * (the test broker allows 1 s and more; the mock's first join takes 3 s
 * and needs a longer session than that).  The mock answers an empty fetch
 * only after the full wait (SPEC §6); Apache Kafka answers as soon as
 * data arrives. */
static const char *const kafka_props[] = {
    "-X", "session.timeout.ms=4000", "-X", "heartbeat.interval.ms=300",
    "-X", "max.poll.interval.ms=10000", NULL};

static const char *keep(rfx_args_t *a, const char *s)
{
    size_t len = strlen(s) + 1;
    ck_assert_uint_le(a->used + len, sizeof a->buf);
    char *at = a->buf + a->used;
    memcpy(at, s, len);
    a->used += len;
    return at;
}

void rfx_args(rfx_args_t *a, const char *cmd, fx_kafka_t *kafka, const char *store_name,
              const char *const *extra)
{
    memset(a, 0, sizeof *a);
    size_t n = 0;
    char uri[512], database[128];
    fx_store_locate(store_name, uri, sizeof uri, database, sizeof database);
    a->argv[n++] = cmd;
    a->argv[n++] = "--brokers";
    a->argv[n++] = keep(a, kafka->bootstraps);
    a->argv[n++] = "--input-topics";
    a->argv[n++] = keep(a, kafka->input);
    a->argv[n++] = "--output-topic";
    a->argv[n++] = keep(a, kafka->output);
    a->argv[n++] = "--dlq-topic";
    a->argv[n++] = keep(a, kafka->dlq);
    a->argv[n++] = "--store";
    a->argv[n++] = keep(a, uri);
    if (database[0]) {
        a->argv[n++] = "--database";
        a->argv[n++] = keep(a, database);
        a->argv[n++] = "--write-concern";
        a->argv[n++] = "1"; /* jongodb is one node */
    }
    for (size_t i = 0; kafka_props[i]; i++)
        a->argv[n++] = kafka_props[i];
    if (!kafka->real) {
        a->argv[n++] = "-X";
        a->argv[n++] = "fetch.wait.max.ms=5";
    }
    if (strcmp(cmd, "run") == 0) {
        a->argv[n++] = "--group";
        a->argv[n++] = fx_kafka_name(kafka, "sessiond");
        a->argv[n++] = "--http-addr"; /* any free port: tests run side by side */
        a->argv[n++] = "127.0.0.1:0";
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        ck_assert_uint_lt(n, sizeof a->argv / sizeof a->argv[0] - 1);
        a->argv[n++] = extra[i];
    }
    a->argv[n] = NULL;
}

static int64_t children_now = PFX_NOW;

void rfx_set_now(int64_t now_ms) { children_now = now_ms; }

const char *const *rfx_env(const char *extra)
{
    static char now[64];
    static const char *env[3];
    char t[SD_TIME_BUFSZ];
    sd_time_format(children_now, t);
    snprintf(now, sizeof now, "SESSIOND_NOW=%s", t);
    env[0] = now;
    env[1] = extra;
    env[2] = NULL;
    return env;
}

int rfx_run(const rfx_args_t *a, const char *log_path, long timeout_s, char **log)
{
    fx_proc_t p;
    unlink(log_path);
    fx_proc_start(&p, a->argv, rfx_env(NULL), log_path);
    int ended = fx_proc_wait(&p, timeout_s * 1000);
    if (!ended) {
        fx_proc_kill(&p, SIGKILL);
        fx_proc_wait(&p, 10000);
    }
    *log = fx_read_file(log_path);
    ck_assert_msg(ended, "sessiond %s did not end within %ld s:\n%s", a->argv[0], timeout_s, *log);
    return fx_proc_exit_code(&p);
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *rfx_dump(sd_store_t *store, int64_t now_ms)
{
    sd_session_list_t all;
    sd_error_t err;
    ck_assert_msg(sd_store_list_all(store, now_ms, &all, &err) == SD_OK, "%s", err.message);
    char **lines = calloc(all.count + 1, sizeof *lines);
    size_t total = 1;
    for (size_t i = 0; i < all.count; i++) {
        lines[i] = sd_session_by_task_id_json(&all.items[i], now_ms);
        ck_assert_ptr_nonnull(lines[i]);
        total += strlen(lines[i]) + 1;
    }
    qsort(lines, all.count, sizeof *lines, by_string);
    char *dump = malloc(total);
    size_t used = 0;
    for (size_t i = 0; i < all.count; i++) {
        used += (size_t)sprintf(dump + used, "%s\n", lines[i]);
        free(lines[i]);
    }
    dump[used] = '\0';
    free(lines);
    sd_session_list_free(&all);
    return dump;
}

size_t rfx_wait_expired(fx_scenario_t *s, const sd_model_result_t *live, long ms)
{
    size_t expired = 0;
    for (int64_t deadline = sd_monotonic_ms() + ms; sd_monotonic_ms() < deadline;
         sd_sleep_ms(500)) {
        seen_t out = {0};
        sd_change_list_t changes = {0};
        pfx_read_topic(s->kafka, s->kafka->output, &out);
        pfx_parse_changes(&out, &changes);
        expired = 0;
        for (size_t i = 0; i < live->count; i++)
            for (size_t c = 0; c < changes.count; c++)
                if (changes.items[c].type == SD_CHANGE_EXPIRED &&
                    !strcmp(changes.items[c].session.task_id, live->sessions[i].task_id)) {
                    expired++;
                    break;
                }
        sd_change_list_free(&changes);
        pfx_seen_free(&out);
        if (expired == live->count)
            break;
    }
    return expired;
}

void rfx_path(char *out, size_t cap, const char *name)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(out, cap, "%s/sessiond-recovery-%d-%s", dir, (int)getpid(), name);
}

void rfx_member_start(rfx_member_t *m, fx_kafka_t *kafka, const char *name, int exactly_once,
                      const char *const *extra, const char *env)
{
    static int started;
    memset(m, 0, sizeof *m);
    char file[64];
    snprintf(file, sizeof file, "member-%d-%s.log", ++started, name);
    rfx_path(m->log, sizeof m->log, file);
    unlink(m->log);
    snprintf(m->txid, sizeof m->txid, "%s", fx_kafka_name(kafka, name));
    const char *args[32] = {"--batch-max", "5", "--batch-ms", "20ms"};
    size_t n = 4;
    if (exactly_once) {
        /* a member that died inside a transaction holds the output's
         * read_committed readers (and its partitions' next owner) until
         * the broker aborts it: 10 s instead of a minute */
        args[n++] = "-X";
        args[n++] = "transaction.timeout.ms=10000";
        args[n++] = "--delivery";
        args[n++] = "exactly-once";
        args[n++] = "--transactional-id";
        args[n++] = m->txid;
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        ck_assert_uint_lt(n, sizeof args / sizeof args[0] - 1);
        args[n++] = extra[i];
    }
    rfx_args_t a;
    rfx_args(&a, "run", kafka, "members", args);
    fx_proc_start(&m->proc, a.argv, rfx_env(env), m->log);
}

void rfx_member_wait_log(rfx_member_t *m, const char *text, long ms)
{
    if (fx_proc_log_has(&m->proc, text, ms))
        return;
    char *log = fx_read_file(m->log);
    ck_abort_msg("no \"%s\" from member %s within %ld ms:\n%s", text, m->txid, ms, log);
}

void rfx_member_stop(rfx_member_t *m)
{
    fx_proc_kill(&m->proc, SIGTERM);
    int ended = fx_proc_wait(&m->proc, 30000);
    char *log = fx_read_file(m->log);
    ck_assert_msg(ended && fx_proc_exit_code(&m->proc) == 0,
                  "member %s did not stop cleanly (exit %d):\n%s", m->txid,
                  fx_proc_exit_code(&m->proc), log);
    free(log);
    unlink(m->log);
}

void rfx_member_kill(rfx_member_t *m)
{
    fx_proc_kill(&m->proc, SIGKILL);
    ck_assert(fx_proc_wait(&m->proc, 10000));
    unlink(m->log);
}

int rfx_member_http_port(rfx_member_t *m)
{
    static const char mark[] = "msg=listening addr=127.0.0.1:";
    rfx_member_wait_log(m, mark, 30000);
    char *log = fx_read_file(m->log);
    int port = atoi(strstr(log, mark) + strlen(mark));
    free(log);
    ck_assert_int_gt(port, 0);
    return port;
}

/* Waits up to deadline (monotonic ms) for fd to be ready for events. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    int64_t left = deadline - sd_monotonic_ms();
    struct pollfd p = {fd, events, 0};
    return left > 0 && poll(&p, 1, (int)left) == 1;
}

int rfx_http_get(int port, const char *path, long timeout_ms, char *body, size_t cap)
{
    int64_t deadline = sd_monotonic_ms() + timeout_ms;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    char request[512], reply[8192];
    int len = snprintf(request, sizeof request,
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    size_t got = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, request, (size_t)len) == len) {
        ssize_t n;
        while (got < sizeof reply - 1 && wait_fd(fd, POLLIN, deadline) &&
               (n = read(fd, reply + got, sizeof reply - 1 - got)) > 0)
            got += (size_t)n;
    }
    close(fd);
    reply[got] = '\0';
    int status = 0;
    const char *end = strstr(reply, "\r\n\r\n");
    if (sscanf(reply, "HTTP/1.%*d %d", &status) != 1 || !end)
        status = 0;
    snprintf(body, cap, "%s", end ? end + 4 : "");
    return status;
}

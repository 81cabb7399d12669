/* What the recovery tests share: sessiond children pointed at the test's
 * broker (kafkafx.h) and topics, with the rules' clock frozen at PFX_NOW. */
#ifndef SESSIOND_RECFX_H
#define SESSIOND_RECFX_H

#include "scenario.h"
#include "procfx.h"

/* Arguments for `sessiond CMD` against kafka's broker and topics (run:
 * as group "sessiond" with kafka's prefix) and the store fx_store_locate
 * names `store_name`, then `extra` (NULL-terminated), into args (cap
 * entries, NULL-terminated).  Strings live in buf. */
typedef struct rfx_args {
    const char *argv[64];
    char buf[2048];
    size_t used;
} rfx_args_t;

void rfx_args(rfx_args_t *a, const char *cmd, fx_kafka_t *kafka, const char *store_name,
              const char *const *extra);

/* SESSIOND_NOW (PFX_NOW unless rfx_set_now moved it) and the given
 * extra, NULL-terminated. */
const char *const *rfx_env(const char *extra);
/* The clock of the children started from now on (a day passes: expiries). */
void rfx_set_now(int64_t now_ms);

/* Runs a child to its end (at most timeout_s); returns its exit code and
 * leaves its log (stdout and stderr) in *log (caller frees). */
int rfx_run(const rfx_args_t *a, const char *log_path, long timeout_s, char **log);

/* Every visible session of the store at now_ms, one JSON per line,
 * sorted; caller frees. */
char *rfx_dump(sd_store_t *store, int64_t now_ms);

/* Waits up to ms until the changes on s's output topic expire every
 * session of `live`; returns how many they expire. */
size_t rfx_wait_expired(fx_scenario_t *s, const sd_model_result_t *live, long ms);

/* A path in the test's temporary directory. */
void rfx_path(char *out, size_t cap, const char *name);

/* `sessiond run` as a member of the group, a child process with its log. */
typedef struct rfx_member {
    fx_proc_t proc;
    char log[512];
    char txid[128]; /* its name, with kafka's prefix: its transactional id */
} rfx_member_t;

/* Starts member `name` in the given mode, with small batches (5 events,
 * 20 ms) and, exactly-once, transaction.timeout.ms of 10 s; `extra`
 * arguments (NULL-terminated, may be NULL) come last, so they override
 * those, and `env` is one more "K=V" entry (may be NULL). */
void rfx_member_start(rfx_member_t *m, fx_kafka_t *kafka, const char *name, int exactly_once,
                      const char *const *extra, const char *env);
/* Fails the test, with the member's log, unless text appears in it
 * within ms. */
void rfx_member_wait_log(rfx_member_t *m, const char *text, long ms);
/* Stops it with SIGTERM; it must leave and exit 0. */
void rfx_member_stop(rfx_member_t *m);
void rfx_member_kill(rfx_member_t *m);
/* The port its HTTP server listens on (from its log; it is started with
 * --http-addr 127.0.0.1:0), waiting up to 30 s for it. */
int rfx_member_http_port(rfx_member_t *m);

/* GET path from 127.0.0.1:port: the HTTP status, and the body in body
 * (cap bytes, NUL-terminated); 0 if nothing answered within timeout_ms. */
int rfx_http_get(int port, const char *path, long timeout_ms, char *body, size_t cap);

#endif

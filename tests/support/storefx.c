#define _POSIX_C_SOURCE 200809L
#include "storefx.h"

#include <arpa/inet.h>
#include <check.h>
#include <mongoc/mongoc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sessiond/clock.h"

static const char *store_kind = "sqlite";

void fx_store_kind_set(const char *kind) { store_kind = kind; }
const char *fx_store_kind(void) { return store_kind; }

/* jongodb lacks endSessions (SPEC §4): the driver's warning about it at
 * every disconnect is noise here, not a finding. */
static void quiet_end_sessions(mongoc_log_level_t level, const char *domain,
                               const char *message, void *data)
{
    if (!strstr(message, "endSessions"))
        mongoc_log_default_handler(level, domain, message, data);
}

/* What this process created, to drop in fx_store_cleanup(). */
static char created[64][512];
static size_t n_created;

static void remember(const char *what)
{
    for (size_t i = 0; i < n_created; i++)
        if (strcmp(created[i], what) == 0)
            return;
    if (n_created < sizeof created / sizeof created[0])
        snprintf(created[n_created++], sizeof created[0], "%s", what);
}

void fx_store_cleanup(void)
{
    mongoc_client_t *client = NULL;
    for (size_t i = 0; i < n_created; i++) {
        if (strncmp(created[i], "sqlite:", 7) == 0) {
            sd_store_remove_sqlite(created[i] + 7);
            continue;
        }
        if (!client && !(client = mongoc_client_new(getenv("SESSIOND_TEST_MONGO_URI"))))
            return;
        /* jongodb has no dropDatabase (SPEC §4); a real server drops it. */
        bson_t cmd = BSON_INITIALIZER;
        BSON_APPEND_INT32(&cmd, "dropDatabase", 1);
        (void)mongoc_client_command_simple(client, created[i], &cmd, NULL, NULL, NULL);
        bson_destroy(&cmd);
    }
    mongoc_client_destroy(client);
    n_created = 0;
}

void fx_store_locate(const char *name, char *uri, size_t uri_cap, char *database,
                     size_t db_cap)
{
    /* Names are unique per process and case, so every case starts empty. */
    database[0] = '\0';
    if (strcmp(store_kind, "sqlite") == 0) {
        const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(uri, uri_cap, "sqlite:%s/sessiond-contract-%d-%s.db", dir, (int)getpid(), name);
        remember(uri);
    } else {
        const char *base = getenv("SESSIOND_TEST_MONGO_URI");
        ck_assert_msg(base != NULL, "SESSIOND_TEST_MONGO_URI is not set");
        snprintf(uri, uri_cap, "%s", base);
        snprintf(database, db_cap, "sdtest_%d_%s", (int)getpid(), name);
        remember(database);
    }
}

sd_store_t *fx_store_open(const char *name, int64_t ttl_ms)
{
    char uri[512], database[128];
    fx_store_locate(name, uri, sizeof uri, database, sizeof database);
    sd_store_config_t cfg = {.session_ttl_ms = ttl_ms, .timeout_ms = 20000, .uri = uri};
    if (database[0]) {
        cfg.database = database;
        cfg.write_concern = "1"; /* jongodb is one node; majority means the same there */
    }
    sd_store_t *store = NULL;
    sd_error_t err;
    ck_assert_msg(sd_store_open(&cfg, &store, &err) == SD_OK, "open %s: %s", uri, err.message);
    mongoc_log_set_handler(quiet_end_sessions, NULL); /* after the store set its own */
    ck_assert_msg(sd_store_ensure_schema(store, &err) == SD_OK, "schema: %s", err.message);
    return store;
}

void fx_apply(sd_store_t *store, const fx_events_t *events, const size_t *order, size_t n,
              const size_t *batch_sizes, size_t n_sizes, int64_t now_ms,
              sd_change_list_t *changes)
{
    sd_store_item_t *items = calloc(n ? n : 1, sizeof *items);
    ck_assert_ptr_nonnull(items);
    for (size_t i = 0; i < n; i++) {
        /* Each event is one message, read from the same place every time. */
        size_t at = order ? order[i] : i;
        items[i].intent = sd_rules_intent(&events->items[at]);
        items[i].topic = "task-events";
        items[i].partition = (int32_t)(at % 4);
        items[i].offset = (int64_t)(at / 4);
    }
    size_t done = 0;
    for (size_t b = 0; done < n; b++) {
        size_t size = batch_sizes ? batch_sizes[b % n_sizes] : n;
        if (size > n - done)
            size = n - done;
        sd_apply_result_t result;
        sd_error_t err;
        sd_err_t rc = sd_store_apply(store, items + done, size, now_ms, &result, &err);
        ck_assert_msg(rc == SD_OK, "apply: %s: %s", sd_err_name(rc), err.message);
        for (size_t c = 0; c < result.changes.count; c++)
            ck_assert_int_eq(sd_change_list_add(changes, &result.changes.items[c]), SD_OK);
        sd_apply_result_free(&result);
        done += size;
    }
    free(items);
}

/* The store's visible sessions (sorted by task_id) against the model's. */
static void expect_sessions(const sd_session_t *got, size_t n_got, const sd_model_result_t *want,
                            const char *context)
{
    char why[2048];
    ck_assert_msg(sd_model_matches(got, n_got, want, why, sizeof why), "%s: %s", context, why);
}

void fx_expect_model(sd_store_t *store, const fx_events_t *events, int64_t now_ms,
                     int64_t ttl_ms, const char *context)
{
    sd_model_result_t model;
    ck_assert_int_eq(sd_model_visible(events->items, events->count, now_ms, ttl_ms, &model), 0);
    sd_session_list_t got;
    sd_error_t err;
    ck_assert_msg(sd_store_list_all(store, now_ms, &got, &err) == SD_OK, "%s: list: %s", context,
                  err.message);
    expect_sessions(got.items, got.count, &model, context);
    sd_session_list_free(&got);
    sd_model_result_free(&model);
}

static int by_task_then_version(const void *a, const void *b)
{
    const sd_change_t *x = *(const sd_change_t *const *)a, *y = *(const sd_change_t *const *)b;
    int c = strcmp(x->session.task_id, y->session.task_id);
    if (c)
        return c;
    return x->version < y->version ? -1 : x->version > y->version;
}

char *fx_change_json(const sd_change_t *change)
{
    char *json;
    size_t len;
    sd_error_t err;
    ck_assert_msg(sd_change_to_json(change, &json, &len, &err) == SD_OK, "%s", err.message);
    return json;
}

/* Whether changes->items[k] is the only content its task's version has:
 * every other change of that task and version is an exact copy of it. */
static int agrees_with_its_version(const sd_change_list_t *changes, size_t k)
{
    const sd_change_t *late = &changes->items[k];
    char *jl = fx_change_json(late);
    int agrees = 1;
    for (size_t i = 0; i < changes->count && agrees; i++) {
        const sd_change_t *c = &changes->items[i];
        if (i == k || c->version != late->version ||
            strcmp(c->session.task_id, late->session.task_id))
            continue;
        char *jc = fx_change_json(c);
        agrees = strcmp(jc, jl) == 0;
        free(jc);
    }
    free(jl);
    return agrees;
}

/* Whether `order` lets late, of an older version, follow newer. */
static int may_come_late(const sd_change_list_t *changes, const sd_change_t *newer, size_t late,
                         fx_order_t order)
{
    const sd_cause_t *a = &newer->cause, *b = &changes->items[late].cause;
    if (order == FX_ORDERED)
        return 0;
    if (order == FX_ACROSS_PARTITIONS && a->partition == b->partition &&
        strcmp(a->topic ? a->topic : "", b->topic ? b->topic : "") == 0)
        return 0;
    return agrees_with_its_version(changes, late);
}

void fx_expect_fold(const sd_change_list_t *changes, const fx_events_t *events,
                    int64_t now_ms, int64_t ttl_ms, fx_order_t order, const char *context)
{
    /* Per task, in emission order: versions grow, and a repeated version is
     * an exact copy; a version may go back only as `order` allows. */
    const sd_change_t **sorted = malloc((changes->count + 1) * sizeof *sorted);
    ck_assert_ptr_nonnull(sorted);
    for (size_t i = 0; i < changes->count; i++)
        sorted[i] = &changes->items[i];
    /* qsort is not stable: check order on the original sequence first. */
    size_t late = 0;
    for (size_t i = 0; i < changes->count; i++)
        for (size_t k = i + 1; k < changes->count; k++) {
            const sd_change_t *a = &changes->items[i], *b = &changes->items[k];
            if (strcmp(a->session.task_id, b->session.task_id) != 0)
                continue;
            if (b->version < a->version && may_come_late(changes, a, k, order)) {
                late++;
                continue; /* a is compared with the next one after the late change */
            }
            ck_assert_msg(b->version >= a->version, "%s: %s went from version %lld back to %lld",
                          context, a->session.task_id, (long long)a->version,
                          (long long)b->version);
            if (b->version == a->version) {
                char *ja = fx_change_json(a), *jb = fx_change_json(b);
                ck_assert_msg(strcmp(ja, jb) == 0, "%s: two versions %lld of %s differ:\n%s\n%s",
                              context, (long long)a->version, a->session.task_id, ja, jb);
                free(ja);
                free(jb);
            }
            break; /* the next one of this task is compared in its own turn */
        }
    if (late)
        printf("%s: %zu changes delivered after newer ones of their session\n", context, late);
    qsort(sorted, changes->count, sizeof *sorted, by_task_then_version);

    sd_session_t *folded = malloc((changes->count + 1) * sizeof *folded);
    ck_assert_ptr_nonnull(folded);
    size_t n = 0;
    for (size_t i = 0; i < changes->count; i++) {
        int last_of_task = i + 1 == changes->count ||
                           strcmp(sorted[i]->session.task_id, sorted[i + 1]->session.task_id) != 0;
        if (last_of_task && (sorted[i]->type == SD_CHANGE_CREATED ||
                             sorted[i]->type == SD_CHANGE_STATUS_CHANGED))
            folded[n++] = sorted[i]->session;
    }
    sd_model_result_t model;
    ck_assert_int_eq(sd_model_visible(events->items, events->count, now_ms, ttl_ms, &model), 0);
    char ctx[256];
    snprintf(ctx, sizeof ctx, "%s (fold of %zu changes)", context, changes->count);
    expect_sessions(folded, n, &model, ctx);
    sd_model_result_free(&model);
    free(folded);
    free(sorted);
}

sd_apply_status_t fx_apply_expiry(sd_store_t *store, const sd_expiry_due_t *due, int64_t now_ms,
                                  const char *topic, int32_t partition, int64_t offset,
                                  sd_change_list_t *changes)
{
    sd_error_t err;
    char *json;
    size_t len;
    ck_assert_int_eq(sd_expiry_event_json(due, sd_store_ttl_ms(store), &json, &len, &err), SD_OK);
    sd_event_t ev;
    ck_assert_msg(sd_event_parse(json, len, &ev, &err) == SD_OK, "expiry event %s: %s: %s", json,
                  err.field, err.message);
    ck_assert_int_eq(ev.type, SD_EVENT_SESSION_EXPIRY_DUE);
    sd_store_item_t item = {sd_rules_intent(&ev), topic, partition, offset};
    sd_apply_result_t result;
    sd_err_t rc = sd_store_apply(store, &item, 1, now_ms, &result, &err);
    ck_assert_msg(rc == SD_OK, "apply expiry: %s: %s", sd_err_name(rc), err.message);
    for (size_t c = 0; c < result.changes.count; c++)
        ck_assert_int_eq(sd_change_list_add(changes, &result.changes.items[c]), SD_OK);
    sd_apply_status_t status = result.status[0];
    sd_apply_result_free(&result);
    sd_event_clear(&ev);
    free(json);
    return status;
}

size_t fx_sweep_all(sd_store_t *store, int64_t now_ms, sd_change_list_t *changes)
{
    int64_t next_offset = 1000000; /* the same for the same sweep of the same store */
    size_t published = 0;
    for (;;) {
        sd_expiry_list_t due;
        sd_error_t err;
        ck_assert_msg(sd_store_due_expiries(store, now_ms, now_ms - 3600 * 1000, 100, &due,
                                            &err) == SD_OK,
                      "sweep: %s", err.message);
        for (size_t i = 0; i < due.count; i++)
            fx_apply_expiry(store, &due.items[i], now_ms, "task-events", 0, next_offset++,
                            changes);
        ck_assert_msg(sd_store_expiries_published(store, &due, now_ms, &err) == SD_OK,
                      "marking expiry events: %s", err.message);
        size_t n = due.count;
        published += n;
        sd_expiry_list_free(&due);
        if (n == 0)
            return published;
    }
}

int fx_store_suite_main(int argc, char **argv, const char *program, const char *tcase_name,
                        int timeout_s, void (*add_tests)(TCase *tc))
{
    const char *kind = argc > 1 ? argv[1] : "sqlite";
    if (strcmp(kind, "mongodb") == 0 && !getenv("SESSIOND_TEST_MONGO_URI")) {
        fprintf(stderr, "%s: SESSIOND_TEST_MONGO_URI is not set; skipping\n", program);
        return 77;
    }
    fx_store_kind_set(kind);
    Suite *s = suite_create(kind);
    TCase *tc = tcase_create(tcase_name);
    tcase_set_timeout(tc, timeout_s);
    tcase_add_checked_fixture(tc, NULL, fx_store_cleanup);
    add_tests(tc);
    suite_add_tcase(s, tc);
    return fx_run(s);
}

pid_t fx_jongodb_start(int *port)
{
    const char *bin = getenv("SESSIOND_TEST_JONGODB");
    if (!bin || !*bin)
        return -1;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
              getsockname(s, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    close(s);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char port_arg[32];
        snprintf(port_arg, sizeof port_arg, "--port=%d", *port);
        if (!freopen("/dev/null", "w", stdout))
            _exit(126);
        execl(bin, bin, "--host=127.0.0.1", port_arg, "--topology-profile=standalone",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) { /* until it accepts, or exits */
        int c = socket(AF_INET, SOCK_STREAM, 0);
        int up = connect(c, (struct sockaddr *)&a, sizeof a) == 0;
        close(c);
        if (up)
            return pid;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            ck_abort_msg("jongodb (%s) exited with status %d before accepting", bin,
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        sd_sleep_ms(100);
    }
    fx_jongodb_stop(pid);
    ck_abort_msg("jongodb (%s) did not accept on port %d within 30 s", bin, *port);
    return -1;
}

void fx_jongodb_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Members may start together: several processes open one SQLite file at
 * the same instant (released together from a pipe), on a file that does
 * not exist yet and on one that does, and every one of them must open it
 * (the second used to fail with "database is locked" setting WAL mode),
 * and then apply a batch to it.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sessiond/clock.h"
#include "sessiond/store.h"
#include "storefx.h"

#define MEMBERS 12
#define ROUNDS 40

/* A child: waits for the start, opens the store, applies one create of
 * its own, and exits 0; on failure it prints why and exits 1. */
static void member(const char *path, int start_fd, int id)
{
    char byte, uri[600], event[512];
    if (read(start_fd, &byte, 1) != 0) /* EOF: every member released at once */
        _exit(3);
    snprintf(uri, sizeof uri, "sqlite:%s", path);
    sd_store_config_t cfg = {.uri = uri};
    sd_store_t *store;
    sd_error_t err;
    if (sd_store_open(&cfg, &store, &err) != SD_OK) {
        fprintf(stderr, "member %d: %s\n", id, err.message);
        _exit(1);
    }
    snprintf(event, sizeof event,
             "{\"event_id\":\"e-%d\",\"event_type\":\"task.created\",\"task_id\":\"t-%d\","
             "\"task_type\":\"video_generation\",\"short_id\":\"s\","
             "\"occurred_at\":\"2026-03-01T11:00:00Z\"}", id, id);
    sd_event_t ev;
    sd_store_item_t item = {.topic = "task-events", .partition = 0, .offset = id};
    sd_apply_result_t result;
    int ok = sd_event_parse(event, strlen(event), &ev, &err) == SD_OK;
    if (ok) {
        item.intent = sd_rules_intent(&ev);
        ok = sd_store_apply(store, &item, 1, FX_T0 + 12 * 3600 * 1000, &result, &err) == SD_OK;
        if (ok)
            sd_apply_result_free(&result);
        sd_event_clear(&ev);
    }
    if (!ok)
        fprintf(stderr, "member %d: apply: %s\n", id, err.message);
    sd_store_close(store);
    _exit(ok ? 0 : 1);
}

/* One round: MEMBERS processes open `path` at once; returns how many
 * failed. */
static int start_together(const char *path, int round)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pids[MEMBERS];
    fflush(NULL);
    for (int i = 0; i < MEMBERS; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            close(fds[1]);
            member(path, fds[0], round * MEMBERS + i);
        }
    }
    close(fds[0]);
    sd_sleep_ms(50); /* every child is waiting on the pipe */
    close(fds[1]);
    int failed = 0;
    for (int i = 0; i < MEMBERS; i++) {
        int status;
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    return failed;
}

/* Sessions the file holds, read by a connection of the test's own. */
static size_t sessions_in(const char *path)
{
    char uri[600];
    snprintf(uri, sizeof uri, "sqlite:%s", path);
    sd_store_config_t cfg = {.uri = uri};
    sd_store_t *store;
    sd_error_t err;
    ck_assert_msg(sd_store_open(&cfg, &store, &err) == SD_OK, "%s", err.message);
    sd_session_list_t all;
    ck_assert_int_eq(sd_store_list_all(store, FX_T0 + 12 * 3600 * 1000, &all, &err), SD_OK);
    size_t n = all.count;
    sd_session_list_free(&all);
    sd_store_close(store);
    return n;
}

START_TEST(members_open_a_new_file_together)
{
    char path[512];
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int round = 0; round < ROUNDS; round++) {
        snprintf(path, sizeof path, "%s/sessiond-start-%d-%d.db", dir, (int)getpid(), round);
        sd_store_remove_sqlite(path);
        int failed = start_together(path, round);
        ck_assert_msg(failed == 0, "round %d: %d of %d members could not open a new file "
                                   "together (their messages are above)", round, failed, MEMBERS);
        ck_assert_uint_eq(sessions_in(path), MEMBERS);
        sd_store_remove_sqlite(path);
    }
}
END_TEST

START_TEST(members_open_an_existing_file_together)
{
    char path[512];
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, sizeof path, "%s/sessiond-start-%d-existing.db", dir, (int)getpid());
    sd_store_remove_sqlite(path);
    for (int round = 0; round < ROUNDS; round++) {
        int failed = start_together(path, round);
        ck_assert_msg(failed == 0, "round %d: %d of %d members could not open the file "
                                   "together (their messages are above)", round, failed, MEMBERS);
        ck_assert_uint_eq(sessions_in(path), (size_t)(round + 1) * MEMBERS);
    }
    sd_store_remove_sqlite(path);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("sqlite_start");
    TCase *tc = tcase_create("start");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, members_open_a_new_file_together);
    tcase_add_test(tc, members_open_an_existing_file_together);
    suite_add_tcase(suite, tc);
    return fx_run(suite);
}

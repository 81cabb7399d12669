/* The store contract suite: the same cases for every store.
 *
 *   store_contract sqlite
 *   SESSIOND_TEST_MONGO_URI=mongodb://… store_contract mongodb
 *
 * Random cases print their seed on failure; SESSIOND_TEST_SEED=N runs
 * only that seed. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "sessiond/workload.h"
#include "storefx.h"

#define T0 FX_T0
#define MIN INT64_C(60000)
#define DAY (1440 * MIN)
#define TTL (7 * DAY)
#define NOW (T0 + DAY)

static int case_counter;

static const char *case_name(const char *prefix)
{
    static char name[96];
    snprintf(name, sizeof name, "%s%d", prefix, case_counter++);
    return name;
}

/* Every rule of SPEC §3 in one set. */
static void rules_set(fx_events_t *e)
{
    fx_create(e, "c1", "t1", "image_analysis", "s1", 10);           /* rule 1 */
    fx_create(e, "c2", "t2", "scraping", "s1", 10);                 /* rule 1: ignored */
    fx_create(e, "c3", "t3", "video_generation", "s1", 10);         /* rule 2: removed */
    fx_terminal(e, "x3", "task.completed", "t3", "video_generation", 20);
    fx_create(e, "c4", "t4", "scenario_generation", "s4", 10);      /* rule 2: status */
    fx_terminal(e, "x4a", "task.failed", "t4", "scenario_generation", 30);
    fx_terminal(e, "x4b", "task.completed", "t4", "scenario_generation", 20);
    fx_create(e, "c5", "t5", "scenario_generation", "s5", 10);      /* rule 3: saved */
    fx_create(e, "c6", "t6", "scenario_generation", "s5", 40);      /* rule 3: after save */
    fx_create(e, "c7", "t7", "image_analysis", "s5", 10);           /* rule 3: not sg */
    fx_create(e, "c15", "t15", "scenario_generation", "s5", 30);    /* rule 3: at Ts */
    fx_save(e, "v5", "s5", 30);
    fx_terminal(e, "x8", "task.cancelled", "t8", "finalize_short", 20); /* rule 4 */
    fx_create(e, "c8", "t8", "finalize_short", "s8", 10);
    fx_save(e, "v9", "s9", 30);                                     /* rule 4: save first */
    fx_create(e, "c9", "t9", "scenario_generation", "s9", 10);
    fx_create(e, "c10", "t10", "content_analysis", "s10", -1);     /* rule 5: at T0 */
    fx_create(e, "c11", "t11", "data_extraction", "s11", 10);      /* rule 6 */
    fx_delete(e, "d11", "t11", 20);
    fx_create(e, "c12b", "t12", "save_scenario", "s12b", 15);       /* rule 7 */
    fx_create(e, "c12a", "t12", "save_scenario", "s12a", 12);
    fx_terminal(e, "x13", "task.completed", "t13", "scenario_generation", 20); /* rule 4, sg */
    fx_create(e, "c13", "t13", "scenario_generation", "s13", 10);
    fx_create(e, "c14", "t14", "a_future_type", "s14", 10);         /* unknown type */
}

START_TEST(every_rule_in_one_batch_and_one_by_one)
{
    static const size_t one = 1;
    for (int batched = 0; batched <= 1; batched++) {
        fx_events_t e = {0};
        rules_set(&e);
        sd_store_t *store = fx_store_open(case_name("rules"), TTL);
        sd_change_list_t changes = {0};
        fx_apply(store, &e, NULL, e.count, batched ? NULL : &one, 1, NOW, &changes);
        const char *ctx = batched ? "one batch" : "one event per batch";
        fx_expect_model(store, &e, NOW, TTL, ctx);
        fx_expect_model(store, &e, T0 + TTL + 5 * MIN, TTL, ctx); /* t10 expired */
        fx_sweep_all(store, NOW, &changes);
        fx_expect_fold(&changes, &e, NOW, TTL, FX_ORDERED, ctx);
        sd_change_list_free(&changes);
        sd_store_close(store);
        fx_events_free(&e);
    }
}
END_TEST

/* Finds the published changes of one task, in order. */
static size_t changes_of(const sd_change_list_t *all, const char *task, const sd_change_t **out,
                         size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < all->count && n < cap; i++)
        if (strcmp(all->items[i].session.task_id, task) == 0)
            out[n++] = &all->items[i];
    return n;
}

START_TEST(published_changes_tell_each_story)
{
    fx_events_t e = {0};
    fx_create(&e, "c1", "t1", "scenario_generation", "s1", 10);
    fx_terminal(&e, "x1", "task.completed", "t1", "scenario_generation", 20);
    fx_save(&e, "v1", "s1", 30);
    fx_create(&e, "c2", "t2", "image_analysis", "s2", 10);
    fx_terminal(&e, "x2", "task.failed", "t2", "image_analysis", 20);
    fx_terminal(&e, "x3", "task.completed", "t3", "video_generation", 20);
    fx_create(&e, "c3", "t3", "video_generation", "s3", 10);
    sd_store_t *store = fx_store_open(case_name("story"), TTL);
    sd_change_list_t changes = {0};
    static const size_t one = 1;
    fx_apply(store, &e, NULL, e.count, &one, 1, NOW, &changes);

    const sd_change_t *c[8];
    ck_assert_uint_eq(changes_of(&changes, "t1", c, 8), 3);
    ck_assert_int_eq(c[0]->type, SD_CHANGE_CREATED);
    ck_assert_int_eq(c[0]->version, 1);
    ck_assert_str_eq(c[0]->cause.event_id, "c1");
    ck_assert_str_eq(c[0]->cause.topic, "task-events");
    ck_assert_int_eq(c[0]->occurred_at_ms, T0 + 10 * MIN);
    ck_assert_str_eq(c[0]->session.user_id, "u-c1");
    ck_assert_int_eq(c[1]->type, SD_CHANGE_STATUS_CHANGED);
    ck_assert_int_eq(c[1]->reason, SD_REASON_TASK_COMPLETED);
    ck_assert_int_eq(c[1]->session.status, SD_STATUS_COMPLETED);
    ck_assert_int_eq(c[1]->session.updated_at_ms, T0 + 20 * MIN);
    ck_assert_int_eq(c[1]->version, 2);
    ck_assert_int_eq(c[2]->type, SD_CHANGE_REMOVED);
    ck_assert_int_eq(c[2]->reason, SD_REASON_SCENARIO_SAVED);
    ck_assert_str_eq(c[2]->cause.event_id, "v1");
    ck_assert_int_eq(c[2]->version, 3);
    ck_assert_int_eq(c[2]->occurred_at_ms, T0 + 30 * MIN);

    ck_assert_uint_eq(changes_of(&changes, "t2", c, 8), 2);
    ck_assert_int_eq(c[1]->type, SD_CHANGE_REMOVED);
    ck_assert_int_eq(c[1]->reason, SD_REASON_TASK_FAILED);
    ck_assert_int_eq(c[1]->session.status, SD_STATUS_ACTIVE);
    /* the terminal came first: the session never showed */
    ck_assert_uint_eq(changes_of(&changes, "t3", c, 8), 0);

    /* a create older than the TTL shows only once a recent status arrives,
     * and its first change is still its creation */
    fx_events_add_json(&e, "{\"event_id\":\"c5\",\"event_type\":\"task.created\","
                           "\"task_id\":\"t5\",\"task_type\":\"scenario_generation\","
                           "\"short_id\":\"s5\",\"occurred_at\":\"2026-02-01T00:00:00Z\"}");
    fx_terminal(&e, "x5", "task.failed", "t5", "scenario_generation", 20);
    size_t tail[] = {e.count - 2, e.count - 1};
    sd_change_list_t late = {0};
    fx_apply(store, &e, tail, 2, &one, 1, NOW, &late);
    ck_assert_uint_eq(late.count, 1);
    ck_assert_int_eq(late.items[0].type, SD_CHANGE_CREATED);
    ck_assert_int_eq(late.items[0].reason, SD_REASON_TASK_CREATED);
    ck_assert_int_eq(late.items[0].version, 1);
    ck_assert_int_eq(late.items[0].session.status, SD_STATUS_FAILED);
    ck_assert_str_eq(late.items[0].cause.event_id, "x5");
    sd_change_list_free(&late);

    /* expiry: a week after its last change, published once, caused by the
     * expiry event the sweep published for the session's version */
    fx_create(&e, "c4", "t4", "content_analysis", "s4", 10);
    sd_change_list_t more = {0};
    size_t last = e.count - 1;
    fx_apply(store, &e, &last, 1, NULL, 0, NOW, &more);
    ck_assert_uint_eq(more.count, 1);
    sd_change_list_t swept = {0};
    ck_assert_uint_eq(fx_sweep_all(store, T0 + 10 * MIN + TTL - 1, &swept), 0);
    ck_assert_uint_eq(fx_sweep_all(store, T0 + 10 * MIN + TTL, &swept), 1);
    ck_assert_uint_eq(swept.count, 1);
    ck_assert_int_eq(swept.items[0].type, SD_CHANGE_EXPIRED);
    ck_assert_int_eq(swept.items[0].reason, SD_REASON_TTL);
    ck_assert_int_eq(swept.items[0].version, 2);
    ck_assert_int_eq(swept.items[0].occurred_at_ms, T0 + 10 * MIN + TTL);
    char expiry_id[SD_EXPIRY_EVENT_ID_BUFSZ];
    sd_error_t err;
    ck_assert_int_eq(sd_expiry_event_id("t4", 1, expiry_id, &err), SD_OK);
    ck_assert_str_eq(swept.items[0].cause.event_id, expiry_id);
    ck_assert_str_eq(swept.items[0].cause.topic, "task-events");
    fx_sweep_all(store, T0 + 10 * MIN + TTL + DAY, &swept); /* t4 again? no: only t5 */
    ck_assert_uint_eq(swept.count, 2);
    ck_assert_str_eq(swept.items[1].session.task_id, "t5");

    sd_change_list_free(&swept);
    sd_change_list_free(&more);
    sd_change_list_free(&changes);
    sd_store_close(store);
    fx_events_free(&e);
}
END_TEST

START_TEST(reads_by_task_short_id_and_type)
{
    fx_events_t e = {0};
    rules_set(&e);
    sd_store_t *store = fx_store_open(case_name("reads"), TTL);
    sd_change_list_t changes = {0};
    fx_apply(store, &e, NULL, e.count, NULL, 0, NOW, &changes);
    sd_error_t err;
    sd_session_list_t l;
    ck_assert_int_eq(sd_store_get(store, "t4", NOW, &l, &err), SD_OK);
    ck_assert_uint_eq(l.count, 1);
    ck_assert_int_eq(l.items[0].status, SD_STATUS_FAILED);
    sd_session_list_free(&l);
    ck_assert_int_eq(sd_store_get(store, "t3", NOW, &l, &err), SD_OK);
    ck_assert_uint_eq(l.count, 0);
    sd_session_list_free(&l);
    ck_assert_int_eq(sd_store_list_by_short_id(store, "s5", NOW, &l, &err), SD_OK);
    ck_assert_uint_eq(l.count, 2);
    ck_assert_str_eq(l.items[0].task_id, "t6");
    ck_assert_str_eq(l.items[1].task_id, "t7");
    sd_session_list_free(&l);

    sd_type_count_t *counts;
    size_t n;
    ck_assert_int_eq(sd_store_count_by_type(store, NOW, &counts, &n, &err), SD_OK);
    int64_t sg = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        total += counts[i].live;
        if (strcmp(counts[i].task_type, "scenario_generation") == 0)
            sg = counts[i].live;
    }
    ck_assert_int_eq(sg, 3);    /* t4, t6, t13 */
    ck_assert_int_eq(total, 8); /* and t1, t7, t10, t12, t14 */
    free(counts);
    ck_assert_int_eq(sd_store_ping(store, &err), SD_OK);
    ck_assert_int_eq(sd_store_ensure_schema(store, &err), SD_OK); /* idempotent */
    sd_change_list_free(&changes);
    sd_store_close(store);
    fx_events_free(&e);
}
END_TEST

/* ---- random sets ---- */

static uint64_t first_seed(void)
{
    const char *s = getenv("SESSIOND_TEST_SEED");
    return s ? strtoull(s, NULL, 10) : 20261121;
}

static size_t seed_count(size_t dflt)
{
    return getenv("SESSIOND_TEST_SEED") ? 1 : dflt;
}

/* A generated workload parsed into events, plus a delivery of it: a
 * permutation with duplicates.  Odd seeds use UUIDs for ids, even seeds
 * sequential ids. */
typedef struct scenario {
    fx_events_t events;
    size_t *delivery;
    size_t n_delivery;
    size_t batch_sizes[4];
    int64_t now;
} scenario_t;

static void scenario_make(scenario_t *s, uint64_t seed, size_t tasks, const char *prefix)
{
    memset(s, 0, sizeof *s);
    sd_rng_t rng;
    sd_rng_seed(&rng, seed);
    s->now = T0 + (int64_t)sd_rng_below(&rng, 30) * DAY;
    sd_workload_params_t p = {.seed = seed, .tasks = tasks, .now_ms = s->now, .ttl_ms = TTL,
                              .id_prefix = prefix,
                              .ids = seed % 2 ? SD_IDS_UUID : SD_IDS_SEQUENTIAL};
    sd_workload_t w;
    sd_error_t err;
    ck_assert_int_eq(sd_workload_generate(&p, &w, &err), SD_OK);
    for (size_t i = 0; i < w.count; i++)
        fx_events_add_json(&s->events, w.lines[i].json);
    sd_workload_free(&w);

    size_t n = s->events.count, dups = n * (size_t)sd_rng_below(&rng, 30) / 100;
    s->delivery = malloc((n + dups + 1) * sizeof *s->delivery);
    ck_assert_ptr_nonnull(s->delivery);
    for (size_t i = 0; i < n; i++)
        s->delivery[i] = i;
    for (size_t i = 0; i < dups; i++)
        s->delivery[n + i] = (size_t)sd_rng_below(&rng, n);
    s->n_delivery = n + dups;
    for (size_t i = s->n_delivery; i > 1; i--) {
        size_t j = (size_t)sd_rng_below(&rng, i), tmp = s->delivery[i - 1];
        s->delivery[i - 1] = s->delivery[j];
        s->delivery[j] = tmp;
    }
    for (int i = 0; i < 4; i++)
        s->batch_sizes[i] = 1 + (size_t)sd_rng_below(&rng, 40);
}

static void scenario_free(scenario_t *s)
{
    fx_events_free(&s->events);
    free(s->delivery);
}

START_TEST(random_sets_match_the_model)
{
    /* Each seed: a workload, delivered shuffled with duplicates in random
     * batch sizes, must show what the model shows at several "now"s, and the
     * changes it published must fold to the same sessions. */
    size_t n_seeds = seed_count(200);
    uint64_t seed0 = first_seed();
    for (uint64_t seed = seed0; seed < seed0 + n_seeds; seed++) {
        scenario_t s;
        scenario_make(&s, seed, 4 + seed % 24, "");
        char ctx[128];
        snprintf(ctx, sizeof ctx, "seed %llu (replay: SESSIOND_TEST_SEED=%llu)",
                 (unsigned long long)seed, (unsigned long long)seed);
        sd_store_t *store = fx_store_open(case_name("rand"), TTL);
        sd_change_list_t changes = {0};
        fx_apply(store, &s.events, s.delivery, s.n_delivery, s.batch_sizes, 4, s.now, &changes);
        fx_expect_model(store, &s.events, s.now, TTL, ctx);
        fx_expect_model(store, &s.events, s.now + TTL / 2, TTL, ctx);
        fx_expect_model(store, &s.events, s.now + 2 * TTL, TTL, ctx);
        fx_sweep_all(store, s.now, &changes);
        fx_expect_fold(&changes, &s.events, s.now, TTL, FX_ORDERED, ctx);
        sd_change_list_free(&changes);
        sd_store_close(store);
        fx_store_cleanup();
        scenario_free(&s);
    }
}
END_TEST

START_TEST(redelivery_repeats_the_latest_change_exactly)
{
    size_t n_seeds = seed_count(20);
    uint64_t seed0 = first_seed() + 1000;
    for (uint64_t seed = seed0; seed < seed0 + n_seeds; seed++) {
        scenario_t s;
        scenario_make(&s, seed, 12, "");
        sd_store_t *store = fx_store_open(case_name("redeliver"), TTL);
        sd_change_list_t first = {0};
        fx_apply(store, &s.events, NULL, s.events.count, s.batch_sizes, 4, s.now, &first);
        fx_sweep_all(store, s.now, &first);

        /* Redeliver every event, one at a time and then all at once. */
        for (int pass = 0; pass < 2; pass++) {
            sd_change_list_t again = {0};
            if (pass == 0)
                for (size_t i = 0; i < s.events.count; i++)
                    fx_apply(store, &s.events, &i, 1, NULL, 0, s.now, &again);
            else
                fx_apply(store, &s.events, NULL, s.events.count, NULL, 0, s.now, &again);
            for (size_t i = 0; i < again.count; i++) {
                const sd_change_t *r = &again.items[i];
                /* It must be an exact copy of that session's latest change. */
                const sd_change_t *latest = NULL;
                for (size_t k = 0; k < first.count; k++)
                    if (strcmp(first.items[k].session.task_id, r->session.task_id) == 0 &&
                        (!latest || first.items[k].version > latest->version))
                        latest = &first.items[k];
                ck_assert_msg(latest != NULL, "seed %llu: %s re-published a change never made",
                              (unsigned long long)seed, r->session.task_id);
                char *a = fx_change_json(r), *b = fx_change_json(latest);
                ck_assert_msg(strcmp(a, b) == 0,
                              "seed %llu pass %d: redelivery published\n%s\nbut the latest is\n%s",
                              (unsigned long long)seed, pass, a, b);
                free(a);
                free(b);
            }
            /* and every latest change whose cause was redelivered comes back */
            for (size_t k = 0; k < first.count; k++) {
                const sd_change_t *c = &first.items[k];
                int is_latest = 1, found = 0;
                for (size_t j = 0; j < first.count; j++)
                    if (strcmp(first.items[j].session.task_id, c->session.task_id) == 0 &&
                        first.items[j].version > c->version)
                        is_latest = 0;
                for (size_t j = 0; j < again.count; j++)
                    found |= strcmp(again.items[j].session.task_id, c->session.task_id) == 0;
                ck_assert_msg(!is_latest || found,
                              "seed %llu pass %d: latest change v%lld of %s (cause %s) was not "
                              "re-published", (unsigned long long)seed, pass,
                              (long long)c->version, c->session.task_id, c->cause.event_id);
            }
            fx_expect_model(store, &s.events, s.now, TTL, "after redelivery");
            sd_change_list_free(&again);
        }
        sd_change_list_free(&first);
        sd_store_close(store);
        fx_store_cleanup();
        scenario_free(&s);
    }
}
END_TEST

/* ---- two connections at once ---- */

typedef struct worker {
    sd_store_t *store;
    const fx_events_t *events;
    size_t *order;
    size_t n;
    int64_t now;
    sd_err_t rc;
    sd_error_t err;
} worker_t;

static void *work(void *arg)
{
    worker_t *w = arg;
    sd_store_item_t items[16];
    for (size_t done = 0; done < w->n && w->rc == SD_OK;) {
        size_t size = w->n - done < 16 ? w->n - done : 16;
        for (size_t i = 0; i < size; i++)
            items[i] = (sd_store_item_t){sd_rules_intent(&w->events->items[w->order[done + i]]),
                                         "task-events", 0, (int64_t)(done + i)};
        sd_apply_result_t r;
        w->rc = sd_store_apply(w->store, items, size, w->now, &r, &w->err);
        if (w->rc == SD_ERR_TRANSIENT) { /* a busy lock: retry, as the pipeline does */
            w->rc = SD_OK;
            continue;
        }
        if (w->rc == SD_OK)
            sd_apply_result_free(&r);
        done += size;
    }
    return NULL;
}

START_TEST(two_connections_applying_overlapping_batches)
{
    /* Creates and saves for the same few short_ids, split between two
     * connections with an overlap, applied at the same time. */
    size_t n_seeds = seed_count(15);
    uint64_t seed0 = first_seed() + 2000;
    for (uint64_t seed = seed0; seed < seed0 + n_seeds; seed++) {
        scenario_t s;
        scenario_make(&s, seed, 24, "");
        const char *name = case_name("concurrent");
        sd_store_t *a = fx_store_open(name, TTL), *b = fx_store_open(name, TTL);
        sd_rng_t rng;
        sd_rng_seed(&rng, seed);
        size_t n = s.n_delivery;
        size_t *oa = malloc(n * sizeof *oa), *ob = malloc(n * sizeof *ob), na = 0, nb = 0;
        ck_assert(oa && ob);
        for (size_t i = 0; i < n; i++) { /* half to A, 30 % to B, 20 % to both */
            unsigned r = (unsigned)sd_rng_below(&rng, 100);
            if (r < 50 || r >= 80)
                oa[na++] = s.delivery[i];
            if (r >= 50)
                ob[nb++] = s.delivery[i];
        }
        worker_t wa = {a, &s.events, oa, na, s.now, SD_OK, {0}};
        worker_t wb = {b, &s.events, ob, nb, s.now, SD_OK, {0}};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, work, &wa);
        pthread_create(&tb, NULL, work, &wb);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        ck_assert_msg(wa.rc == SD_OK && wb.rc == SD_OK, "seed %llu: %s / %s",
                      (unsigned long long)seed, wa.err.message, wb.err.message);
        char ctx[64];
        snprintf(ctx, sizeof ctx, "concurrent seed %llu", (unsigned long long)seed);
        fx_expect_model(a, &s.events, s.now, TTL, ctx);
        free(oa);
        free(ob);
        sd_store_close(a);
        sd_store_close(b);
        fx_store_cleanup();
        scenario_free(&s);
    }
}
END_TEST

static void due_now(sd_store_t *store, int64_t now, int64_t resend_before, size_t limit,
                    sd_expiry_list_t *out)
{
    sd_error_t err;
    ck_assert_msg(sd_store_due_expiries(store, now, resend_before, limit, out, &err) == SD_OK,
                  "sweep: %s", err.message);
}

static const sd_expiry_due_t *due_of(const sd_expiry_list_t *l, const char *task_id)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i].task_id, task_id) == 0)
            return &l->items[i];
    return NULL;
}

static const sd_change_t *change_of(const sd_change_list_t *l, const char *task_id)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i].session.task_id, task_id) == 0)
            return &l->items[i];
    return NULL;
}

static void expect_same_change(const sd_change_t *a, const sd_change_t *b)
{
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    char *ja = fx_change_json(a), *jb = fx_change_json(b);
    ck_assert_str_eq(ja, jb);
    free(ja);
    free(jb);
}

/* A sweep finds what is due and changes nothing; once its events are
 * published, later sweeps skip those sessions until the mark goes stale
 * (their event was never applied) or the session changes. */
START_TEST(a_sweep_finds_each_due_session_once)
{
    const long week = TTL / MIN;
    fx_events_t e = {0};
    fx_create(&e, "c1", "t1", "scenario_generation", "s1", 10);
    fx_create(&e, "c2", "t2", "image_analysis", "s2", 10);
    fx_create(&e, "c3", "t3", "content_analysis", "s3", 10);
    sd_store_t *store = fx_store_open(case_name("due"), TTL);
    sd_change_list_t changes = {0};
    fx_apply(store, &e, NULL, 3, NULL, 0, NOW, &changes);
    ck_assert_uint_eq(changes.count, 3);

    int64_t at = T0 + (week + 20) * MIN, hour = 60 * MIN;
    sd_expiry_list_t first, again;
    due_now(store, at - 11 * MIN, at, 100, &first); /* a minute before the TTL */
    ck_assert_uint_eq(first.count, 0);
    sd_expiry_list_free(&first);
    due_now(store, at, at - hour, 100, &first);
    ck_assert_uint_eq(first.count, 3);
    ck_assert_int_eq(due_of(&first, "t2")->version, 1);
    ck_assert_int_eq(due_of(&first, "t2")->updated_at_ms, T0 + 10 * MIN);
    due_now(store, at, at - hour, 2, &again); /* the limit holds */
    ck_assert_uint_eq(again.count, 2);
    sd_expiry_list_free(&again);
    fx_expect_model(store, &e, at, TTL, "after a sweep"); /* it changed nothing */
    sd_error_t err;
    ck_assert_int_eq(sd_store_expiries_published(store, &first, at, &err), SD_OK);
    due_now(store, at + 10 * MIN, at + 10 * MIN - hour, 100, &again);
    ck_assert_uint_eq(again.count, 0);
    sd_expiry_list_free(&again);

    /* t2's event is applied; t1 is revived by a later status; t3's event
     * never arrives, so t3 is due again once its mark is an hour old. */
    sd_change_list_t applied = {0};
    ck_assert_int_eq(fx_apply_expiry(store, due_of(&first, "t2"), at, "task-events", 1, 7,
                                     &applied), SD_APPLY_CHANGED);
    fx_terminal(&e, "x1", "task.completed", "t1", "scenario_generation", week + 20);
    size_t x1 = 3;
    fx_apply(store, &e, &x1, 1, NULL, 0, at, &applied);
    ck_assert_uint_eq(applied.count, 2);
    ck_assert_int_eq(change_of(&applied, "t1")->type, SD_CHANGE_STATUS_CHANGED);
    ck_assert_int_eq(change_of(&applied, "t1")->version, 2);
    due_now(store, at + hour - 1, at - 1, 100, &again);
    ck_assert_uint_eq(again.count, 0);
    sd_expiry_list_free(&again);
    due_now(store, at + hour, at, 100, &again);
    ck_assert_uint_eq(again.count, 1);
    ck_assert_str_eq(again.items[0].task_id, "t3");
    sd_expiry_list_free(&again);
    /* t1 is due a week after its status; its mark went with the change. */
    due_now(store, at + TTL, at + TTL - hour, 100, &again);
    ck_assert_uint_eq(again.count, 2);
    ck_assert_int_eq(due_of(&again, "t1")->version, 2);
    ck_assert_ptr_nonnull(due_of(&again, "t3"));

    sd_expiry_list_free(&again);
    sd_expiry_list_free(&first);
    sd_change_list_free(&applied);
    sd_change_list_free(&changes);
    sd_store_close(store);
    fx_events_free(&e);
}
END_TEST

/* An expiry event expires a live session whose TTL passed by the store's
 * clock, whatever version it names; otherwise it changes nothing.  Read
 * again from its place it re-publishes its change; another copy (a second
 * sweeper's, at another offset) publishes nothing. */
START_TEST(an_expiry_event_expires_only_what_is_due)
{
    const long week = TTL / MIN;
    fx_events_t e = {0};
    fx_create(&e, "c1", "t1", "image_analysis", "s1", 10);
    fx_create(&e, "c2", "t2", "scenario_generation", "s2", 10);
    fx_terminal(&e, "x2", "task.failed", "t2", "scenario_generation", 30);
    sd_store_t *store = fx_store_open(case_name("expiry_event"), TTL);
    sd_change_list_t changes = {0}, out = {0};
    fx_apply(store, &e, NULL, e.count, NULL, 0, NOW, &changes);
    int64_t due1 = T0 + (week + 10) * MIN;

    /* Sent by a producer, or by a member whose clock runs ahead: early. */
    sd_expiry_due_t t1 = {"t1", 1, T0 + 10 * MIN};
    ck_assert_int_eq(fx_apply_expiry(store, &t1, due1 - 1, "task-events", 0, 100, &out),
                     SD_APPLY_UNCHANGED);
    ck_assert_uint_eq(out.count, 0);
    /* t2 moved on to version 2 at +30 min: an event for version 1 waits
     * for the TTL of version 2, then expires it. */
    sd_expiry_due_t t2 = {"t2", 1, T0 + 10 * MIN};
    ck_assert_int_eq(fx_apply_expiry(store, &t2, due1, "task-events", 0, 101, &out),
                     SD_APPLY_UNCHANGED);
    ck_assert_int_eq(fx_apply_expiry(store, &t2, due1 + 20 * MIN, "task-events", 0, 102, &out),
                     SD_APPLY_CHANGED);
    ck_assert_uint_eq(out.count, 1);
    ck_assert_int_eq(out.items[0].version, 3);
    ck_assert_int_eq(out.items[0].occurred_at_ms, due1 + 20 * MIN);
    ck_assert_int_eq(out.items[0].session.status, SD_STATUS_FAILED);

    ck_assert_int_eq(fx_apply_expiry(store, &t1, due1, "task-events", 3, 5, &out),
                     SD_APPLY_CHANGED);
    ck_assert_uint_eq(out.count, 2);
    const sd_change_t *expired = &out.items[1];
    ck_assert_int_eq(expired->type, SD_CHANGE_EXPIRED);
    ck_assert_int_eq(expired->version, 2);
    ck_assert_int_eq(expired->cause.partition, 3);
    ck_assert_int_eq(expired->cause.offset, 5);
    sd_change_list_t again = {0};
    ck_assert_int_eq(fx_apply_expiry(store, &t1, due1 + DAY, "task-events", 3, 9, &again),
                     SD_APPLY_UNCHANGED); /* a second sweeper's copy */
    ck_assert_uint_eq(again.count, 0);
    ck_assert_int_eq(fx_apply_expiry(store, &t1, due1 + DAY, "task-events", 3, 5, &again),
                     SD_APPLY_UNCHANGED); /* the same message, redelivered */
    ck_assert_uint_eq(again.count, 1);
    expect_same_change(&again.items[0], expired);
    fx_expect_model(store, &e, due1 + DAY, TTL, "after the expiries");

    sd_change_list_free(&again);
    sd_change_list_free(&out);
    sd_change_list_free(&changes);
    sd_store_close(store);
    fx_events_free(&e);
}
END_TEST

/* A producer that sent an event twice: the second message (another offset)
 * publishes nothing, even while the first one's change is the latest;
 * the first message read again re-publishes that change. */
static void apply_at(sd_store_t *store, const fx_events_t *e, int64_t offset0,
                     sd_change_list_t *changes)
{
    sd_store_item_t *items = calloc(e->count, sizeof *items);
    ck_assert_ptr_nonnull(items);
    for (size_t i = 0; i < e->count; i++)
        items[i] = (sd_store_item_t){sd_rules_intent(&e->items[i]), "task-events", 0,
                                     offset0 + (int64_t)i};
    sd_apply_result_t result;
    sd_error_t err;
    ck_assert_msg(sd_store_apply(store, items, e->count, NOW, &result, &err) == SD_OK, "%s",
                  err.message);
    for (size_t c = 0; c < result.changes.count; c++)
        ck_assert_int_eq(sd_change_list_add(changes, &result.changes.items[c]), SD_OK);
    sd_apply_result_free(&result);
    free(items);
}

START_TEST(another_message_of_an_event_publishes_nothing)
{
    fx_events_t e = {0};
    fx_create(&e, "c1", "t1", "image_analysis", "s1", 10);
    fx_create(&e, "c2", "t2", "scenario_generation", "s2", 10);
    fx_terminal(&e, "x2", "task.failed", "t2", "scenario_generation", 20);
    fx_create(&e, "c3", "t3", "scenario_generation", "s3", 10);
    fx_save(&e, "v3", "s3", 20);
    sd_store_t *store = fx_store_open(case_name("twice"), TTL);
    sd_change_list_t first = {0}, copies = {0}, again = {0};
    apply_at(store, &e, 0, &first);
    ck_assert_uint_gt(first.count, 2);
    apply_at(store, &e, 100, &copies); /* the same events at other offsets */
    ck_assert_msg(copies.count == 0, "a second message of an event re-published %zu changes",
                  copies.count);
    apply_at(store, &e, 0, &again); /* the first messages, redelivered */
    /* each session's latest change, again */
    size_t sessions = 0;
    for (size_t k = 0; k < first.count; k++) {
        const sd_change_t *latest = &first.items[k];
        int is_latest = 1;
        for (size_t j = k + 1; j < first.count; j++)
            is_latest &= strcmp(first.items[j].session.task_id, latest->session.task_id) != 0;
        if (!is_latest)
            continue;
        sessions++;
        char *want = fx_change_json(latest), *got = NULL;
        for (size_t i = 0; i < again.count && !got; i++)
            if (strcmp(again.items[i].session.task_id, latest->session.task_id) == 0)
                got = fx_change_json(&again.items[i]);
        ck_assert_msg(got != NULL, "%s: its latest change was not re-published",
                      latest->session.task_id);
        ck_assert_str_eq(got, want);
        free(got);
        free(want);
    }
    ck_assert_uint_eq(again.count, sessions);
    fx_expect_model(store, &e, NOW, TTL, "one event, two messages");
    sd_change_list_free(&first);
    sd_change_list_free(&copies);
    sd_change_list_free(&again);
    sd_store_close(store);
    fx_events_free(&e);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, every_rule_in_one_batch_and_one_by_one);
    tcase_add_test(tc, published_changes_tell_each_story);
    tcase_add_test(tc, reads_by_task_short_id_and_type);
    tcase_add_test(tc, random_sets_match_the_model);
    tcase_add_test(tc, redelivery_repeats_the_latest_change_exactly);
    tcase_add_test(tc, another_message_of_an_event_publishes_nothing);
    tcase_add_test(tc, two_connections_applying_overlapping_batches);
    tcase_add_test(tc, a_sweep_finds_each_due_session_once);
    tcase_add_test(tc, an_expiry_event_expires_only_what_is_due);
}

int main(int argc, char **argv)
{
    return fx_store_suite_main(argc, argv, "store_contract", "contract", 600, add_tests);
}

#define _POSIX_C_SOURCE 200809L
#include "sessiond/workload.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/timefmt.h"

#define SECOND INT64_C(1000)
#define HOUR (3600 * SECOND)
#define DAY (24 * HOUR)

/* splitmix64: tiny, fast and good enough to shuffle test data. */
void sd_rng_seed(sd_rng_t *rng, uint64_t seed) { rng->state = seed; }

uint64_t sd_rng_next(sd_rng_t *rng)
{
    uint64_t z = (rng->state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

uint64_t sd_rng_below(sd_rng_t *rng, uint64_t bound) { return sd_rng_next(rng) % bound; }

int sd_rng_chance(sd_rng_t *rng, unsigned percent) { return sd_rng_below(rng, 100) < percent; }

typedef struct weighted {
    const char *name;
    unsigned weight;
} weighted_t;

static const weighted_t task_types[] = {
    {"scenario_generation", 30}, {"image_analysis", 12}, {"video_generation", 12},
    {"finalize_short", 8},       {"save_scenario", 5},   {"content_analysis", 8},
    {"data_extraction", 8},      {"scraping", 12},       {"audio_mastering", 5},
};

static const char *pick_type(sd_rng_t *rng)
{
    unsigned total = 0;
    for (size_t i = 0; i < sizeof task_types / sizeof task_types[0]; i++)
        total += task_types[i].weight;
    unsigned r = (unsigned)sd_rng_below(rng, total);
    for (size_t i = 0;; i++) {
        if (r < task_types[i].weight)
            return task_types[i].name;
        r -= task_types[i].weight;
    }
}

/* Id n of one kind, named by its sequential form (name, e.g. "task-%06zu"),
 * in p's id shape.  UUIDs come from a hash of the seed, prefix, kind and n,
 * not from the generator's stream, so both shapes draw the same events. */
static void make_id(const sd_workload_params_t *p, const char *name, size_t n, char *out,
                    size_t cap)
{
    if (p->ids == SD_IDS_SEQUENTIAL) {
        char tail[48];
        snprintf(tail, sizeof tail, name, n);
        snprintf(out, cap, "%s%s", p->id_prefix, tail);
        return;
    }
    sd_rng_t h;
    uint64_t salt = 0;
    for (const char *c = name; *c; c++)
        salt = salt * 131 + (unsigned char)*c;
    for (const char *c = p->id_prefix; *c; c++)
        salt = salt * 131 + (unsigned char)*c;
    sd_rng_seed(&h, p->seed ^ (salt << 40) ^ ((uint64_t)n * UINT64_C(0xD6E8FEB86659FD93)));
    uint64_t hi = sd_rng_next(&h), lo = sd_rng_next(&h);
    hi = (hi & ~UINT64_C(0xF000)) | UINT64_C(0x4000);       /* version 4 */
    lo = (lo & ~(UINT64_C(3) << 62)) | (UINT64_C(2) << 62); /* variant 10 */
    snprintf(out, cap, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32),
             (unsigned)(hi >> 16) & 0xFFFF, (unsigned)hi & 0xFFFF, (unsigned)(lo >> 48),
             (unsigned long long)(lo & UINT64_C(0xFFFFFFFFFFFF)));
}

typedef struct gen {
    const sd_workload_params_t *p;
    sd_rng_t rng;
    sd_workload_t *out;
    size_t next_event;
    int failed;
} gen_t;

static void push_line(gen_t *g, char *json, int valid, const char *key)
{
    sd_workload_t *w = g->out;
    if (!json) {
        g->failed = 1;
        return;
    }
    if (w->count == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 1024;
        sd_workload_line_t *n = realloc(w->lines, ncap * sizeof *n);
        if (!n) {
            free(json);
            g->failed = 1;
            return;
        }
        w->lines = n;
        w->cap = ncap;
    }
    char *k = key ? strdup(key) : NULL;
    if (key && !k) {
        free(json);
        g->failed = 1;
        return;
    }
    w->lines[w->count++] = (sd_workload_line_t){json, valid, k};
}

static void emit(gen_t *g, json_t *ev, const char *key)
{
    char id[96];
    make_id(g->p, "evt-%08zu", g->next_event++, id, sizeof id);
    json_object_set_new(ev, "event_id", json_string(id));
    push_line(g, json_dumps(ev, JSON_COMPACT), 1, key);
    json_decref(ev);
}

static json_t *time_value(int64_t ms)
{
    char buf[SD_TIME_BUFSZ];
    sd_time_format(ms, buf);
    return json_string(buf);
}

static json_t *base_event(const char *type, int64_t at)
{
    return json_pack("{s:s, s:s, s:o}", "schema", "task-event/v1", "event_type", type,
                     "occurred_at", time_value(at));
}

static void task_event(gen_t *g, const char *type, const char *task_id, const char *task_type,
                       const char *short_id, int64_t at, int with_details)
{
    json_t *ev = base_event(type, at);
    json_object_set_new(ev, "task_id", json_string(task_id));
    if (task_type)
        json_object_set_new(ev, "task_type", json_string(task_type));
    if (short_id)
        json_object_set_new(ev, "short_id", json_string(short_id));
    if (with_details) {
        char user[32];
        snprintf(user, sizeof user, "user-%03u", (unsigned)sd_rng_below(&g->rng, 200));
        if (sd_rng_chance(&g->rng, 80))
            json_object_set_new(ev, "user_id", json_string(user));
        if (sd_rng_chance(&g->rng, 30))
            json_object_set_new(ev, "metadata",
                                json_pack("{s:s, s:i, s:[s,s]}", "lang",
                                          sd_rng_chance(&g->rng, 50) ? "fr" : "en", "attempt",
                                          (int)sd_rng_below(&g->rng, 3) + 1, "tags", "demo",
                                          task_type));
    }
    emit(g, ev, task_id);
}

static void generate_task(gen_t *g, size_t i, size_t n_shorts, int64_t window)
{
    const sd_workload_params_t *p = g->p;
    char task_id[96], short_id[96];
    make_id(p, "task-%06zu", i, task_id, sizeof task_id);
    make_id(p, "short-%05zu", (size_t)sd_rng_below(&g->rng, n_shorts), short_id,
            sizeof short_id);
    const char *type = pick_type(&g->rng);
    int has_short = sd_rng_chance(&g->rng, 95);
    int64_t created = p->now_ms - (int64_t)sd_rng_below(&g->rng, (uint64_t)window);

    task_event(g, "task.created", task_id, type, has_short ? short_id : NULL, created, 1);
    if (sd_rng_chance(&g->rng, 4)) /* a producer retry that minted a new id */
        task_event(g, "task.created", task_id, type, has_short ? short_id : NULL,
                   created + (int64_t)sd_rng_below(&g->rng, 2 * HOUR) - HOUR, 1);

    int terminals = sd_rng_chance(&g->rng, 75) +
                    (!strcmp(type, "scenario_generation") && sd_rng_chance(&g->rng, 20));
    int64_t at = created;
    for (int t = 0; t < terminals; t++) {
        unsigned r = (unsigned)sd_rng_below(&g->rng, 100);
        const char *end = r < 70 ? "task.completed" : r < 90 ? "task.failed" : "task.cancelled";
        at += SECOND + (int64_t)sd_rng_below(&g->rng, 6 * HOUR);
        task_event(g, end, task_id, type, NULL, at, 0);
    }
    if (sd_rng_chance(&g->rng, 3)) {
        json_t *ev = base_event("session.delete_requested",
                                created + (int64_t)sd_rng_below(&g->rng, DAY));
        json_object_set_new(ev, "task_id", json_string(task_id));
        emit(g, ev, task_id);
    }
}

static void generate_saves(gen_t *g, size_t n_shorts, int64_t window)
{
    for (size_t s = 0; s < n_shorts; s++) {
        if (!sd_rng_chance(&g->rng, 60))
            continue;
        char short_id[96];
        make_id(g->p, "short-%05zu", s, short_id, sizeof short_id);
        int saves = 1 + sd_rng_chance(&g->rng, 30);
        for (int k = 0; k < saves; k++) {
            json_t *ev = base_event("scenario.saved",
                                    g->p->now_ms - (int64_t)sd_rng_below(&g->rng, (uint64_t)window));
            json_object_set_new(ev, "short_id", json_string(short_id));
            emit(g, ev, short_id);
        }
    }
}

/* Each is wrong in a different way a real producer gets wrong. */
static void generate_invalid(gen_t *g, size_t n)
{
    static const char *const bad[] = {
        "{\"event_id\":\"%sbad-%zu\",\"event_type\":\"task.created\",\"occurred_at\":",
        "{\"event_type\":\"task.created\",\"task_id\":\"x-%s%zu\",\"task_type\":\"image_analysis\",\"occurred_at\":\"2026-01-01T00:00:00Z\"}",
        "{\"event_id\":\"%sbad-%zu\",\"event_type\":\"task.started\",\"task_id\":\"x\",\"occurred_at\":\"2026-01-01T00:00:00Z\"}",
        "{\"event_id\":\"%sbad-%zu\",\"event_type\":\"task.completed\",\"task_id\":\"x\",\"occurred_at\":\"2026-02-30T00:00:00Z\"}",
        "{\"event_id\":\"%sbad-%zu\",\"event_type\":\"task.failed\",\"task_id\":\"x\",\"occurred_at\":\"2026-01-01T00:00:00Z\"}",
        "[\"%s\", %zu]",
    };
    for (size_t i = 0; i < n; i++) {
        char buf[512];
        snprintf(buf, sizeof buf, bad[i % (sizeof bad / sizeof bad[0])], g->p->id_prefix, i);
        push_line(g, strdup(buf), 0, NULL);
    }
}

sd_err_t sd_workload_generate(const sd_workload_params_t *p, sd_workload_t *out,
                              sd_error_t *err)
{
    memset(out, 0, sizeof *out);
    gen_t g = {.p = p, .out = out};
    sd_rng_seed(&g.rng, p->seed);
    size_t n_shorts = p->tasks / 4 + 1;
    /* 10 days at the default TTL: about a third of the sessions expire. */
    int64_t window = p->ttl_ms + p->ttl_ms * 3 / 7;
    for (size_t i = 0; i < p->tasks && !g.failed; i++)
        generate_task(&g, i, n_shorts, window);
    generate_saves(&g, n_shorts, window);
    generate_invalid(&g, out->count * p->invalid_percent / 100);
    if (g.failed) {
        sd_workload_free(out);
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory generating a workload");
    }
    for (size_t i = out->count; i > 1; i--) {
        size_t j = (size_t)sd_rng_below(&g.rng, i);
        sd_workload_line_t tmp = out->lines[i - 1];
        out->lines[i - 1] = out->lines[j];
        out->lines[j] = tmp;
    }
    return SD_OK;
}

void sd_workload_free(sd_workload_t *w)
{
    for (size_t i = 0; i < w->count; i++) {
        free(w->lines[i].json);
        free(w->lines[i].key);
    }
    free(w->lines);
    memset(w, 0, sizeof *w);
}

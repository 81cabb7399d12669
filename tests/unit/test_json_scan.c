/* The fast reader (sd_json_scan_object) against jansson, its reference:
 * whatever the reader vouches for, jansson must read to the same members,
 * in the same order, with the same values.  Inputs are seeded mutations of
 * workload events, so a failure names its seed and case to replay. */
#define _DEFAULT_SOURCE
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "sessiond/json_scan.h"
#include "sessiond/workload.h"

#define SEED 20261121u
#define CASES 60000

typedef struct seen {
    char *key[80];
    sd_jvalue_t value[80];
    size_t count;
} seen_t;

static int collect(void *arg, const char *key, size_t key_len, const sd_jvalue_t *v)
{
    seen_t *s = arg;
    ck_assert_uint_lt(s->count, 80);
    s->key[s->count] = strndup(key, key_len);
    s->value[s->count++] = *v;
    return 0;
}

static void seen_free(seen_t *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->key[i]);
    s->count = 0;
}

static const char *kind_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "number";
    case JSON_REAL: return "real";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "?";
}

static const char *const scan_kind[] = {"string", "number", "object", "array",
                                        "true", "false", "null"};

/* Checks one input; returns 1 when the reader vouched for it. */
static int agrees(const char *text, size_t len, const char *label)
{
    seen_t seen = {0};
    int vouched = sd_json_scan_object(text, len, collect, &seen);
    if (!vouched) {
        seen_free(&seen);
        return 0;
    }
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    ck_assert_msg(root && json_is_object(root), "%s: vouched for what jansson rejects (%s): %.*s",
                  label, root ? "not an object" : jerr.text, (int)len, text);
    ck_assert_msg(json_object_size(root) == seen.count, "%s: member count: %.*s", label,
                  (int)len, text);
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        ck_assert_str_eq(key, seen.key[i]);
        sd_jvalue_t *s = &seen.value[i];
        ck_assert_msg(strcmp(kind_of(v), scan_kind[s->kind]) == 0, "%s: %s is %s, not %s", label,
                      key, kind_of(v), scan_kind[s->kind]);
        if (json_is_string(v)) {
            ck_assert_uint_eq(json_string_length(v), s->len);
            ck_assert(memcmp(json_string_value(v), s->text, s->len) == 0);
        } else {
            char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            char *got = calloc(1, s->len + 1);
            sd_json_copy_compact(s, got);
            ck_assert_uint_eq(strlen(got), s->len - s->blanks);
            ck_assert_msg(strcmp(want, got) == 0, "%s: %s: jansson %s, scanner %s", label, key,
                          want, got);
            free(want);
            free(got);
        }
        i++;
    }
    json_decref(root);
    seen_free(&seen);
    return 1;
}

START_TEST(vouches_only_for_what_jansson_reads_the_same)
{
    static const char *const fragments[] = {
        "\"metadata\":{\"a\":1,\"a\":2},", "\"x\":-0,", "\"x\":1e5,", "\"x\":0.5,",
        "\"x\":123456789012345678,", "\"x\":1234567890123456789,", "\"x\":-123456789012345678,",
        "\"x\":\"\\u00e9\",", "\"\xc3\xa9\":\"\xc3\xbc\",", "\"x\":\"\xed\xa0\x80\",",
        "\"x\":\"\xf4\x90\x80\x80\",", "\"x\":\"\xc0\xaf\",", "\"x\":[ 1 , { \"y\" : [ ] } ],",
        "\"x\":{},", "\"x\":[],", "\"x\":true,", "\"x\":false,", "\"x\":null,", "\"x\":tru,",
        "\"metadata\":{ \"a\" : \"b c\" ,\n\t\"d\":[1, 2]},", "\"event_id\":\"dup\",",
        "\"x\":\"tab\there\",", "\"x\":01,", "\"x\":-,", "\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],",
    };
    static const unsigned char bytes[] = {'"', '\\', '{', '}', '[', ']', ',', ':', '-', '0',
                                          '1', 'e', '.', ' ', '\n', '\t', 0x01, 0x7f, 0xC3,
                                          0xA9, 0xED, 0xA0, 0x80, 0xF4, 0x90, 0xFF, 'n', 't',
                                          'f', 0};
    sd_workload_params_t p = {.seed = SEED, .tasks = 400, .now_ms = INT64_C(1790000000000),
                              .ttl_ms = INT64_C(604800000), .invalid_percent = 5,
                              .id_prefix = ""};
    sd_workload_t w;
    sd_error_t err;
    ck_assert_int_eq(sd_workload_generate(&p, &w, &err), SD_OK);
    sd_rng_t rng;
    sd_rng_seed(&rng, SEED);
    size_t vouched = 0, unchanged = 0;
    char buf[4096], label[64];
    for (int n = 0; n < CASES; n++) {
        const char *line = w.lines[sd_rng_below(&rng, w.count)].json;
        size_t len = strlen(line);
        ck_assert_uint_lt(len + 256, sizeof buf);
        memcpy(buf, line, len);
        int mutations = (int)sd_rng_below(&rng, 4); /* 0: the line as it is */
        for (int m = 0; m < mutations && len > 2 && len + 200 < sizeof buf; m++) {
            size_t at = sd_rng_below(&rng, len);
            switch (sd_rng_below(&rng, 5)) {
            case 0: /* a byte replaced */
                buf[at] = (char)bytes[sd_rng_below(&rng, sizeof bytes)];
                break;
            case 1: /* a byte removed */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            case 2: /* a byte inserted */
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = (char)bytes[sd_rng_below(&rng, sizeof bytes)];
                len++;
                break;
            default: { /* a member inserted first, or anywhere */
                const char *f = fragments[sd_rng_below(&rng, sizeof fragments / sizeof *fragments)];
                size_t flen = strlen(f);
                at = sd_rng_chance(&rng, 70) ? 1 : at;
                memmove(buf + at + flen, buf + at, len - at);
                memcpy(buf + at, f, flen);
                len += flen;
            }
            }
        }
        snprintf(label, sizeof label, "seed %u case %d", SEED, n);
        int ok = agrees(buf, len, label);
        vouched += ok;
        unchanged += ok && mutations == 0;
    }
    sd_workload_free(&w);
    /* The reader must not decline everything, nor vouch for everything. */
    ck_assert_uint_gt(unchanged, CASES / 8);
    ck_assert_uint_gt(vouched, unchanged);
    ck_assert_uint_lt(vouched, CASES * 9 / 10);
}
END_TEST

START_TEST(declines_what_it_leaves_to_jansson)
{
    static const char *const declined[] = {
        "", "[]", "\"x\"", "{", "{\"a\":1,\"a\":2}", "{\"a\":{\"b\":1,\"b\":1}}",
        "{\"a\":\"\\n\"}", "{\"a\":1.5}", "{\"a\":-0}", "{\"a\":1e3}",
        "{\"a\":1234567890123456789}", "{\"a\":\"\x01\"}", "{\"a\":\"\xc3\"}",
        "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":1} x", "{\"a\":01}", "{'a':1}", "{\"a\":1,}",
    };
    for (size_t i = 0; i < sizeof declined / sizeof *declined; i++) {
        seen_t seen = {0};
        ck_assert_msg(!sd_json_scan_object(declined[i], strlen(declined[i]), collect, &seen),
                      "vouched for %s", declined[i]);
        seen_free(&seen);
    }
    const char *spaced = " {\"a\" : [1, {\"b\":\"\xf0\x9f\x98\x80\"}] ,\"c\":null}\n";
    ck_assert(agrees(spaced, strlen(spaced), "spaces"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json_scan");
    TCase *tc = tcase_create("json_scan");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, vouches_only_for_what_jansson_reads_the_same);
    tcase_add_test(tc, declines_what_it_leaves_to_jansson);
    suite_add_tcase(s, tc);
    return fx_run(s);
}

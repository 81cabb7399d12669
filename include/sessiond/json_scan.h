/* A fast reader for the common shape of an event: one JSON object whose
 * strings need no unescaping.  It either vouches for the text -- valid
 * JSON (RFC 8259) that jansson, with JSON_REJECT_DUPLICATES, would read to
 * exactly the values it reports -- or declines, and the caller hands the
 * text to jansson, which decides and explains.  It declines anything
 * unusual rather than handle it: escapes in strings, real numbers, "-0",
 * integers of 19 digits or more, objects of over 64 members, nesting
 * deeper than 32.  It never rejects: errors are jansson's to report.
 *
 * Parsing an event with jansson builds a tree of allocations only to read
 * nine fields from it: about three microseconds an event, the largest cost
 * of the core.  This reader allocates nothing. */
#ifndef SESSIOND_JSON_SCAN_H
#define SESSIOND_JSON_SCAN_H

#include <stddef.h>

typedef enum sd_jkind {
    SD_JSTRING,
    SD_JNUMBER, /* an integer that fits int64 */
    SD_JOBJECT,
    SD_JARRAY,
    SD_JTRUE,
    SD_JFALSE,
    SD_JNULL,
} sd_jkind_t;

typedef struct sd_jvalue {
    sd_jkind_t kind;
    /* Strings: the characters between the quotes, which are the value.
     * Anything else: the value's JSON text. */
    const char *text;
    size_t len;
    /* Whitespace bytes outside strings within text: removing them gives
     * the compact JSON that jansson's JSON_COMPACT writes. */
    size_t blanks;
} sd_jvalue_t;

/* Called for each member of the top-level object, in order; a non-zero
 * return stops the scan, which then declines. */
typedef int (*sd_jmember_fn)(void *arg, const char *key, size_t key_len,
                             const sd_jvalue_t *value);

/* 1 when the scanner vouches for buf (and fn saw every member), 0 when
 * the text must go to jansson. */
int sd_json_scan_object(const char *buf, size_t len, sd_jmember_fn fn, void *arg);

/* Copies a container's text without its blanks (value->len -
 * value->blanks bytes). */
void sd_json_copy_compact(const sd_jvalue_t *value, char *out);

#endif

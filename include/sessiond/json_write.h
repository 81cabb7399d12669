/* Writing JSON text into a growing buffer, for messages whose shape is
 * fixed (session changes).  Building a jansson tree and dumping it cost
 * five microseconds per change, more than everything else an event costs;
 * writing the text directly costs a tenth of that.  Strings are escaped as
 * jansson escapes them, so the bytes are the same either way. */
#ifndef SESSIOND_JSON_WRITE_H
#define SESSIOND_JSON_WRITE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sd_jbuf {
    char *data; /* NUL-terminated; owned until sd_jbuf_take() */
    size_t len, cap;
    int failed; /* an allocation failed: everything after it is dropped */
} sd_jbuf_t;

/* Appends len bytes as they are (literal syntax, trusted JSON text). */
void sd_jbuf_raw(sd_jbuf_t *b, const char *text, size_t len);
/* A NUL-terminated literal as it is. */
void sd_jbuf_lit(sd_jbuf_t *b, const char *text);
/* A quoted JSON string of UTF-8 text; NULL writes null. */
void sd_jbuf_string(sd_jbuf_t *b, const char *s);
void sd_jbuf_int(sd_jbuf_t *b, int64_t v);
/* A quoted RFC 3339 UTC timestamp (sd_time_format). */
void sd_jbuf_time(sd_jbuf_t *b, int64_t ms);

/* Hands the text to the caller (free() it); NULL if an allocation failed,
 * in which case the buffer is released. */
char *sd_jbuf_take(sd_jbuf_t *b, size_t *len);

#endif

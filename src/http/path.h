/* URL paths as the client sent them (internal to src/http). */
#ifndef SESSIOND_HTTP_PATH_H
#define SESSIOND_HTTP_PATH_H

#include <stddef.h>

/* Percent-decodes one path segment of raw_len bytes into out (cap bytes,
 * NUL-terminated).  Returns its length, or -1 when it has a malformed
 * escape, decodes to something that is not UTF-8 or holds a NUL, or does
 * not fit. */
long sd_http_decode_segment(const char *raw, size_t raw_len, char *out, size_t cap);

/* Whether s (len bytes) is UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF). */
int sd_http_utf8(const char *s, size_t len);

#endif

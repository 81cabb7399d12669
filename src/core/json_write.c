#include "sessiond/json_write.h"

#include <stdlib.h>
#include <string.h>

#include "sessiond/timefmt.h"

static int reserve(sd_jbuf_t *b, size_t more)
{
    if (b->failed)
        return -1;
    if (b->len + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown) {
        b->failed = 1;
        return -1;
    }
    b->data = grown;
    b->cap = cap;
    return 0;
}

void sd_jbuf_raw(sd_jbuf_t *b, const char *text, size_t len)
{
    if (reserve(b, len) != 0)
        return;
    memcpy(b->data + b->len, text, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void sd_jbuf_lit(sd_jbuf_t *b, const char *text)
{
    sd_jbuf_raw(b, text, strlen(text));
}

void sd_jbuf_string(sd_jbuf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF"; /* jansson's case */
    if (!s) {
        sd_jbuf_raw(b, "null", 4);
        return;
    }
    size_t n = strlen(s);
    /* Worst case: every byte a six-byte \u00XX escape, plus the quotes. */
    if (reserve(b, 6 * n + 2) != 0)
        return;
    char *out = b->data + b->len;
    *out++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        default:
            memcpy(out, "u00", 3);
            out[3] = hex[c >> 4];
            out[4] = hex[c & 0xF];
            out += 5;
        }
    }
    *out++ = '"';
    *out = '\0';
    b->len = (size_t)(out - b->data);
}

void sd_jbuf_int(sd_jbuf_t *b, int64_t v)
{
    char digits[24], *p = digits + sizeof digits;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    sd_jbuf_raw(b, p, (size_t)(digits + sizeof digits - p));
}

void sd_jbuf_time(sd_jbuf_t *b, int64_t ms)
{
    char text[SD_TIME_BUFSZ + 2];
    text[0] = '"';
    size_t n = sd_time_format(ms, text + 1);
    text[n + 1] = '"';
    sd_jbuf_raw(b, text, n + 2);
}

char *sd_jbuf_take(sd_jbuf_t *b, size_t *len)
{
    char *text = b->failed ? NULL : b->data;
    if (b->failed)
        free(b->data);
    else if (!text)
        text = calloc(1, 1);
    if (len)
        *len = text ? b->len : 0;
    *b = (sd_jbuf_t){0};
    return text;
}

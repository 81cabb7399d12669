#include "sessiond/json_scan.h"

#include <string.h>

#define MAX_DEPTH 32
#define MAX_MEMBERS 64
#define MAX_INT_DIGITS 18 /* always within int64, whatever the digits */

typedef struct scan {
    const unsigned char *p, *end;
    size_t blanks;
    int depth;
} scan_t;

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_blanks(scan_t *s)
{
    while (s->p < s->end && is_blank(*s->p)) {
        s->p++;
        s->blanks++;
    }
}

static int at(const scan_t *s, unsigned char c)
{
    return s->p < s->end && *s->p == c;
}

static int in(unsigned char c, unsigned char lo, unsigned char hi)
{
    return c >= lo && c <= hi;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629, table 3-7 of
 * Unicode: no overlongs, no surrogates, nothing past U+10FFFF), else 0. */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end)
{
    size_t avail = (size_t)(end - p);
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (in(c, 0xC2, 0xDF))
        n = 2;
    else if (in(c, 0xE0, 0xEF)) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (in(c, 0xF0, 0xF4)) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (avail < n || !in(p[1], lo, hi))
        return 0;
    for (size_t i = 2; i < n; i++)
        if (!in(p[i], 0x80, 0xBF))
            return 0;
    return n;
}

static int scan_string(scan_t *s, const char **text, size_t *len)
{
    const unsigned char *start = ++s->p; /* past the quote */
    while (s->p < s->end) {
        unsigned char c = *s->p;
        if (c == '"') {
            *text = (const char *)start;
            *len = (size_t)(s->p - start);
            s->p++;
            return 0;
        }
        if (c == '\\' || c < 0x20)
            return -1; /* escapes are jansson's; raw control bytes are invalid */
        if (c < 0x80) {
            s->p++;
            continue;
        }
        size_t n = utf8_sequence(s->p, s->end);
        if (!n)
            return -1;
        s->p += n;
    }
    return -1;
}

static int scan_integer(scan_t *s)
{
    const unsigned char *start = s->p;
    if (at(s, '-'))
        s->p++;
    const unsigned char *digits = s->p;
    while (s->p < s->end && in(*s->p, '0', '9'))
        s->p++;
    size_t n = (size_t)(s->p - digits);
    if (n == 0 || n > MAX_INT_DIGITS || (n > 1 && digits[0] == '0'))
        return -1;
    if (digits > start && n == 1 && digits[0] == '0')
        return -1; /* "-0": jansson writes it back as 0 */
    if (at(s, '.') || at(s, 'e') || at(s, 'E'))
        return -1; /* reals: jansson re-formats them */
    return 0;
}

static int scan_literal(scan_t *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static int scan_value(scan_t *s, sd_jvalue_t *v);

static int scan_container(scan_t *s, sd_jmember_fn fn, void *arg)
{
    unsigned char close = *s->p == '{' ? '}' : ']';
    int object = close == '}';
    struct {
        const char *text;
        size_t len;
    } keys[MAX_MEMBERS];
    size_t count = 0;

    if (++s->depth > MAX_DEPTH)
        return -1;
    s->p++;
    skip_blanks(s);
    if (at(s, close)) {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        skip_blanks(s);
        if (object) {
            if (!at(s, '"') || scan_string(s, &key, &key_len) != 0 || count == MAX_MEMBERS)
                return -1;
            for (size_t i = 0; i < count; i++)
                if (keys[i].len == key_len && memcmp(keys[i].text, key, key_len) == 0)
                    return -1; /* a duplicate: jansson rejects it */
            keys[count].text = key;
            keys[count++].len = key_len;
            skip_blanks(s);
            if (!at(s, ':'))
                return -1;
            s->p++;
            skip_blanks(s);
        }
        size_t blanks_before = s->blanks;
        sd_jvalue_t v;
        if (scan_value(s, &v) != 0)
            return -1;
        v.blanks = s->blanks - blanks_before;
        if (fn && fn(arg, key, key_len, &v) != 0)
            return -1;
        skip_blanks(s);
        if (at(s, ',')) {
            s->p++;
            continue;
        }
        if (!at(s, close))
            return -1;
        s->p++;
        s->depth--;
        return 0;
    }
}

static int scan_value(scan_t *s, sd_jvalue_t *v)
{
    if (s->p >= s->end)
        return -1;
    const unsigned char *start = s->p;
    int rc;
    switch (*s->p) {
    case '"':
        v->kind = SD_JSTRING;
        return scan_string(s, &v->text, &v->len);
    case '{':
        v->kind = SD_JOBJECT;
        rc = scan_container(s, NULL, NULL);
        break;
    case '[':
        v->kind = SD_JARRAY;
        rc = scan_container(s, NULL, NULL);
        break;
    case 't':
        v->kind = SD_JTRUE;
        rc = scan_literal(s, "true");
        break;
    case 'f':
        v->kind = SD_JFALSE;
        rc = scan_literal(s, "false");
        break;
    case 'n':
        v->kind = SD_JNULL;
        rc = scan_literal(s, "null");
        break;
    default:
        v->kind = SD_JNUMBER;
        rc = scan_integer(s);
    }
    v->text = (const char *)start;
    v->len = (size_t)(s->p - start);
    return rc;
}

int sd_json_scan_object(const char *buf, size_t len, sd_jmember_fn fn, void *arg)
{
    scan_t s = {(const unsigned char *)buf, (const unsigned char *)buf + len, 0, 0};
    skip_blanks(&s);
    if (!at(&s, '{') || scan_container(&s, fn, arg) != 0)
        return 0;
    skip_blanks(&s);
    return s.p == s.end;
}

void sd_json_copy_compact(const sd_jvalue_t *value, char *out)
{
    if (!value->blanks) {
        memcpy(out, value->text, value->len);
        return;
    }
    int in_string = 0;
    for (size_t i = 0; i < value->len; i++) {
        char c = value->text[i];
        if (c == '"')
            in_string = !in_string; /* no escapes inside: a quote always toggles */
        else if (!in_string && is_blank((unsigned char)c))
            continue;
        *out++ = c;
    }
}

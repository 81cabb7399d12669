#include "path.h"

#include <stdint.h>

static int hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int sd_http_utf8(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p++;
        if (c < 0x80)
            continue;
        size_t more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
        if (more == 0 || c > 0xF4 || (size_t)(end - p) < more)
            return 0;
        uint32_t cp = c & (0x3F >> more);
        for (size_t i = 0; i < more; i++, p++) {
            if ((*p & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (*p & 0x3F);
        }
        static const uint32_t least[] = {0, 0x80, 0x800, 0x10000};
        if (cp < least[more] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
    }
    return 1;
}

long sd_http_decode_segment(const char *raw, size_t raw_len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < raw_len; i++) {
        char c = raw[i];
        if (c == '%') {
            if (i + 2 >= raw_len)
                return -1;
            int h1 = hex(raw[i + 1]), h2 = hex(raw[i + 2]);
            if (h1 < 0 || h2 < 0)
                return -1;
            c = (char)(h1 << 4 | h2);
            i += 2;
        }
        if (c == '\0' || n + 1 >= cap)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return sd_http_utf8(out, n) ? (long)n : -1;
}

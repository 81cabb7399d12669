#define _POSIX_C_SOURCE 200809L /* getline */
#include "sessiond/jsonl.h"

#include <string.h>

ssize_t sd_jsonl_next(FILE *in, char **line, size_t *cap, long *lineno)
{
    ssize_t got;
    while ((got = getline(line, cap, in)) >= 0) {
        size_t len = (size_t)got;
        ++*lineno;
        if (len && (*line)[len - 1] == '\n')
            len--;
        if (len && (*line)[len - 1] == '\r')
            len--;
        if (strspn(*line, " \t\r\n") < len)
            return (ssize_t)len;
    }
    return -1;
}

/* Reading JSON-lines files: one event per line, blank lines skipped. */
#ifndef SESSIOND_JSONL_H
#define SESSIOND_JSONL_H

#include <stdio.h>
#include <sys/types.h>

/* The next non-blank line of in, without its "\n" or "\r\n", in *line
 * (a getline(3) buffer the caller frees).  *lineno counts every line read,
 * blank ones too.  Returns its length, or -1 at the end or on a read
 * error (ferror(in) tells which). */
ssize_t sd_jsonl_next(FILE *in, char **line, size_t *cap, long *lineno);

#endif

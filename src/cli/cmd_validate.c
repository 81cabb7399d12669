#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/commands.h"
#include "sessiond/event.h"
#include "sessiond/jsonl.h"

static const char help[] =
    "usage: sessiond validate FILE... | -\n"
    "\n"
    "Checks JSON-lines task events (one event per line, blank lines skipped)\n"
    "against schemas/task-event.v1.json.  Prints 'line N: FIELD: REASON' for\n"
    "each invalid line (prefixed with 'FILE: ' when several files are given)\n"
    "and a count on stderr.\n"
    "\n"
    "exit status: 0 all valid, 1 some invalid, 2 usage or read error\n";

typedef struct tally {
    long events;
    long invalid;
} tally_t;

/* Returns 0, or -1 after reporting a read error. */
static int validate_stream(FILE *in, const char *prefix, tally_t *tally)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;

    while ((got = sd_jsonl_next(in, &line, &cap, &lineno)) >= 0) {
        size_t len = (size_t)got;
        tally->events++;

        sd_event_t ev;
        sd_error_t err;
        if (sd_event_parse(line, len, &ev, &err) == SD_OK) {
            sd_event_clear(&ev);
            continue;
        }
        tally->invalid++;
        char text[SD_ERROR_TEXT_BUFSZ];
        printf("%sline %ld: %s\n", prefix, lineno, sd_error_text(&err, text));
    }
    int failed = ferror(in);
    free(line);
    return failed ? -1 : 0;
}

int sd_cmd_validate(int argc, char **argv)
{
    if (argc < 2) {
        fputs(help, stderr);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(help, stdout);
            return 0;
        }

    tally_t tally = {0, 0};
    int io_failed = 0;
    for (int i = 1; i < argc; i++) {
        const char *path = argv[i];
        int from_stdin = strcmp(path, "-") == 0;
        FILE *in = from_stdin ? stdin : fopen(path, "rb");
        if (!in) {
            fprintf(stderr, "sessiond validate: cannot open %s: %s\n", path,
                    strerror(errno));
            io_failed = 1;
            continue;
        }
        char prefix[4096] = "";
        if (argc > 2)
            snprintf(prefix, sizeof prefix, "%s: ", path);
        if (validate_stream(in, prefix, &tally) != 0) {
            fprintf(stderr, "sessiond validate: error reading %s\n", path);
            io_failed = 1;
        }
        if (!from_stdin)
            fclose(in);
    }
    fflush(stdout); /* the count follows the reasons, also when both go to a pipe */
    fprintf(stderr, "sessiond validate: %ld events, %ld invalid\n",
            tally.events, tally.invalid);
    if (io_failed)
        return 2;
    return tally.invalid ? 1 : 0;
}

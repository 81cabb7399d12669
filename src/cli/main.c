#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond/commands.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"bench", sd_cmd_bench, "measure the core, the store and the pipeline on this machine"},
    {"demo", sd_cmd_demo, "see it work: embedded broker, SQLite, a workload, a checked result"},
    {"run", sd_cmd_run, "the daemon: Kafka events in, sessions in the store, changes out"},
    {"replay", sd_cmd_replay, "re-consume the input topics into the store, then stop"},
    {"validate", sd_cmd_validate, "check a JSON-lines file of task events"},
    {"sessions", sd_cmd_sessions, "print sessions of a short_id or a task from the store"},
    {"publish", sd_cmd_publish, "validate and publish JSON-lines task events"},
    {"tail", sd_cmd_tail, "print session changes as JSON lines"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: sessiond COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'sessiond COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    /* librdkafka's broker threads allocate fetch buffers that the pipeline's
     * thread frees; with glibc's arena per thread the freed memory stays
     * spread over many arenas.  One arena: a fifth less peak memory under
     * `sessiond bench`, no loss of throughput.  And glibc raises its mmap
     * threshold each time it frees a mapped block, after which the fetch
     * responses (up to 2 MiB) come from the heap and leave holes there; a
     * fixed threshold keeps them mapped, returned whole when freed (another
     * 5 MiB of peak).  The MALLOC_* variables still win; a refusal leaves
     * glibc's default, which works the same, larger. */
#if defined(M_ARENA_MAX) && defined(M_MMAP_THRESHOLD)
    if (!getenv("MALLOC_ARENA_MAX"))
        (void)mallopt(M_ARENA_MAX, 1); /* refused only by allocators without arenas (ASan's) */
    if (!getenv("MALLOC_MMAP_THRESHOLD_"))
        (void)mallopt(M_MMAP_THRESHOLD, 256 * 1024); /* likewise */
#endif
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("sessiond %s\n", SESSIOND_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "sessiond: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

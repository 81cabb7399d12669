/* sessiond bench: the embedded broker in a process of its own, loaded
 * with the workload. */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sessiond/kafka.h"


/* Starts the broker with the bench's topics and publishes the workload;
 * *kafka is the caller's to stop, even on failure. */
static sd_err_t start_loaded(chunks_t c, size_t events, sd_embedded_t **kafka, sd_error_t *err)
{
    sd_err_t rc = sd_embedded_start(3, kafka, err);
    const char *topics[] = {"task-events", "session-changes", "task-events.dlq"};
    for (size_t i = 0; rc == SD_OK && i < 3; i++)
        rc = sd_embedded_create_topic(*kafka, topics[i], i == 0 ? c.partitions : 8, err);
    if (rc != SD_OK)
        return rc;
    bench_target_t t = {.kafka = {sd_embedded_bootstraps(*kafka), NULL, 0, 1}};
    bench_target_name(&t, 0);
    return bench_publish(&t, c, events, err);
}

/* The child: start the broker, publish, report the bootstrap servers (or
 * "!" and the error) on report_fd, then hold until hold_fd is closed. */
static int broker_child_main(chunks_t c, size_t events, int report_fd, int hold_fd)
{
    sd_error_t err = {0};
    sd_embedded_t *kafka = NULL;
    sd_err_t rc = start_loaded(c, events, &kafka, &err);
    char line[700];
    int n = rc == SD_OK ? snprintf(line, sizeof line, "%s\n", sd_embedded_bootstraps(kafka))
                        : snprintf(line, sizeof line, "!%s\n", err.message);
    int reported = write(report_fd, line, (size_t)n) == n;
    char byte;
    while (reported && read(hold_fd, &byte, 1) > 0)
        ;
    sd_embedded_stop(kafka);
    return rc == SD_OK && reported ? 0 : 1;
}

/* Forks before any thread exists in this process (the core measurement
 * and opening a store start none), so the child may use everything. */
sd_err_t bench_broker_child_start(chunks_t c, size_t events, broker_child_t *b, sd_error_t *err)
{
    int report[2], hold[2];
    if (pipe(report) != 0)
        return sd_error_set(err, SD_ERR_FATAL, "", "cannot create a pipe: %s", strerror(errno));
    if (pipe(hold) != 0) {
        close(report[0]);
        close(report[1]);
        return sd_error_set(err, SD_ERR_FATAL, "", "cannot create a pipe: %s", strerror(errno));
    }
    fflush(NULL);
    b->pid = fork();
    if (b->pid == 0) {
        close(report[0]);
        close(hold[1]);
        _exit(broker_child_main(c, events, report[1], hold[0])); /* no atexit, no stdio flush */
    }
    close(report[1]);
    close(hold[0]);
    b->hold_fd = hold[1];
    if (b->pid < 0) {
        close(report[0]);
        close(hold[1]);
        return sd_error_set(err, SD_ERR_FATAL, "", "cannot start the broker process: %s",
                            strerror(errno));
    }
    FILE *from = fdopen(report[0], "r");
    char line[700] = "";
    int got = from && fgets(line, sizeof line, from) != NULL;
    if (from)
        fclose(from);
    else
        close(report[0]);
    line[strcspn(line, "\n")] = '\0';
    size_t len = strlen(line);
    if (got && line[0] != '!' && len < sizeof b->bootstraps) {
        memcpy(b->bootstraps, line, len + 1);
        return SD_OK;
    }
    return sd_error_set(err, SD_ERR_FATAL, "", "the embedded broker process failed: %s",
                        got ? line + 1 : "it ended without a word");
}

/* Stops the child; returns its peak RSS in KiB. */
long bench_broker_child_stop(broker_child_t *b)
{
    close(b->hold_fd);
    int status;
    while (waitpid(b->pid, &status, 0) < 0 && errno == EINTR)
        ;
    b->pid = 0;
    struct rusage children;
    return getrusage(RUSAGE_CHILDREN, &children) == 0 ? children.ru_maxrss : 0;
}


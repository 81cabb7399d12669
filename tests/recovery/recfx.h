/* What the recovery tests share: sessiond children pointed at the test's
 * broker (kafkafx.h) and topics, with the rules' clock frozen at PFX_NOW. */
#ifndef SESSIOND_RECFX_H
#define SESSIOND_RECFX_H

#include "scenario.h"
#include "procfx.h"

/* Arguments for `sessiond CMD` against kafka's broker and topics (run:
 * as group "sessiond" with kafka's prefix) and the store fx_store_locate
 * names `store_name`, then `extra` (NULL-terminated), into args (cap
 * entries, NULL-terminated).  Strings live in buf. */
typedef struct rfx_args {
    const char *argv[64];
    char buf[2048];
    size_t used;
} rfx_args_t;

void rfx_args(rfx_args_t *a, const char *cmd, fx_kafka_t *kafka, const char *store_name,
              const char *const *extra);

/* SESSIOND_NOW=PFX_NOW and the given extras, NULL-terminated. */
const char *const *rfx_env(const char *extra);

/* Runs a child to its end (at most timeout_s); returns its exit code and
 * leaves its log (stdout and stderr) in *log (caller frees). */
int rfx_run(const rfx_args_t *a, const char *log_path, long timeout_s, char **log);

/* Every visible session of the store at PFX_NOW, one JSON per line,
 * sorted; caller frees. */
char *rfx_dump(sd_store_t *store);

/* A path in the test's temporary directory. */
void rfx_path(char *out, size_t cap, const char *name);

#endif

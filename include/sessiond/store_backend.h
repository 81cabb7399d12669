/* What a store implementation provides; store.c dispatches to it. */
#ifndef SESSIOND_STORE_BACKEND_H
#define SESSIOND_STORE_BACKEND_H

#include "sessiond/store.h"

typedef struct sd_store_ops {
    const char *kind;
    sd_err_t (*ensure_schema)(sd_store_t *s, sd_error_t *err);
    sd_err_t (*apply)(sd_store_t *s, const sd_store_item_t *items, size_t n,
                      int64_t now_ms, sd_apply_result_t *out, sd_error_t *err);
    /* by == "task_id", "short_id" or NULL (all) */
    sd_err_t (*list)(sd_store_t *s, const char *by, const char *value, int64_t now_ms,
                     sd_session_list_t *out, sd_error_t *err);
    sd_err_t (*due_expiries)(sd_store_t *s, int64_t now_ms, int64_t resend_before_ms,
                             size_t limit, sd_expiry_list_t *out, sd_error_t *err);
    sd_err_t (*expiries_published)(sd_store_t *s, const sd_expiry_list_t *published,
                                   int64_t now_ms, sd_error_t *err);
    sd_err_t (*count_by_type)(sd_store_t *s, int64_t now_ms, sd_type_count_t **out,
                              size_t *n, sd_error_t *err);
    sd_err_t (*ping)(sd_store_t *s, sd_error_t *err);
    sd_store_io_t (*io)(const sd_store_t *s); /* NULL: not counted */
    void (*close)(sd_store_t *s);
} sd_store_ops_t;

/* Every implementation's handle starts with this. */
struct sd_store {
    const sd_store_ops_t *ops;
    sd_store_config_t cfg; /* defaults filled in; strings owned by the caller */
};

sd_err_t sd_sqlite_store_open(const sd_store_config_t *cfg, const char *path,
                              sd_store_t **out, sd_error_t *err);
sd_err_t sd_mongo_store_open(const sd_store_config_t *cfg, sd_store_t **out,
                             sd_error_t *err);

/* Appends one task type's count to a count_by_type result. */
sd_err_t sd_type_count_add(sd_type_count_t **counts, size_t *n, const char *task_type,
                           int64_t live, sd_error_t *err);

/* Builds the published change from a state, an emission and a clock. */
sd_change_t sd_store_change_of(const sd_state_t *st, const sd_emit_t *emit);

#endif

/* The MongoDB store's handle and what its files share (internal). */
#ifndef SESSIOND_MONGO_STORE_H
#define SESSIOND_MONGO_STORE_H

#include <mongoc/mongoc.h>

#include "sessiond/mongo_ops.h"
#include "sessiond/store_backend.h"

typedef struct sd_mongo_store {
    sd_store_t base;
    mongoc_client_t *client;
    mongoc_collection_t *sessions;
    mongoc_collection_t *markers;
    mongoc_write_concern_t *wc;
    uint64_t commands;  /* sent (command monitoring) */
    uint64_t documents; /* written, from the write commands' replies */
    uint64_t bytes_sent, bytes_received; /* BSON of the commands and of their replies */
    char hosts[256];
    char user[128];
    char database[128];
} sd_mongo_store_t;

/* Turns a driver error into a classified one naming hosts and user. */
sd_err_t sd_mongo_classify(sd_mongo_store_t *s, const bson_error_t *e, const bson_t *reply,
                           const char *doing, sd_error_t *err);

/* Appends copies of every document matching filter to *docs. */
sd_err_t sd_mongo_find_docs(sd_mongo_store_t *s, mongoc_collection_t *coll,
                            const bson_t *filter, const bson_t *opts, bson_t ***docs,
                            size_t *n, const char *doing, sd_error_t *err);
void sd_mongo_free_docs(bson_t **docs, size_t n);

sd_err_t sd_mongo_apply(sd_store_t *base, const sd_store_item_t *items, size_t n,
                        int64_t now_ms, sd_apply_result_t *out, sd_error_t *err);
/* mongo_sweep.c */
sd_err_t sd_mongo_due_expiries(sd_store_t *base, int64_t now_ms, int64_t resend_before_ms,
                               size_t limit, sd_expiry_list_t *out, sd_error_t *err);
sd_err_t sd_mongo_expiries_published(sd_store_t *base, const sd_expiry_list_t *published,
                                     int64_t now_ms, sd_error_t *err);

#endif

#include "sessiond/outgoing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Names the headers and copies their values into one block; 0 on success. */
static int set_headers(sd_outgoing_t *o, const char *const *names, const char *const *values,
                       size_t n)
{
    size_t lens[4], total = 0;
    for (size_t i = 0; i < n; i++)
        total += (lens[i] = strlen(values[i])) + 1;
    char *at = o->header_text = malloc(total);
    if (!at)
        return -1;
    for (size_t i = 0; i < n; i++) {
        memcpy(at, values[i], lens[i] + 1);
        o->headers[i] = (sd_header_t){names[i], at};
        at += lens[i] + 1;
    }
    o->n_headers = n;
    return 0;
}

static char *copy_bytes(const void *data, size_t len)
{
    char *c = malloc(len + 1);
    if (c) {
        if (len)
            memcpy(c, data, len);
        c[len] = '\0';
    }
    return c;
}

sd_err_t sd_outgoing_change(sd_outgoing_t *o, const char *topic, const sd_change_t *c,
                            char **json, sd_error_t *err)
{
    *o = (sd_outgoing_t){.change_type = (int)c->type, .topic = topic};
    if (json && *json) {
        o->value = *json;
        o->len = strlen(*json);
        *json = NULL;
    } else {
        sd_err_t rc = sd_change_to_json(c, &o->value, &o->len, err);
        if (rc != SD_OK)
            return rc;
    }
    static const char *const names[] = {"change_type", "cause_event_id"};
    const char *values[] = {sd_change_type_name(c->type), c->cause.event_id};
    if (!(o->key = copy_bytes(c->session.task_id, strlen(c->session.task_id))) ||
        set_headers(o, names, values, 2))
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory for a change");
    return SD_OK;
}

sd_err_t sd_outgoing_dead_letter(sd_outgoing_t *o, const char *topic,
                                 const rd_kafka_message_t *m, const sd_error_t *why,
                                 sd_error_t *err)
{
    static const char *const names[] = {"error", "source_topic", "source_partition",
                                        "source_offset"};
    char reason[SD_ERROR_TEXT_BUFSZ], partition[16], offset[32];
    snprintf(partition, sizeof partition, "%d", (int)m->partition);
    snprintf(offset, sizeof offset, "%lld", (long long)m->offset);
    const char *values[] = {sd_error_text(why, reason), rd_kafka_topic_name(m->rkt), partition,
                            offset};
    *o = (sd_outgoing_t){.change_type = SD_OUTGOING_DEAD_LETTER, .topic = topic, .len = m->len};
    o->key = m->key ? copy_bytes(m->key, m->key_len) : NULL;
    o->value = copy_bytes(m->payload, m->len);
    if (!o->value || (m->key && !o->key) || set_headers(o, names, values, 4))
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory dead-lettering");
    return SD_OK;
}

sd_err_t sd_outgoing_expiry_event(sd_outgoing_t *o, const char *topic, const sd_expiry_due_t *due,
                                  int64_t ttl_ms, sd_error_t *err)
{
    *o = (sd_outgoing_t){.change_type = SD_OUTGOING_EXPIRY_EVENT, .topic = topic};
    sd_err_t rc = sd_expiry_event_json(due, ttl_ms, &o->value, &o->len, err);
    if (rc != SD_OK)
        return rc;
    if (!(o->key = copy_bytes(due->task_id, strlen(due->task_id))))
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory for an expiry event");
    return SD_OK;
}

sd_err_t sd_outgoing_send(sd_producer_t *producer, const sd_outgoing_t *msgs, size_t n,
                          sd_error_t *err)
{
    for (size_t i = 0; i < n; i++) {
        sd_err_t rc = sd_producer_send(producer, msgs[i].topic, msgs[i].key, msgs[i].value,
                                       msgs[i].len, msgs[i].headers, msgs[i].n_headers, err);
        if (rc != SD_OK)
            return rc;
    }
    return SD_OK;
}

void sd_outgoing_free(sd_outgoing_t *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(msgs[i].key);
        free(msgs[i].value);
        free(msgs[i].header_text);
    }
    free(msgs);
}

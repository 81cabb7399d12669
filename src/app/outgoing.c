#include "sessiond/outgoing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_header(sd_outgoing_t *o, const char *name, const char *value)
{
    size_t i = o->n_headers++;
    snprintf(o->header_store[i], sizeof o->header_store[i], "%s", value);
    o->headers[i] = (sd_header_t){name, o->header_store[i]};
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
                            sd_error_t *err)
{
    size_t len;
    *o = (sd_outgoing_t){.change_type = (int)c->type, .topic = topic};
    sd_err_t rc = sd_change_to_json(c, &o->value, &len, err);
    if (rc != SD_OK)
        return rc;
    o->len = len;
    if (!(o->key = copy_bytes(c->session.task_id, strlen(c->session.task_id))))
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory for a change");
    add_header(o, "change_type", sd_change_type_name(c->type));
    add_header(o, "cause_event_id", c->cause.event_id);
    return SD_OK;
}

sd_err_t sd_outgoing_dead_letter(sd_outgoing_t *o, const char *topic,
                                 const rd_kafka_message_t *m, const sd_error_t *why,
                                 sd_error_t *err)
{
    char reason[SD_ERROR_TEXT_BUFSZ], number[32];
    *o = (sd_outgoing_t){.change_type = -1, .topic = topic, .len = m->len};
    o->key = m->key ? copy_bytes(m->key, m->key_len) : NULL;
    o->value = copy_bytes(m->payload, m->len);
    if (!o->value || (m->key && !o->key))
        return sd_error_set(err, SD_ERR_NOMEM, "", "out of memory dead-lettering");
    add_header(o, "error", sd_error_text(why, reason));
    add_header(o, "source_topic", rd_kafka_topic_name(m->rkt));
    snprintf(number, sizeof number, "%d", (int)m->partition);
    add_header(o, "source_partition", number);
    snprintf(number, sizeof number, "%lld", (long long)m->offset);
    add_header(o, "source_offset", number);
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
    }
    free(msgs);
}

/* Error codes and the error struct every fallible function fills. */
#ifndef SESSIOND_ERROR_H
#define SESSIOND_ERROR_H

typedef enum sd_err {
    SD_OK = 0,
    SD_ERR_INVALID,   /* input breaks the contract; field and reason say how */
    SD_ERR_NOMEM,
    SD_ERR_IO,        /* reading a file or stream failed */
    SD_ERR_TRANSIENT, /* a dependency is unavailable: retry later */
    SD_ERR_EVENT,     /* this one event can never apply: dead-letter it */
    SD_ERR_FATAL,     /* configuration or authentication: stop */
} sd_err_t;

typedef struct sd_error {
    sd_err_t code;
    char field[64];    /* the offending field, "" when the whole input is at fault */
    char message[512]; /* what went wrong, phrased for the person who must fix it */
} sd_error_t;

/* Fills err (when not NULL) and returns code, so callers can write
 * `return sd_error_set(err, SD_ERR_INVALID, "event_id", "is required");`. */
sd_err_t sd_error_set(sd_error_t *err, sd_err_t code, const char *field,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "field: message", or the message alone when no field is at fault: how
 * an error reads in logs, dead-letter headers and command output. */
#define SD_ERROR_TEXT_BUFSZ (sizeof((sd_error_t *)0)->field + 2 + sizeof((sd_error_t *)0)->message)
const char *sd_error_text(const sd_error_t *err, char buf[SD_ERROR_TEXT_BUFSZ]);

const char *sd_err_name(sd_err_t code);

#endif

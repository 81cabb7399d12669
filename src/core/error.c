#include "sessiond/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

sd_err_t sd_error_set(sd_error_t *err, sd_err_t code, const char *field,
                      const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

const char *sd_error_text(const sd_error_t *err, char buf[SD_ERROR_TEXT_BUFSZ])
{
    snprintf(buf, SD_ERROR_TEXT_BUFSZ, "%s%s%s", err->field, err->field[0] ? ": " : "",
             err->message);
    return buf;
}

const char *sd_err_name(sd_err_t code)
{
    switch (code) {
    case SD_OK: return "ok";
    case SD_ERR_INVALID: return "invalid";
    case SD_ERR_NOMEM: return "out of memory";
    case SD_ERR_IO: return "i/o";
    case SD_ERR_TRANSIENT: return "transient";
    case SD_ERR_EVENT: return "event";
    case SD_ERR_FATAL: return "fatal";
    }
    return "unknown";
}

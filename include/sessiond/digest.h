/* Deterministic ids: SHA-256 of a few strings, as 32 hex digits. */
#ifndef SESSIOND_DIGEST_H
#define SESSIOND_DIGEST_H

#include <stddef.h>

#include "sessiond/error.h"

#define SD_DIGEST_HEX_BUFSZ 33 /* 32 hex digits + NUL */

/* The first 16 bytes of SHA-256 over the parts, each but the last followed
 * by a NUL byte (so ("ab","c") and ("a","bc") differ), as lowercase hex.
 * Fails (SD_ERR_FATAL) only when libcrypto offers no SHA-256. */
sd_err_t sd_digest_hex(const char *const *parts, size_t n, char out[SD_DIGEST_HEX_BUFSZ],
                       sd_error_t *err);

#endif

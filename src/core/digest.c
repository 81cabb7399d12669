#include "sessiond/digest.h"

#include <openssl/evp.h>
#include <string.h>

sd_err_t sd_digest_hex(const char *const *parts, size_t n, char out[SD_DIGEST_HEX_BUFSZ],
                       sd_error_t *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + (i + 1 < n));
    ok = ok && EVP_DigestFinal_ex(ctx, digest, &digest_len);
    EVP_MD_CTX_free(ctx);
    if (!ok || digest_len < 16)
        return sd_error_set(err, SD_ERR_FATAL, "", "SHA-256 unavailable from libcrypto: cannot "
                                                   "derive deterministic ids");
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0xF];
    }
    out[32] = '\0';
    return SD_OK;
}

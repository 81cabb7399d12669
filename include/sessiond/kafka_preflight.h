/* Start-up checks against the brokers, for failures that retrying cannot
 * cure: they stop a command at once with one message instead of a retry
 * loop that never ends (SPEC §10). */
#ifndef SESSIOND_KAFKA_PREFLIGHT_H
#define SESSIOND_KAFKA_PREFLIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "sessiond/kafka.h"

#define SD_STARTUP_TIMEOUT_MS 30000
#define SD_PREFLIGHT_TOPICS 40 /* topics one check asks about, at most */

/* The --startup-timeout option of the commands that talk to Kafka. */
#define SD_STARTUP_TIMEOUT_OPTION(target)                                                       \
    {"startup-timeout", SD_OPT_DURATION, (target), "D",                                         \
     "stop within D when Kafka refuses the credentials or TLS, or a topic does not exist "     \
     "(default 30s)", NULL}

/* Checks the client's own TLS identity (an encrypted ssl.key.location
 * opens with ssl.key.password; the client certificate is valid now), then
 * connects with s's settings and asks for the topics' metadata (a topic
 * named ^regex is a pattern and is skipped); with `creates`, as a producer
 * would, so that a broker that creates topics on first use creates them,
 * else as a reader, which creates nothing.  Returns within bound_ms:
 *   SD_OK             every topic is there;
 *   SD_ERR_FATAL      the client key or certificate is unusable, the
 *                     brokers refused SASL authentication, TLS failed (a
 *                     broker certificate that does not verify is named,
 *                     with why: a CA ssl.ca.location lacks, a host name it
 *                     does not hold, its validity), the user may not
 *                     describe a topic, or a topic does not exist (and,
 *                     `creates`, the broker did not create it); the
 *                     message names the brokers, the topic, the file or
 *                     the mechanism and user, never a secret;
 *   SD_ERR_TRANSIENT  no broker answered within bound_ms (retrying may
 *                     cure that: the caller goes on and retries). */
sd_err_t sd_kafka_preflight(const sd_kafka_settings_t *s, const char *const *topics, size_t n,
                            int creates, int64_t bound_ms, sd_error_t *err);

#endif

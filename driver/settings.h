/* settings: every Spark and sparkernel setting the kernel resolves, with where each value
 * came from. Sources, strongest first: the notebook (%spark config), the environment, the
 * kernelspec (its env, as SPARKERNEL_SPEC_<NAME>, so that the environment can still
 * override it), defaults. All environment variables are read here and nowhere else. */
#ifndef SPARKERNEL_SETTINGS_H
#define SPARKERNEL_SETTINGS_H

#include <jansson.h>
#include <stddef.h>

enum settings_source {
    SOURCE_NONE = 0,
    SOURCE_DEFAULT,
    SOURCE_DERIVED, /* computed by the kernel at session start */
    SOURCE_KERNELSPEC,
    SOURCE_ENVIRONMENT,
    SOURCE_NOTEBOOK,
};

enum settings_error {
    SETTINGS_OK = 0,
    SETTINGS_ESYNTAX = -1, /* not key=value */
    SETTINGS_EVALUE = -2,  /* a value the key cannot take (a port that is not a number...) */
    SETTINGS_ENOMEM = -3,
};

struct settings;

/* Reads the environment (env: NULL-terminated "K=V" array, borrowed; normally environ). */
struct settings *settings_new(char **env);
void settings_destroy(struct settings **self);

/* %spark config key=value: sets a notebook-level value (copied). A known key's value is
 * checked; unknown spark.* keys pass through to the session. */
int settings_set(struct settings *self, const char *key, const char *value, char *err,
                 size_t err_len);
/* One word of %spark config, "key=value" (borrowed): splits it at the first '=' and
 * settings_set()s the pair. SETTINGS_ESYNTAX, with a sentence in err, when there is no '=' or
 * nothing before it. */
int settings_set_pair(struct settings *self, const char *pair, char *err, size_t err_len);
/* A Spark memory size ("512m", "2g", "1024k", "1t", plain bytes; borrowed) in MB, the unit the
 * master reports; 1024 (Spark's default) for NULL or "". */
long settings_memory_mb(const char *value);

/* The resolved value of a key (borrowed, valid until the next set) or NULL. */
const char *settings_get(const struct settings *self, const char *key);
enum settings_source settings_source_of(const struct settings *self, const char *key);
const char *settings_source_name(enum settings_source source);
int settings_get_int(const struct settings *self, const char *key, int fallback);
/* A boolean key's value: 1 for "true", 0 for "false", fallback when unset or anything else. */
int settings_get_bool(const struct settings *self, const char *key, int fallback);

/* Whether a spark:// master is configured (else local mode). */
int settings_is_cluster(const struct settings *self);
/* Host of the master URL (for the UI default and the advertised-address probe). */
int settings_master_host(const struct settings *self, char *host, size_t len, int *port);

/* The Spark conf for the session: every spark.* key with a value. New reference. */
json_t *settings_spark_conf(const struct settings *self);
/* Every setting as rows {key, value, source, env, doc} for %spark status. New reference. */
json_t *settings_table(const struct settings *self);
/* Fills in values the kernel derives at session start (the advertised driver host, the
 * ports of the chosen slot); they show as "derived" defaults. */
void settings_derive(struct settings *self, const char *key, const char *value);
const char *settings_strerror(int code);
/* Whether key (borrowed) holds a secret that no output may show: the RPC secret, and any
 * spark.* key naming a secret, password or token. Such values are shown as "****". */
int settings_is_secret(const char *key);

#endif

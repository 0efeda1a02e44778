/* settings: a table of known settings and four layers of values (notebook, environment,
 * kernelspec, derived) over the table's defaults. Unknown spark.* keys pass through. */
#include "settings.h"

#include "../kernel/log.h"
#include "../kernel/redact.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_STRING, K_INT, K_PORT, K_MEMORY, K_BOOL, K_SECRET };

struct def {
    const char *key;
    const char *env; /* its environment variable (also SPARKERNEL_SPEC_<env-suffix>) */
    const char *fallback;
    enum kind kind;
    const char *doc;
    long min, max; /* K_INT's bounds (both 0: 0 to 1,000,000); K_PORT's are 1-65535 */
};

/* The order is the order of %spark status. */
static const struct def defs[] = {
    {"spark.master", "SPARK_MASTER_URL", "local[*]", K_STRING,
     "cluster to run on; also from the Kubernetes service variables of `spark-master`", 0, 0},
    {"sparkernel.master.ui", "SPARKERNEL_MASTER_UI_URL", NULL, K_STRING,
     "master web UI for negotiation and status; default http://<master host>:8080", 0, 0},
    {"spark.driver.host", "SPARKERNEL_DRIVER_HOST", NULL, K_STRING,
     "address executors call back; default POD_IP, else this host's address towards the master", 0,
     0},
    {"spark.driver.bindAddress", "SPARKERNEL_BIND_ADDRESS", "0.0.0.0", K_STRING,
     "address the driver listens on", 0, 0},
    {"spark.driver.port", "SPARKERNEL_DRIVER_PORT", "7078", K_PORT,
     "driver RPC port (slot i uses port + 2i)", 0, 0},
    {"spark.driver.blockManager.port", "SPARKERNEL_BLOCKMANAGER_PORT", "7079", K_PORT,
     "driver block manager port (slot i uses port + 2i); executors pick their own", 0, 0},
    {"spark.ui.port", "SPARKERNEL_UI_PORT", "4040", K_PORT, "Spark UI port (slot i uses port + i)",
     0, 0},
    {"sparkernel.ui.proxy", "SPARKERNEL_UI_PROXY", NULL, K_STRING,
     "where a browser reaches a session's UI, {port} its port (the chart: /proxy/{port}, through "
     "JupyterLab's jupyter-server-proxy); unset: the driver's own address",
     0, 0},
    {"sparkernel.port.slots", "SPARKERNEL_PORT_SLOTS", "8", K_INT,
     "kernels that can share this host's fixed ports; the chart exposes every slot", 1, 64},
    {"spark.local.dir", "SPARKERNEL_LOCAL_DIR", "/tmp/sparkernel", K_STRING,
     "driver scratch space (node-local, never the shared volume)", 0, 0},
    {"spark.executor.cores", "SPARKERNEL_EXECUTOR_CORES", "1", K_INT, "cores per executor", 1,
     1024},
    {"spark.executor.memory", "SPARKERNEL_EXECUTOR_MEMORY", "1g", K_MEMORY, "memory per executor",
     0, 0},
    {"spark.cores.max", "SPARKERNEL_MAX_CORES", NULL, K_INT,
     "cap on cores for this session (unset: dynamic allocation's cap applies)", 1, 100000},
    {"spark.dynamicAllocation.enabled", "SPARKERNEL_DYNAMIC_ALLOCATION", "true", K_BOOL,
     "executors come and go with the work, so an idle notebook holds none", 0, 0},
    {"spark.dynamicAllocation.shuffleTracking.enabled", NULL, "true", K_BOOL,
     "dynamic allocation without an external shuffle service", 0, 0},
    {"spark.dynamicAllocation.maxExecutors", "SPARKERNEL_MAX_EXECUTORS", "2", K_INT,
     "per-session cap: with the elastic share, every core of the cluster when the session "
     "starts (half of them with sparkernel.share.elastic=false; 2 without a master to ask); "
     "setting it fixes the share",
     1, 10000},
    {"spark.dynamicAllocation.minExecutors", NULL, "0", K_INT,
     "an idle notebook may hold no executor at all", 0, 10000},
    {"spark.dynamicAllocation.initialExecutors", "SPARKERNEL_INITIAL_EXECUTORS", "1", K_INT,
     "the warm session asks for one executor at start, so the first cell does not wait for it", 0,
     10000},
    {"spark.dynamicAllocation.executorIdleTimeout", "SPARKERNEL_IDLE_TIMEOUT", "60s", K_STRING,
     "an idle notebook gives its executors back after this", 0, 0},
    {"spark.dynamicAllocation.cachedExecutorIdleTimeout", "SPARKERNEL_CACHED_IDLE_TIMEOUT", "60s",
     K_STRING,
     "executors holding cached data go too (follows the idle timeout unless set); the "
     "cache is rebuilt from its source when next used",
     0, 0},
    {"spark.dynamicAllocation.shuffleTracking.timeout", NULL, "60s", K_STRING,
     "executors holding shuffle files of live DataFrames go too (follows the idle timeout "
     "unless set; recomputed when needed)",
     0, 0},
    {"sparkernel.share.elastic", "SPARKERNEL_SHARE_ELASTIC", "true", K_BOOL,
     "a session alone on the cluster grows to every core; when another application waits, "
     "the largest holders give back down to a fair share at their next task boundary "
     "(decommissioned executors end their running tasks first); false: half of the "
     "cluster each",
     0, 0},
    {"spark.decommission.enabled", "SPARKERNEL_DECOMMISSION", "true", K_BOOL,
     "executors given back while a job runs finish their running tasks first (the elastic "
     "share needs it; cached blocks on them are recomputed when next used)",
     0, 0},
    {"sparkernel.yield.after.s", "SPARKERNEL_YIELD_AFTER_S", "5", K_INT,
     "idle this long while another application waits for cores: give executors back now "
     "(0: never)",
     0, 86400},
    {"sparkernel.share.turn.s", "SPARKERNEL_SHARE_TURN_S", "1", K_INT,
     "another application has waited this long: of the sparkernel sessions holding cores, "
     "the one holding them longest gives them back between two cells, so busy notebooks "
     "take turns (0: never)",
     0, 3600},
    {"spark.app.name", "SPARKERNEL_APP_NAME", "sparkernel", K_STRING, "application name", 0, 0},
    {"spark.authenticate", "SPARK_AUTHENTICATE", NULL, K_BOOL, "RPC authentication", 0, 0},
    {"spark.authenticate.secret", "SPARK_AUTHENTICATE_SECRET", NULL, K_SECRET,
     "shared RPC secret (never shown)", 0, 0},
    {"spark.network.crypto.enabled", "SPARKERNEL_RPC_ENCRYPTION", NULL, K_BOOL, "RPC encryption", 0,
     0},
    {"sparkernel.log.level", "SPARKERNEL_LOG_LEVEL", "warn", K_STRING,
     "level of Spark's log file (info costs a short job about 100 ms)", 0, 0},
    {"sparkernel.cds", "SPARKERNEL_CDS", "true", K_BOOL,
     "keep a class-data-sharing archive of the driver JVM (about 140 MB in "
     "sparkernel.cache.dir): sessions start about twice as fast",
     0, 0},
    {"sparkernel.cache.dir", "SPARKERNEL_CACHE_DIR", NULL, K_STRING,
     "where the kernel keeps its caches, the driver JVM's archive among them (unset: "
     "$XDG_CACHE_HOME/sparkernel, else ~/.cache/sparkernel)",
     0, 0},
    {"sparkernel.executor.cds", "SPARKERNEL_EXECUTOR_CDS", "true", K_BOOL,
     "class-data-sharing archive for the executors' JVMs (about 70 MB): the first session's "
     "executors dump it when they exit, later executors start about 1.5 s sooner",
     0, 0},
    {"sparkernel.executor.cds.dir", "SPARKERNEL_EXECUTOR_CDS_DIR", NULL, K_STRING,
     "where the executors' archive lives, at the same path on the workers and here "
     "(unset: this host's cache dir, right when the workers share its filesystem; the "
     "chart uses the shared volume)",
     0, 0},
    {"sparkernel.worker.spark.home", "SPARKERNEL_WORKER_SPARK_HOME", NULL, K_STRING,
     "Spark's home on the workers, whose jars the executors' archive holds (unset: this "
     "host's)",
     0, 0},
    {"sparkernel.warm", "SPARKERNEL_WARM", "true", K_BOOL,
     "start the session in the background when the kernel starts", 0, 0},
    {"sparkernel.negotiate.timeout.ms", "SPARKERNEL_NEGOTIATE_TIMEOUT_MS", "3000", K_INT,
     "how long to wait for the master's answer", 100, 30000},
    {"sparkernel.waiting.report.s", "SPARKERNEL_WAITING_REPORT_S", "10", K_INT,
     "report a job with no executors after this many seconds", 1, 3600},
};
#define NDEFS (sizeof defs / sizeof defs[0])

struct settings {
    json_t *layer[6]; /* indexed by enum settings_source; DEFAULT and NONE unused */
};

const char *settings_strerror(int code)
{
    switch (code) {
    case SETTINGS_OK:
        return "ok";
    case SETTINGS_ESYNTAX:
        return "expected key=value";
    case SETTINGS_EVALUE:
        return "a value this setting cannot take";
    case SETTINGS_ENOMEM:
        return "out of memory";
    }
    return "unknown settings error";
}

const char *settings_source_name(enum settings_source s)
{
    static const char *names[] = {"unset",      "default",     "derived",
                                  "kernelspec", "environment", "notebook"};
    return names[s];
}

static const struct def *find_def(const char *key)
{
    for (size_t i = 0; i < NDEFS; i++)
        if (strcmp(defs[i].key, key) == 0)
            return &defs[i];
    return NULL;
}

static const char *env_get(char **env, const char *name)
{
    size_t n = strlen(name);
    for (char **e = env; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* "k=v;k=v" or whitespace-separated pairs into layer. */
static void parse_pairs(json_t *layer, const char *text)
{
    char *copy = strdup(text), *save = NULL;
    if (copy == NULL)
        return;
    for (char *tok = strtok_r(copy, "; \t\n", &save); tok; tok = strtok_r(NULL, "; \t\n", &save)) {
        char *eq = strchr(tok, '=');
        if (eq && eq != tok) {
            *eq = '\0';
            json_object_set_new(layer, tok, json_string(eq + 1));
        }
    }
    free(copy);
}

static int check_value(const struct def *d, const char *v);
static void describe_expected(const struct def *d, const char *key, const char *value, char *err,
                              size_t len);

/* A value from the environment or the kernelspec: out of bounds, it is left out (the next
 * source or the default applies) and the kernel's log says so. */
static void take_checked(json_t *layer, const struct def *d, const char *var, const char *v)
{
    if (check_value(d, v) != SETTINGS_OK) {
        char why[256];
        describe_expected(d, d->key, v, why, sizeof why);
        log_warn("%s ignored (%s)", var, why);
        return;
    }
    json_object_set_new(layer, d->key, json_string(v));
}

struct settings *settings_new(char **env)
{
    struct settings *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    for (int i = 0; i < 6; i++)
        s->layer[i] = json_object();
    json_t *envl = s->layer[SOURCE_ENVIRONMENT], *spec = s->layer[SOURCE_KERNELSPEC];
    for (size_t i = 0; i < NDEFS; i++) {
        if (defs[i].env == NULL)
            continue;
        const char *v = env_get(env, defs[i].env);
        if (v && *v)
            take_checked(envl, &defs[i], defs[i].env, v);
        /* The kernelspec's copy: SPARKERNEL_SPEC_ + the name without its SPARKERNEL_. */
        char specname[128];
        const char *suffix =
            strncmp(defs[i].env, "SPARKERNEL_", 11) == 0 ? defs[i].env + 11 : defs[i].env;
        snprintf(specname, sizeof specname, "SPARKERNEL_SPEC_%s", suffix);
        v = env_get(env, specname);
        if (v && *v)
            take_checked(spec, &defs[i], specname, v);
    }
    /* The Kubernetes service variables of a service named spark-master. */
    const char *khost = env_get(env, "SPARK_MASTER_SERVICE_HOST");
    if (!json_object_get(envl, "spark.master") && khost && *khost) {
        const char *kport = env_get(env, "SPARK_MASTER_SERVICE_PORT_CLUSTER");
        if (kport == NULL)
            kport = env_get(env, "SPARK_MASTER_SERVICE_PORT");
        char url[300];
        snprintf(url, sizeof url, "spark://%s:%s", khost, kport && *kport ? kport : "7077");
        json_object_set_new(envl, "spark.master", json_string(url));
        const char *kweb = env_get(env, "SPARK_MASTER_SERVICE_PORT_WEBUI");
        if (!json_object_get(envl, "sparkernel.master.ui") && kweb && *kweb) {
            snprintf(url, sizeof url, "http://%s:%s", khost, kweb);
            json_object_set_new(envl, "sparkernel.master.ui", json_string(url));
        }
    }
    const char *pod_ip = env_get(env, "POD_IP");
    if (!json_object_get(envl, "spark.driver.host") && pod_ip && *pod_ip)
        json_object_set_new(envl, "spark.driver.host", json_string(pod_ip));
    const char *extra = env_get(env, "SPARKERNEL_SPARK_CONF");
    if (extra)
        parse_pairs(envl, extra);
    extra = env_get(env, "SPARKERNEL_SPEC_SPARK_CONF");
    if (extra)
        parse_pairs(spec, extra);
    /* Every secret value the deployment gives is masked in any output (redact.h): the secret
     * settings, the Jupyter server's token and the chart's RPC secret, which the session's
     * JVM reads from the environment (the executor keeps it for that). */
    redact_add(env_get(env, "JUPYTER_TOKEN"));
    redact_add(env_get(env, "_SPARK_AUTH_SECRET"));
    for (int i = 0; i < 6; i++) {
        const char *key;
        json_t *v;
        json_object_foreach(s->layer[i], key, v) if (settings_is_secret(key))
            redact_add(json_string_value(v));
    }
    return s;
}

void settings_destroy(struct settings **self)
{
    if (self == NULL || *self == NULL)
        return;
    for (int i = 0; i < 6; i++)
        json_decref((*self)->layer[i]);
    free(*self);
    *self = NULL;
}

/* What a number setting may be: beyond it, a value stalls the kernel (a million port slots
 * probed on the loop, a negotiation that holds the queue for minutes) or means nothing. */
static void bounds(const struct def *d, long *lo, long *hi)
{
    *lo = d->kind == K_PORT ? 1 : d->min;
    *hi = d->kind == K_PORT ? 65535 : d->max ? d->max : 1000000;
}

static int check_value(const struct def *d, const char *v)
{
    if (d == NULL)
        return SETTINGS_OK;
    char *end;
    switch (d->kind) {
    case K_INT:
    case K_PORT: {
        long lo, hi;
        bounds(d, &lo, &hi);
        errno = 0;
        long n = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || errno == ERANGE || n < lo || n > hi)
            return SETTINGS_EVALUE;
        return SETTINGS_OK;
    }
    case K_MEMORY: {
        /* Digits and a unit, as Spark reads a size (JavaUtils.byteStringAs): strtol alone
         * would also take a sign, leading spaces and digits beyond long's range. */
        if (!isdigit((unsigned char)*v))
            return SETTINGS_EVALUE;
        errno = 0;
        strtol(v, &end, 10);
        if (errno == ERANGE)
            return SETTINGS_EVALUE;
        const char *u = end;
        static const char *units[] = {"", "k", "kb", "m", "mb", "g", "gb", "t", "tb"};
        for (size_t i = 0; i < sizeof units / sizeof *units; i++)
            if (strcasecmp(u, units[i]) == 0)
                return SETTINGS_OK;
        return SETTINGS_EVALUE;
    }
    case K_BOOL:
        return strcmp(v, "true") == 0 || strcmp(v, "false") == 0 ? SETTINGS_OK : SETTINGS_EVALUE;
    default:
        return SETTINGS_OK;
    }
}

static void describe_expected(const struct def *d, const char *key, const char *value, char *err,
                              size_t len)
{
    static const char *expect[] = {
        "text", "a whole number", "a port", "a size such as 512m or 2g", "true or false", "text"};
    long lo, hi;
    bounds(d, &lo, &hi);
    if (d->kind == K_INT || d->kind == K_PORT)
        snprintf(err, len, "%s=%.40s: expected %s from %ld to %ld", key, value, expect[d->kind], lo,
                 hi);
    else
        snprintf(err, len, "%s=%.40s: expected %s", key, value, expect[d->kind]);
}

int settings_set(struct settings *s, const char *key, const char *value, char *err, size_t len)
{
    const struct def *d = find_def(key);
    if (d == NULL && strncmp(key, "spark.", 6) != 0) {
        snprintf(err, len,
                 "%s is not a setting: use a spark.* property or one of the sparkernel.* keys "
                 "that %%spark status lists",
                 key);
        return SETTINGS_ESYNTAX;
    }
    if (check_value(d, value) != SETTINGS_OK) {
        describe_expected(d, key, value, err, len);
        return SETTINGS_EVALUE;
    }
    if ((d != NULL && d->kind == K_SECRET) || settings_is_secret(key))
        redact_add(value); /* never shown in any output from now on */
    json_object_set_new(s->layer[SOURCE_NOTEBOOK], key, json_string(value));
    return SETTINGS_OK;
}

int settings_set_pair(struct settings *s, const char *pair, char *err, size_t len)
{
    const char *eq = strchr(pair, '=');
    if (eq == NULL || eq == pair) {
        snprintf(err, len,
                 "%%spark config expects key=value pairs, like %%spark config "
                 "spark.executor.memory=2g; got \"%s\".",
                 pair);
        return SETTINGS_ESYNTAX;
    }
    /* The whole key: a fixed buffer would cut a long one and set some other key. */
    char *key = strndup(pair, (size_t)(eq - pair));
    if (key == NULL) {
        snprintf(err, len, "out of memory");
        return SETTINGS_ENOMEM;
    }
    int rc = settings_set(s, key, eq + 1, err, len);
    free(key);
    return rc;
}

long settings_memory_mb(const char *v)
{
    if (v == NULL || *v == '\0')
        return 1024;
    char *end;
    double n = strtod(v, &end), mb;
    switch (*end) {
    case 'k':
    case 'K':
        mb = n / 1024;
        break;
    case 'g':
    case 'G':
        mb = n * 1024;
        break;
    case 't':
    case 'T':
        mb = n * 1024 * 1024;
        break;
    case 'm':
    case 'M':
        mb = n;
        break;
    default:
        mb = n / (1024 * 1024); /* plain bytes */
    }
    /* strtod also reads "inf", "nan", "-2" and 1e300, and converting a double outside long's
     * range to long is undefined: no size is 0 (the caller's default), too large saturates. */
    if (!(mb >= 0))
        return 0;
    return mb < (double)LONG_MAX ? (long)mb : LONG_MAX;
}

void settings_derive(struct settings *s, const char *key, const char *value)
{
    json_object_set_new(s->layer[SOURCE_DERIVED], key, json_string(value));
}

enum settings_source settings_source_of(const struct settings *s, const char *key)
{
    static const enum settings_source order[] = {SOURCE_NOTEBOOK, SOURCE_ENVIRONMENT,
                                                 SOURCE_KERNELSPEC, SOURCE_DERIVED};
    for (size_t i = 0; i < 4; i++)
        if (json_object_get(s->layer[order[i]], key))
            return order[i];
    const struct def *d = find_def(key);
    return d && d->fallback ? SOURCE_DEFAULT : SOURCE_NONE;
}

const char *settings_get(const struct settings *s, const char *key)
{
    enum settings_source src = settings_source_of(s, key);
    if (src == SOURCE_NONE)
        return NULL;
    if (src == SOURCE_DEFAULT)
        return find_def(key)->fallback;
    return json_string_value(json_object_get(s->layer[src], key));
}

int settings_is_secret(const char *key)
{
    const struct def *d = find_def(key);
    if (d != NULL)
        return d->kind == K_SECRET;
    static const char *words[] = {"secret", "password", "token", "credential"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strcasestr(key, words[i]) != NULL)
            return 1;
    return 0;
}

int settings_get_int(const struct settings *s, const char *key, int fallback)
{
    const char *v = settings_get(s, key);
    const struct def *d = find_def(key);
    if (v == NULL || *v == '\0' || (d && check_value(d, v) != SETTINGS_OK))
        return fallback; /* a derived value out of bounds too */
    return atoi(v);
}

int settings_get_bool(const struct settings *s, const char *key, int fallback)
{
    const char *v = settings_get(s, key);
    if (v != NULL && strcmp(v, "true") == 0)
        return 1;
    if (v != NULL && strcmp(v, "false") == 0)
        return 0;
    return fallback;
}

int settings_is_cluster(const struct settings *s)
{
    const char *m = settings_get(s, "spark.master");
    return m && strncmp(m, "spark://", 8) == 0;
}

int settings_master_host(const struct settings *s, char *host, size_t len, int *port)
{
    const char *m = settings_get(s, "spark.master");
    if (m == NULL || strncmp(m, "spark://", 8) != 0)
        return -1;
    const char *h = m + 8;
    const char *end = strpbrk(h, ":,/");
    size_t n = end ? (size_t)(end - h) : strlen(h);
    if (n == 0 || n >= len)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = end && *end == ':' ? atoi(end + 1) : 7077;
    return 0;
}

static void add_spark_keys(json_t *conf, json_t *layer)
{
    const char *k;
    json_t *v;
    json_object_foreach(layer, k, v)
    {
        if (strncmp(k, "spark.", 6) == 0 && !json_object_get(conf, k))
            json_object_set(conf, k, v);
    }
}

json_t *settings_spark_conf(const struct settings *s)
{
    json_t *conf = json_object();
    for (size_t i = 0; i < NDEFS; i++) {
        const char *v = settings_get(s, defs[i].key);
        if (v && strncmp(defs[i].key, "spark.", 6) == 0)
            json_object_set_new(conf, defs[i].key, json_string(v));
    }
    static const enum settings_source order[] = {SOURCE_NOTEBOOK, SOURCE_ENVIRONMENT,
                                                 SOURCE_KERNELSPEC, SOURCE_DERIVED};
    for (size_t i = 0; i < 4; i++)
        add_spark_keys(conf, s->layer[order[i]]);
    return conf;
}

json_t *settings_table(const struct settings *s)
{
    json_t *rows = json_array();
    for (size_t i = 0; i < NDEFS; i++) {
        const char *v = settings_get(s, defs[i].key);
        enum settings_source src = settings_source_of(s, defs[i].key);
        json_array_append_new(rows,
                              json_pack("{s:s, s:s, s:s, s:s?, s:s}", "key", defs[i].key, "value",
                                        v == NULL                  ? ""
                                        : defs[i].kind == K_SECRET ? "****"
                                                                   : v,
                                        "source", settings_source_name(src), "env", defs[i].env,
                                        "doc", defs[i].doc));
    }
    /* Pass-through spark.* keys from any layer. */
    json_t *extra = json_object();
    static const enum settings_source order[] = {SOURCE_NOTEBOOK, SOURCE_ENVIRONMENT,
                                                 SOURCE_KERNELSPEC};
    for (size_t i = 0; i < 3; i++) {
        const char *k;
        json_t *v;
        json_object_foreach(s->layer[order[i]], k, v)
        {
            if (find_def(k) == NULL && !json_object_get(extra, k))
                json_object_set_new(
                    extra, k,
                    json_pack("{s:s, s:o, s:s, s:s}", "key", k, "value",
                              settings_is_secret(k) ? json_string("****") : json_incref(v),
                              "source", settings_source_name(order[i]), "doc",
                              "passed to the session as given"));
        }
    }
    const char *k;
    json_t *row;
    json_object_foreach(extra, k, row)
    {
        json_array_append(rows, row);
    }
    json_decref(extra);
    return rows;
}

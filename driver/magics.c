/* magics: the %spark magics (status, config, restart, stop, ui), run one line after the
 * other in the kernel loop before the rest of the cell goes to the executor; status asks the
 * master without blocking. */
#include "driver.h"
#include "magics.h"

#include "../kernel/log.h"
#include "../kernel/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {
    "not started", "negotiating with the master", "starting", "ready", "failed", "refused",
    "stopped"};

static void magics_next(struct kernel *k);

void magics_done(struct kernel *k)
{
    struct spark *s = spark_of(k);
    s->magic_index++;
    magics_next(k);
}

static void magic_fail(struct kernel *k, const char *ename, const char *text)
{
    struct spark *s = spark_of(k);
    json_decref(s->magic_lines);
    s->magic_lines = NULL;
    free(s->magic_rest);
    s->magic_rest = NULL;
    kernel_fail_cell(k, ename, text);
}

static const struct doc_column settings_columns[] = {{"setting", 48, DOC_LEFT},
                                                     {"value", 28, DOC_LEFT},
                                                     {"source", 12, DOC_LEFT},
                                                     {"why", 0, DOC_LEFT}};

static void settings_doc(struct spark *s, struct doc *d)
{
    json_t *rows = settings_table(s->settings);
    doc_table(d, settings_columns, 4);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *value = json_string_value(json_object_get(row, "value"));
        const char *env = json_string_value(json_object_get(row, "env"));
        doc_cell(d);
        doc_in(d, "code", "%s", json_string_value(json_object_get(row, "key")));
        doc_cell(d);
        doc_in(d, "code", "%s", value ? value : "");
        doc_cell(d);
        doc_say(d, "%s", json_string_value(json_object_get(row, "source")));
        doc_cell(d);
        doc_say(d, "%s", json_string_value(json_object_get(row, "doc")));
        if (env) {
            doc_say(d, " (");
            doc_in(d, "code", "%s", env);
            doc_say(d, ")");
        }
    }
    doc_table_end(d);
    json_decref(rows);
}

static void session_doc(struct kernel *k, struct doc *d)
{
    struct spark *s = spark_of(k);
    doc_mark(d, "<p>", "");
    doc_in(d, "b", "Spark session:");
    doc_say(d, " %s", state_names[s->state]);
    if (s->app_id[0]) {
        doc_say(d, ", application ");
        doc_in(d, "code", "%s", s->app_id);
        doc_say(d, ", ");
        doc_link(d, "Spark UI", s->ui_url);
    }
    const char *host = settings_get(s->settings, "spark.driver.host");
    if (s->state == S_READY || s->state == S_STARTING) {
        doc_say(d, ", driver ");
        doc_in(d, "code", "%s:%d", host ? host : "?", s->ports.driver);
        doc_say(d, ", block manager %d, UI %d (port slot %d)", s->ports.block_manager, s->ports.ui,
                s->ports.slot);
    }
    doc_mark(d, "</p>", "\n");
    if (s->failure[0]) {
        doc_in(d, "pre", "%s", s->failure);
        doc_mark(d, "", "\n");
    } else if (s->notice[0]) {
        doc_in(d, "p", "%s", s->notice);
        doc_mark(d, "", "\n");
    }
    char rule[768];
    share_rule_text(s, rule, sizeof rule);
    doc_in(d, "p", "%s", rule);
    doc_mark(d, "", "\n");
}

static const struct doc_column app_columns[] = {
    {"application", 28, DOC_LEFT},  {"name", 32, DOC_CUT},  {"cores", 5, DOC_RIGHT},
    {"MB/executor", 11, DOC_RIGHT}, {"state", 8, DOC_LEFT}, {"running for", 11, DOC_RIGHT},
    {"held by", 0, DOC_LEFT}};

static void cluster_doc(struct kernel *k, const struct master_status *ms, struct doc *d)
{
    struct spark *s = spark_of(k);
    doc_mark(d, "<p>", "\n");
    doc_in(d, "b", "Cluster");
    doc_say(d, " %s (%s): %d/%d cores, %lld/%lld MB in use", ms->url, ms->status, ms->coresused,
            ms->cores, ms->memoryused, ms->memory);
    doc_mark(d, "</p>", "\n");
    char *workers = master_format_workers(ms);
    if (workers)
        doc_in(d, "pre", "%s", workers);
    free(workers);
    doc_table(d, app_columns, sizeof app_columns / sizeof app_columns[0]);
    double now = spark_wall();
    for (size_t i = 0; i < ms->napps; i++) {
        const struct master_app *a = &ms->apps[i];
        char holder[512];
        sharing_holder(a, s->app_id, s->sessions_dir, now, holder, sizeof holder);
        doc_cell(d);
        doc_in(d, "code", "%s", a->id);
        doc_cell(d);
        doc_say(d, "%s", a->name ? a->name : "");
        doc_cell(d);
        doc_say(d, "%d", a->cores);
        doc_cell(d);
        doc_say(d, "%lld", a->memoryperexecutor);
        doc_cell(d);
        doc_say(d, "%s", a->state);
        doc_cell(d);
        doc_say(d, "%.0f s", a->duration / 1000.0);
        doc_cell(d);
        doc_say(d, "%s", holder);
    }
    doc_table_end(d);
}

static void publish_status(struct kernel *k, const struct master_status *ms, const char *why)
{
    struct doc d = {0};
    session_doc(k, &d);
    if (ms)
        cluster_doc(k, ms, &d);
    else if (why) {
        doc_in(&d, "p", "%s", why);
        doc_mark(&d, "", "\n");
    }
    doc_mark(&d, "<p>", "\n");
    doc_in(&d, "b", "Settings");
    doc_say(&d, " (strongest source first: notebook, environment, kernelspec, default)");
    doc_mark(&d, "</p>", "\n");
    settings_doc(spark_of(k), &d);
    spark_show(k, &d);
}

static void on_status_master(void *ctx, int status, long code, const char *body, size_t len,
                             const char *error)
{
    (void)code;
    struct call *c = ctx;
    struct kernel *k = c->k; /* a magic waits for its answer whatever the generation */
    free(c);
    if (status == HTTP_ECANCELLED)
        return;
    struct master_status *ms = NULL;
    char why[512] = "";
    if (status != HTTP_OK)
        snprintf(why, sizeof why, "The master's web UI at %s did not answer (%s).",
                 spark_of(k)->master_ui, error ? error : http_strerror(status));
    else if (master_parse(body, len, &ms) != MASTER_OK)
        snprintf(why, sizeof why, "%s did not answer with a master's status.",
                 spark_of(k)->master_ui);
    publish_status(k, ms, why);
    master_status_destroy(&ms);
    magics_done(k);
}

static void magic_status(struct kernel *k)
{
    struct spark *s = spark_of(k);
    if (!settings_is_cluster(s->settings)) {
        publish_status(k, NULL, "Local mode: no cluster to list.");
        magics_done(k);
        return;
    }
    session_master_ui(s);
    if (spark_ask_master(k, 3000, on_status_master) != HTTP_OK) {
        publish_status(k, NULL, "The kernel could not ask the master.");
        magics_done(k);
    }
}

static void magic_config(struct kernel *k, json_t *words)
{
    struct spark *s = spark_of(k);
    if (json_array_size(words) < 2) {
        struct doc d = {0};
        settings_doc(s, &d);
        spark_show(k, &d);
        magics_done(k);
        return;
    }
    struct sb text = {0};
    for (size_t i = 1; i < json_array_size(words); i++) {
        const char *w = json_string_value(json_array_get(words, i));
        char err[512];
        if (settings_set_pair(s->settings, w, err, sizeof err) != SETTINGS_OK) {
            free(text.s);
            magic_fail(k, "SparkConfigError", err);
            return;
        }
        const char *eq = strchr(w, '=');
        char *key = strndup(w, (size_t)(eq - w));
        sb_add(&text, "%.*s = %s (notebook)\n", (int)(eq - w), w,
               key && settings_is_secret(key) ? "****" : eq + 1);
        free(key);
    }
    sb_add(&text, session_alive(s) ? "Applies to the next session: run %%spark restart.\n"
                                   : "Applies when the session starts.\n");
    spark_stream(k, "stdout", sb_str(&text));
    free(text.s);
    magics_done(k);
}

static void magic_restart(struct kernel *k, json_t *words)
{
    session_stop(k);
    spark_stream(k, "stdout",
                 "Restarting the Spark session with the current settings; the next cell that "
                 "uses spark waits for it.\n");
    spark_of(k)->magic_waits_for_start = 1; /* the executor gets spark_start before more code */
    session_start(k);                       /* the session's start moves on to the next line */
}

static void magic_stop(struct kernel *k, json_t *words)
{
    session_stop(k);
    spark_stream(k, "stdout", "Spark session stopped; %spark restart starts a new one.\n");
    magics_done(k);
}

static void magic_ui(struct kernel *k, json_t *words)
{
    struct spark *s = spark_of(k);
    struct doc d = {0};
    if (s->ui_url[0]) {
        doc_link(&d, "Spark UI", s->ui_url);
        doc_say(&d, " (%s)", s->app_id);
    } else {
        doc_say(&d, "No Spark UI: the session is %s.", state_names[s->state]);
    }
    if (s->master_ui[0]) {
        doc_mark(&d, " &middot; ", "\n");
        doc_link(&d, "Master UI", s->master_ui);
    }
    doc_mark(&d, "", "\n");
    spark_show(k, &d);
    magics_done(k);
}

static void magic_status_words(struct kernel *k, json_t *words)
{
    magic_status(k);
}

/* The %spark commands; each ends with magics_done (or magic_fail, or a session start that
 * goes on to the next line when it is ready). */
static const struct {
    const char *name;
    void (*run)(struct kernel *k, json_t *words);
} magic_commands[] = {
    {"status", magic_status_words}, {"config", magic_config}, {"restart", magic_restart},
    {"stop", magic_stop},           {"ui", magic_ui},
};

static void magics_next(struct kernel *k)
{
    struct spark *s = spark_of(k);
    if (s->magic_lines == NULL)
        return;
    if (s->magic_index >= json_array_size(s->magic_lines)) {
        char *rest = s->magic_rest;
        s->magic_rest = NULL;
        json_decref(s->magic_lines);
        s->magic_lines = NULL;
        kernel_continue_cell(k, rest ? rest : "");
        free(rest);
        return;
    }
    json_t *words = magics_words(json_string_value(json_array_get(s->magic_lines, s->magic_index)));
    const char *cmd =
        json_array_size(words) ? json_string_value(json_array_get(words, 0)) : "status";
    for (size_t i = 0; i < sizeof magic_commands / sizeof magic_commands[0]; i++) {
        if (strcmp(cmd, magic_commands[i].name) == 0) {
            magic_commands[i].run(k, words);
            json_decref(words);
            return;
        }
    }
    char err[300];
    snprintf(err, sizeof err,
             "Unknown %%spark command \"%s\". Use %%spark status, %%spark config key=value ..., "
             "%%spark restart, %%spark stop or %%spark ui.",
             cmd);
    json_decref(words);
    magic_fail(k, "SparkMagicError", err);
}

void magics_run(struct kernel *k, json_t *lines, const char *rest)
{
    struct spark *s = spark_of(k);
    json_decref(s->magic_lines);
    free(s->magic_rest);
    s->magic_lines = json_incref(lines);
    s->magic_rest = strdup(rest ? rest : "");
    s->magic_index = 0;
    magics_next(k);
}

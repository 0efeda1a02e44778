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

static void settings_html(struct spark *s, struct sb *html, struct sb *text)
{
    json_t *rows = settings_table(s->settings);
    sb_add(html, "<table><tr><th style=\"text-align:left\">setting</th><th "
                 "style=\"text-align:left\">value</th><th style=\"text-align:left\">source</th>"
                 "<th style=\"text-align:left\">why</th></tr>");
    sb_add(text, "%-48s %-28s %-12s %s\n", "setting", "value", "source", "why");
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *key = json_string_value(json_object_get(row, "key"));
        const char *value = json_string_value(json_object_get(row, "value"));
        const char *source = json_string_value(json_object_get(row, "source"));
        const char *doc = json_string_value(json_object_get(row, "doc"));
        const char *env = json_string_value(json_object_get(row, "env"));
        sb_add(html, "<tr><td><code>");
        sb_escape(html, key);
        sb_add(html, "</code></td><td><code>");
        sb_escape(html, value);
        sb_add(html, "</code></td><td>%s</td><td>", source);
        sb_escape(html, doc);
        if (env)
            sb_add(html, " (<code>%s</code>)", env);
        sb_add(html, "</td></tr>");
        sb_add(text, "%-48s %-28s %-12s %s%s%s%s\n", key, value, source, doc, env ? " (" : "",
               env ? env : "", env ? ")" : "");
    }
    sb_add(html, "</table>");
    json_decref(rows);
}

static void session_html(struct kernel *k, struct sb *html, struct sb *text)
{
    struct spark *s = spark_of(k);
    sb_add(html, "<p><b>Spark session:</b> %s", state_names[s->state]);
    sb_add(text, "Spark session: %s", state_names[s->state]);
    if (s->app_id[0]) {
        sb_add(html, " &middot; application <code>");
        sb_escape(html, s->app_id);
        sb_add(html, "</code> &middot; <a href=\"");
        sb_escape(html, s->ui_url);
        sb_add(html, "\" target=\"_blank\">Spark UI</a>");
        sb_add(text, ", application %s, Spark UI %s", s->app_id, s->ui_url);
    }
    const char *host = settings_get(s->settings, "spark.driver.host");
    if (s->state == S_READY || s->state == S_STARTING) {
        sb_add(html, " &middot; driver <code>");
        sb_escape(html, host ? host : "?");
        sb_add(html, ":%d</code>, block manager %d, UI %d (port slot %d)", s->ports.driver,
               s->ports.block_manager, s->ports.ui, s->ports.slot);
        sb_add(text, ", driver %s:%d, block manager %d, UI %d (port slot %d)", host ? host : "?",
               s->ports.driver, s->ports.block_manager, s->ports.ui, s->ports.slot);
    }
    sb_add(html, "</p>");
    sb_add(text, "\n");
    if (s->failure[0]) {
        sb_add(html, "<pre>");
        sb_escape(html, s->failure);
        sb_add(html, "</pre>");
        sb_add(text, "%s\n", s->failure);
    } else if (s->notice[0]) {
        sb_add(html, "<p>");
        sb_escape(html, s->notice);
        sb_add(html, "</p>");
        sb_add(text, "%s\n", s->notice);
    }
    char rule[768];
    share_rule_text(s, rule, sizeof rule);
    sb_add(html, "<p>");
    sb_escape(html, rule);
    sb_add(html, "</p>");
    sb_add(text, "%s\n", rule);
}

static void cluster_html(struct kernel *k, const struct master_status *ms, struct sb *html,
                         struct sb *text)
{
    struct spark *s = spark_of(k);
    sb_add(html, "<p><b>Cluster</b> ");
    sb_escape(html, ms->url);
    sb_add(html, " (");
    sb_escape(html, ms->status);
    sb_add(html, "): %d/%d cores, %lld/%lld MB in use</p>", ms->coresused, ms->cores,
           ms->memoryused, ms->memory);
    sb_add(text, "\nCluster %s (%s): %d/%d cores, %lld/%lld MB in use\n", ms->url, ms->status,
           ms->coresused, ms->cores, ms->memoryused, ms->memory);
    char *workers = master_format_workers(ms);
    if (workers) {
        sb_add(html, "<pre>");
        sb_escape(html, workers);
        sb_add(html, "</pre>");
        sb_add(text, "%s", workers);
        free(workers);
    }
    sb_add(html, "<table><tr><th>application</th><th>name</th><th>cores</th><th>MB per "
                 "executor</th><th>state</th><th>running for</th><th>held by</th></tr>");
    sb_add(text, "%-28s %-32s %5s %8s %-8s %-11s %s\n", "application", "name", "cores", "MB/exec",
           "state", "running for", "held by");
    double now = spark_wall();
    for (size_t i = 0; i < ms->napps; i++) {
        const struct master_app *a = &ms->apps[i];
        char holder[512];
        sharing_holder(a, s->app_id, s->sessions_dir, now, holder, sizeof holder);
        sb_add(html, "<tr><td><code>");
        sb_escape(html, a->id);
        sb_add(html, "</code></td><td>");
        sb_escape(html, a->name);
        sb_add(html, "</td><td>%d</td><td>%lld</td><td>", a->cores, a->memoryperexecutor);
        sb_escape(html, a->state);
        sb_add(html, "</td><td>%.0f s</td><td>", a->duration / 1000.0);
        sb_escape(html, holder);
        sb_add(html, "</td></tr>");
        const char *name = a->name ? a->name : "";
        int cut = (int)utf8_prefix(name, 32); /* a cut inside a character loses the table */
        sb_add(text, "%-28s %-32.*s %5d %8lld %-8s %9.0f s  %s\n", a->id, cut, name, a->cores,
               a->memoryperexecutor, a->state, a->duration / 1000.0, holder);
    }
    sb_add(html, "</table>");
}

static void publish_status(struct kernel *k, const struct master_status *ms, const char *why)
{
    struct sb html = {0}, text = {0};
    session_html(k, &html, &text);
    if (ms)
        cluster_html(k, ms, &html, &text);
    else if (why) {
        sb_add(&html, "<p>");
        sb_escape(&html, why);
        sb_add(&html, "</p>");
        sb_add(&text, "%s\n", why);
    }
    sb_add(&html, "<p><b>Settings</b> (strongest source first: notebook, environment, "
                  "kernelspec, default)</p>");
    sb_add(&text, "\nSettings (strongest source first: notebook, environment, kernelspec, "
                  "default)\n");
    settings_html(spark_of(k), &html, &text);
    spark_display(k, sb_str(&html), sb_str(&text));
    free(html.s);
    free(text.s);
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
        struct sb html = {0}, text = {0};
        settings_html(s, &html, &text);
        spark_display(k, sb_str(&html), sb_str(&text));
        free(html.s);
        free(text.s);
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
    if (strcmp(cmd, "status") == 0) {
        magic_status(k);
    } else if (strcmp(cmd, "config") == 0) {
        magic_config(k, words);
    } else if (strcmp(cmd, "restart") == 0) {
        session_stop(k);
        spark_stream(k, "stdout",
                     "Restarting the Spark session with the current settings; the next cell "
                     "that uses spark waits for it.\n");
        json_decref(words);
        s->magic_waits_for_start = 1; /* the executor must get spark_start before more code */
        session_start(k);
        return;
    } else if (strcmp(cmd, "stop") == 0) {
        session_stop(k);
        spark_stream(k, "stdout", "Spark session stopped; %spark restart starts a new one.\n");
        magics_done(k);
    } else if (strcmp(cmd, "ui") == 0) {
        struct sb html = {0}, text = {0};
        if (s->ui_url[0]) {
            sb_add(&html, "<a href=\"");
            sb_escape(&html, s->ui_url);
            sb_add(&html, "\" target=\"_blank\">Spark UI</a> (");
            sb_escape(&html, s->app_id);
            sb_add(&html, ")");
            sb_add(&text, "Spark UI: %s (%s)\n", s->ui_url, s->app_id);
        } else {
            sb_add(&html, "No Spark UI: the session is %s.", state_names[s->state]);
            sb_add(&text, "No Spark UI: the session is %s.\n", state_names[s->state]);
        }
        if (s->master_ui[0]) {
            sb_add(&html, " &middot; <a href=\"");
            sb_escape(&html, s->master_ui);
            sb_add(&html, "\" target=\"_blank\">master UI</a>");
            sb_add(&text, "Master UI: %s\n", s->master_ui);
        }
        spark_display(k, sb_str(&html), sb_str(&text));
        free(html.s);
        free(text.s);
        magics_done(k);
    } else {
        char err[300];
        snprintf(err, sizeof err,
                 "Unknown %%spark command \"%s\". Use %%spark status, %%spark config key=value "
                 "..., %%spark restart, %%spark stop or %%spark ui.",
                 cmd);
        json_decref(words);
        magic_fail(k, "SparkMagicError", err);
        return;
    }
    json_decref(words);
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

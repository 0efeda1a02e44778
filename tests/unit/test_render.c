/* render: the string builder and the one HTML escaper. */
#include "../../driver/render.h"

#include <criterion/criterion.h>
#include <string.h>

Test(render, escapes_markup_quotes_and_control_characters)
{
    struct sb b = {0};
    sb_escape(&b, "<a href=\"x\" title='y'>&</a>\n\tz\x7f\x1b[1m");
    cr_expect_str_eq(sb_str(&b),
                     "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;\n\tz  [1m");
    sb_free(&b);
    cr_expect_str_eq(sb_str(&b), "");
    sb_escape(&b, NULL);
    cr_expect_str_eq(sb_str(&b), "");
    sb_free(&b);
}

Test(render, keeps_utf8_and_grows_past_its_first_block)
{
    struct sb b = {0};
    for (int i = 0; i < 500; i++)
        sb_add(&b, "%d:é,", i);
    cr_expect_eq(strncmp(sb_str(&b), "0:é,1:é,", 10), 0);
    cr_expect(strstr(sb_str(&b), "499:é,") != NULL);
    cr_expect_eq(b.len, strlen(b.s));
    struct sb e = {0};
    sb_escape(&e, "naïve ∑");
    cr_expect_str_eq(sb_str(&e), "naïve ∑");
    sb_free(&b);
    sb_free(&e);
}

Test(render, sb_plain_keeps_one_line)
{
    struct sb b = {0};
    sb_plain(&b, "a\nb\tc\x01<d>");
    cr_expect_str_eq(sb_str(&b), "a b c <d>");
    sb_free(&b);
}

Test(render, doc_writes_words_both_ways_and_markup_in_the_html_only)
{
    struct doc d = {0};
    doc_mark(&d, "<p>", "");
    doc_in(&d, "b", "Job %d", 3);
    doc_say(&d, " <ran> & ");
    doc_link(&d, "Spark UI", "http://h:4040/?a=1&b=\"2\"");
    doc_mark(&d, "</p>", "\n");
    doc_in(&d, "pre", "line 1\nline <2>");
    cr_expect_str_eq(sb_str(&d.text),
                     "Job 3 <ran> & Spark UI: http://h:4040/?a=1&b=\"2\"\nline 1\nline <2>");
    cr_expect_str_eq(
        sb_str(&d.html),
        "<p><b>Job 3</b> &lt;ran&gt; &amp; <a href=\"http://h:4040/?a=1&amp;b=&quot;2&quot;\" "
        "target=\"_blank\">Spark UI</a></p><pre>line 1\nline &lt;2&gt;</pre>");
    doc_free(&d);
    cr_expect_eq(d.text.s, NULL);
}

Test(render, doc_table_aligns_cuts_on_characters_and_fills_short_rows)
{
    static const struct doc_column cols[] = {
        {"id", 4, DOC_LEFT}, {"name", 5, DOC_CUT}, {"n", 3, DOC_RIGHT}, {"why", 0, DOC_LEFT}};
    struct doc d = {0};
    doc_table(&d, cols, 4);
    doc_cell(&d);
    doc_in(&d, "code", "a1");
    doc_cell(&d);
    doc_say(&d, "%s", "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"); /* 7 characters, 14 bytes */
    doc_cell(&d);
    doc_say(&d, "%d", 7);
    doc_cell(&d);
    doc_say(&d, "x<y\n");
    doc_cell(&d); /* a second row, left short */
    doc_say(&d, "b2");
    doc_table_end(&d);
    cr_expect_str_eq(sb_str(&d.text),
                     "id   name  n   why\n"
                     "a1   \u00e9\u00e9\u00e9\u00e9\u00e9   7 x<y \n" /* its newline a space */
                     "b2             \n");
    cr_expect_str_eq(
        sb_str(&d.html),
        "<table><tr><th style=\"text-align:left\">id</th><th style=\"text-align:left\">"
        "name</th><th style=\"text-align:left\">n</th><th style=\"text-align:left\">"
        "why</th></tr><tr><td><code>a1</code></td><td>\u00e9\u00e9\u00e9\u00e9\u00e9"
        "\u00e9\u00e9</td><td>7</td><td>x&lt;y\n</td></tr><tr><td>b2</td><td></td><td>"
        "</td><td></td></tr></table>");
    doc_free(&d);
}

/* render: the string builder and the one HTML escaper. */
#include "../../driver/render.h"

#include <criterion/criterion.h>
#include <string.h>

Test(render, escapes_markup_quotes_and_control_characters)
{
    struct sb b = {0};
    sb_escape(&b, "<a href=\"x\" title='y'>&</a>\n\tz\x7f");
    cr_expect_str_eq(sb_str(&b),
                     "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;  z ");
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

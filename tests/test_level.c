/*
 * Levels and names (lib/level.c): level names both ways, the name rule,
 * and the TRAIL_LEVEL grammar with its longest-dotted-match lookup.
 */
#include "support.h"

#include "internal.h"

static void test_names(void **state) {
  (void)state;
  static const char *const names[] = {"trace", "debug", "info", "warn",
                                      "error", "fatal", "off"};
  for (int i = 0; i <= TRAIL_LEVEL_OFF; i++) {
    assert_string_equal(trail_level_name((trail_level)i), names[i]);
    trail_level lv = TRAIL_LEVEL_FATAL;
    assert_int_equal(trail_level_parse(names[i], &lv), 0);
    assert_int_equal(lv, i);
  }
  trail_level lv = TRAIL_LEVEL_TRACE;
  assert_int_equal(trail_level_parse("WARNING", &lv), 0);
  assert_int_equal(lv, TRAIL_LEVEL_WARN);
  assert_int_equal(trail_level_parse("Info", &lv), 0);
  assert_int_equal(lv, TRAIL_LEVEL_INFO);
  assert_int_equal(trail_level_parse("verbose", &lv), TRAIL_EINVAL_LEVEL);
  assert_int_equal(trail_level_parse("", &lv), TRAIL_EINVAL_LEVEL);
  assert_int_equal(trail_level_parse(NULL, &lv), TRAIL_EINVAL_LEVEL);
  assert_int_equal(lv, TRAIL_LEVEL_INFO);
  assert_string_equal(trail_level_name((trail_level)7), "?");
  assert_string_equal(trail_level_name((trail_level)-1), "?");
}

static void test_name_rule(void **state) {
  (void)state;
  assert_true(trail__name_valid("orders-api", 10));
  assert_true(trail__name_valid("http.client:v2/x_y", 18));
  assert_false(trail__name_valid("", 0));
  assert_false(trail__name_valid("a b", 3));
  assert_false(trail__name_valid("a=b", 3));
  assert_false(trail__name_valid("a,b", 3));
  assert_false(trail__name_valid("a\"", 2));
  assert_false(trail__name_valid("a\\", 2));
  assert_false(trail__name_valid("a\x7f", 2));
  assert_false(trail__name_valid("a\n", 2));
  assert_false(trail__name_valid("\xc3\xa9", 2));
}

/*
 * Logger names are narrower: letters, digits, '.', '_' and '-', so that
 * TRAIL_LEVEL can name every one of them and a mistyped separator in it
 * is an error, not a logger of its own.
 */
static void test_logger_name_rule(void **state) {
  (void)state;
  assert_true(trail__logger_name_valid("http.client_v2-X9", 17));
  char name[TRAIL__NAME_MAX + 1];
  memset(name, 'n', sizeof name);
  assert_true(trail__logger_name_valid(name, TRAIL__NAME_MAX));
  assert_false(trail__logger_name_valid(name, TRAIL__NAME_MAX + 1));
  static const char *const bad[] = {"",    "a:b", "a;b", "a b", "db.*",
                                    "a/b", "a=b", "a,b", "a\"", "\xc3\xa9"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (trail__logger_name_valid(bad[i], strlen(bad[i])))
      fail_msg("\"%s\" taken as a logger name", bad[i]);
  /* a service name may still hold them */
  assert_true(trail__name_valid("a:b;c/d*", 8));
}

static void test_spec_parse_and_lookup(void **state) {
  (void)state;
  trail__level_spec s;
  trail_config_error err;
  assert_int_equal(trail__level_spec_parse(" debug , db=warn,db.pool = trace,",
                                           &s, &err, "T"),
                   0);
  assert_int_equal(s.deflt, TRAIL_LEVEL_DEBUG);
  assert_int_equal(s.nrules, 2);
  assert_int_equal(trail__level_spec_lookup(&s, "db", 2), TRAIL_LEVEL_WARN);
  assert_int_equal(trail__level_spec_lookup(&s, "db.x", 4), TRAIL_LEVEL_WARN);
  assert_int_equal(trail__level_spec_lookup(&s, "db.pool", 7),
                   TRAIL_LEVEL_TRACE);
  assert_int_equal(trail__level_spec_lookup(&s, "db.pool.a", 9),
                   TRAIL_LEVEL_TRACE);
  assert_int_equal(trail__level_spec_lookup(&s, "dbx", 3), TRAIL_LEVEL_DEBUG);
  assert_int_equal(trail__level_spec_lookup(&s, "http", 4), TRAIL_LEVEL_DEBUG);

  /* only NAME=LEVEL items: the default stays info */
  assert_int_equal(trail__level_spec_parse("db=error", &s, NULL, "T"), 0);
  assert_int_equal(s.deflt, TRAIL_LEVEL_INFO);
  /* a repeated name: the last one counts */
  assert_int_equal(trail__level_spec_parse("db=error,db=debug", &s, NULL, "T"),
                   0);
  assert_int_equal(s.nrules, 1);
  assert_int_equal(s.rules[0].level, TRAIL_LEVEL_DEBUG);
}

static void test_spec_errors(void **state) {
  (void)state;
  static const struct {
    const char *spec;
    int code;
    const char *in_text;
  } cases[] = {
      {"verbose", TRAIL_EINVAL_LEVEL, "\"verbose\""},
      {"info,db=loud", TRAIL_EINVAL_LEVEL, "\"loud\""},
      {"info,=debug", TRAIL_EINVAL_NAME, "logger name"},
      {"info,a b=debug", TRAIL_EINVAL_NAME, "\"a b\""},
      {"info;db=debug", TRAIL_EINVAL_NAME,
       "invalid logger name \"info;db\" (" TRAIL__LOGGER_NAME_RULE
       "; items are separated by ',')"},
      {"info,my db=debug", TRAIL_EINVAL_NAME, "\"my db\""},
      {"a:b=debug", TRAIL_EINVAL_NAME, "\"a:b\""},
      {"", TRAIL_EINVAL_SPEC, "empty"},
      {" , ,", TRAIL_EINVAL_SPEC, "empty"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    trail__level_spec s;
    trail_config_error err;
    memset(&err, 0, sizeof err);
    assert_int_equal(
        trail__level_spec_parse(cases[i].spec, &s, &err, "TRAIL_LEVEL"),
        cases[i].code);
    assert_int_equal(err.code, cases[i].code);
    assert_string_equal(err.source, "TRAIL_LEVEL");
    if (strstr(err.text, cases[i].in_text) == NULL)
      fail_msg("\"%s\" not in \"%s\"", cases[i].in_text, err.text);
  }
  char many[2000] = "info";
  for (int i = 0; i < 33; i++)
    snprintf(many + strlen(many), sizeof many - strlen(many), ",n%d=debug", i);
  trail__level_spec s;
  assert_int_equal(trail__level_spec_parse(many, &s, NULL, "T"),
                   TRAIL_EINVAL_SPEC);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_name_rule),
      cmocka_unit_test(test_logger_name_rule),
      cmocka_unit_test(test_spec_parse_and_lookup),
      cmocka_unit_test(test_spec_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Loggers (lib/logger.c): the registry, child loggers with bound fields,
 * levels per logger, and the threshold the inline check reads.
 */
#include "support.h"

static int setup(void **state) {
  (void)state;
  trail_init("logger-test");
  cap_start(TRAIL_LEVEL_TRACE);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cap_stop();
  return 0;
}

/* One logger per name; invalid names give NULL, which logs as root. */
static void test_registry(void **state) {
  (void)state;
  trail_logger *a = trail_logger_get("db");
  assert_non_null(a);
  assert_ptr_equal(a, trail_logger_get("db"));
  assert_ptr_not_equal(a, trail_logger_get("db.pool"));
  assert_string_equal(trail_logger_name(a), "db");
  assert_ptr_equal(trail_logger_get(NULL), trail_logger_root());
  assert_ptr_equal(trail_logger_get("root"), trail_logger_root());
  assert_string_equal(trail_logger_name(NULL), "root");
  const char *bad[] = {"",    "has space", "quo\"te", "back\\slash",
                       "a,b", "a=b",       "tab\t",   "\xc3\xa9"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_null(trail_logger_get(bad[i]));
  char long_name[130];
  memset(long_name, 'n', 129);
  long_name[129] = '\0';
  assert_null(trail_logger_get(long_name));
  long_name[128] = '\0';
  assert_non_null(trail_logger_get(long_name));

  trail_info(trail_logger_get("bad name"), "as root");
  json_t *j = cap_json(0);
  assert_str_field(j, "logger", "root");
  json_decref(j);
}

/* Levels per logger: each filters on its own. */
static void test_level_per_logger(void **state) {
  (void)state;
  trail_logger *db = trail_logger_get("lvl.db");
  trail_logger *http = trail_logger_get("lvl.http");
  assert_int_equal(trail_logger_level(db), TRAIL_LEVEL_INFO);
  assert_int_equal(trail_logger_set_level(db, TRAIL_LEVEL_DEBUG), 0);
  assert_int_equal(trail_logger_set_level(http, TRAIL_LEVEL_ERROR), 0);
  assert_int_equal(trail_logger_set_level(http, (trail_level)9),
                   TRAIL_EINVAL_LEVEL);
  assert_true(trail_enabled(db, TRAIL_LEVEL_DEBUG));
  assert_false(trail_enabled(db, TRAIL_LEVEL_TRACE));
  assert_false(trail_enabled(http, TRAIL_LEVEL_WARN));
  trail_debug(db, "db debug");
  trail_warn(http, "http warn");
  trail_error(http, "http error");
  assert_int_equal(cap_count(), 2);
  json_t *j = cap_json(0);
  assert_str_field(j, "logger", "lvl.db");
  json_decref(j);
  j = cap_json(1);
  assert_str_field(j, "message", "http error");
  json_decref(j);
  trail_logger_set_level(db, TRAIL_LEVEL_INFO);
  trail_logger_set_level(http, TRAIL_LEVEL_INFO);
}

/* The threshold also follows the sinks: no sink at debug, no debug. */
static void test_threshold_follows_sinks(void **state) {
  (void)state;
  trail_logger *lg = trail_logger_get("thr");
  trail_logger_set_level(lg, TRAIL_LEVEL_TRACE);
  assert_true(trail_enabled(lg, TRAIL_LEVEL_TRACE));
  trail_sinks_clear();
  assert_false(trail_enabled(lg, TRAIL_LEVEL_FATAL));
  int id = trail_sink_add_callback(cap_sink, NULL, TRAIL_LEVEL_WARN);
  assert_true(id >= 0);
  assert_false(trail_enabled(lg, TRAIL_LEVEL_INFO));
  assert_true(trail_enabled(lg, TRAIL_LEVEL_WARN));
  trail_logger_set_level(lg, TRAIL_LEVEL_INFO);
}

/* A child has its parent's name, level and fields, then its own. */
static void test_child(void **state) {
  (void)state;
  trail_logger *db = trail_logger_get("child.db");
  trail_logger_set_level(db, TRAIL_LEVEL_DEBUG);
  trail_logger *c1 =
      trail_logger_child(db, TRAIL_STR("pool", "main"), TRAIL_INT("size", 8));
  trail_logger *c2 = trail_logger_child(c1, TRAIL_STR("conn", "7"),
                                        TRAIL_STR("pool", "inner"));
  assert_non_null(c1);
  assert_non_null(c2);
  assert_string_equal(trail_logger_name(c2), "child.db");
  assert_int_equal(trail_logger_level(c2), TRAIL_LEVEL_DEBUG);
  trail_debug(c2, "q", TRAIL_INT("rows", 1));
  json_t *j = cap_json(0);
  assert_key_order(j);
  assert_str_field(j, "logger", "child.db");
  assert_str_field(j, "pool", "main");
  assert_str_field(j, "_pool", "inner");
  assert_str_field(j, "conn", "7");
  assert_int_equal(json_integer_value(json_object_get(j, "size")), 8);
  /* bound fields come before the event's, parent's before child's */
  const char *t = cap_text(0);
  const char *p = strstr(t, "\"pool\"");
  const char *s = strstr(t, "\"size\"");
  const char *c = strstr(t, "\"conn\"");
  const char *r = strstr(t, "\"rows\"");
  assert_true(p < s && s < c && c < r);
  json_decref(j);
  /* the child's own level */
  trail_logger_set_level(c2, TRAIL_LEVEL_WARN);
  trail_info(c2, "filtered");
  trail_info(c1, "passes");
  assert_int_equal(cap_count(), 2);
  trail_logger_free(c2);
  trail_logger_free(c1);
  trail_logger_free(NULL);
  trail_logger_free(db); /* registry loggers are not freed */
  trail_info(db, "still valid");
  assert_int_equal(cap_count(), 3);
  trail_logger_set_level(db, TRAIL_LEVEL_INFO);
}

/* A child of NULL is a child of root; huge bound values are bounded. */
static void test_child_of_root_and_bounds(void **state) {
  (void)state;
  size_t n = 100000;
  char *big = malloc(n + 1);
  memset(big, 'b', n);
  big[n] = '\0';
  trail_logger *c = trail_logger_child(NULL, TRAIL_STR("big", big));
  free(big);
  assert_non_null(c);
  trail_info(c, "m");
  assert_int_equal(cap_count(), 1);
  assert_true(cap.lines[0].len <= trail_max_line());
  json_t *j = cap_json(0);
  assert_str_field(j, "logger", "root");
  json_decref(j);
  trail_logger_free(c);
}

/* trail_levels_set applies by name to registry loggers and children. */
static void test_levels_spec_applies(void **state) {
  (void)state;
  trail_logger *db = trail_logger_get("spec.db");
  trail_logger *pool = trail_logger_get("spec.db.pool");
  trail_logger *other = trail_logger_get("spec.dbx");
  trail_logger *child = trail_logger_child(db, TRAIL_STR("k", "v"));
  trail_config_error err;
  assert_int_equal(trail_levels_set("warn,spec.db=debug", &err), 0);
  assert_int_equal(trail_logger_level(db), TRAIL_LEVEL_DEBUG);
  assert_int_equal(trail_logger_level(pool), TRAIL_LEVEL_DEBUG);
  assert_int_equal(trail_logger_level(child), TRAIL_LEVEL_DEBUG);
  assert_int_equal(trail_logger_level(other), TRAIL_LEVEL_WARN);
  assert_int_equal(trail_logger_level(NULL), TRAIL_LEVEL_WARN);
  trail_logger *later = trail_logger_get("spec.db.later");
  assert_int_equal(trail_logger_level(later), TRAIL_LEVEL_DEBUG);
  trail_logger_free(child);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_level_per_logger, setup, teardown),
      cmocka_unit_test_setup_teardown(test_threshold_follows_sinks, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_child, setup, teardown),
      cmocka_unit_test_setup_teardown(test_child_of_root_and_bounds, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_levels_spec_applies, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

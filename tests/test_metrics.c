/*
 * The counters as Prometheus text (lib/metrics.c): every line checked
 * against the text exposition format's grammar, the values against the
 * counters, and the snprintf-like size contract.
 */
#include "support.h"

#include <regex.h>

static int setup(void **state) {
  (void)state;
  trail_init("metrics-test");
  cap_start(TRAIL_LEVEL_TRACE);
  trail_counters_reset();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cap_stop();
  return 0;
}

/*
 * The exposition format: "# HELP name text", "# TYPE name counter|gauge",
 * then samples "name{label="value",...} number"; a metric's TYPE before
 * its samples, each TYPE once; the text ends with a newline.
 */
static void check_exposition(const char *text) {
  regex_t help, type, sample;
  assert_int_equal(regcomp(&help, "^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* [^\n]+$",
                           REG_EXTENDED | REG_NOSUB),
                   0);
  assert_int_equal(
      regcomp(&type, "^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$",
              REG_EXTENDED),
      0);
  assert_int_equal(
      regcomp(&sample,
              "^([a-zA-Z_:][a-zA-Z0-9_:]*)\\{[a-zA-Z_][a-zA-Z0-9_]*=\"[^"
              "\"\\\\\n]*\""
              "(,[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"\\\\\n]*\")*\\} [0-9]+$",
              REG_EXTENDED),
      0);
  size_t len = strlen(text);
  assert_true(len > 0 && text[len - 1] == '\n');
  char current[128] = "", typed[32][128];
  size_t ntyped = 0;
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    char line[512];
    size_t n = (size_t)(nl - p);
    assert_true(n < sizeof line);
    memcpy(line, p, n);
    line[n] = '\0';
    regmatch_t m[2];
    if (regexec(&help, line, 0, NULL, 0) == 0) {
      /* fine */
    } else if (regexec(&type, line, 2, m, 0) == 0) {
      snprintf(current, sizeof current, "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
               line + m[1].rm_so);
      for (size_t i = 0; i < ntyped; i++)
        assert_string_not_equal(typed[i], current);
      snprintf(typed[ntyped++], sizeof typed[0], "%s", current);
    } else if (regexec(&sample, line, 2, m, 0) == 0) {
      char name[128];
      snprintf(name, sizeof name, "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
               line + m[1].rm_so);
      assert_string_equal(name, current);
    } else {
      fail_msg("not exposition format: %s", line);
    }
    p = nl + 1;
  }
  regfree(&help);
  regfree(&type);
  regfree(&sample);
}

static unsigned long long value_of(const char *text, const char *series) {
  const char *p = strstr(text, series);
  if (p == NULL)
    fail_msg("no series %s", series);
  return strtoull(p + strlen(series) + 1, NULL, 10);
}

static void test_render(void **state) {
  (void)state;
  trail_info(NULL, "a");
  trail_info(NULL, "b");
  trail_error(NULL, "c");
  char buf[4096];
  size_t n = trail_metrics_render(buf, sizeof buf);
  assert_true(n < sizeof buf);
  assert_int_equal(strlen(buf), n);
  check_exposition(buf);
  trail_counters c;
  trail_counters_get(&c);
  assert_int_equal(value_of(buf,
                            "trail_log_lines_total{service=\"metrics-test\","
                            "level=\"info\"}"),
                   2);
  assert_int_equal(value_of(buf,
                            "trail_log_lines_total{service=\"metrics-test\","
                            "level=\"error\"}"),
                   1);
  assert_int_equal(
      value_of(buf, "trail_log_bytes_total{service=\"metrics-test\"}"),
      c.bytes);
  assert_int_equal(
      value_of(buf, "trail_log_dropped_total{service=\"metrics-test\"}"), 0);
  assert_non_null(strstr(buf, "# TYPE trail_log_queue_high_water_bytes gauge"));
}

/* Too small a buffer: cut, NUL-terminated, and the needed size returned. */
static void test_size_contract(void **state) {
  (void)state;
  char full[4096], small[100];
  size_t n = trail_metrics_render(full, sizeof full);
  memset(small, 'x', sizeof small);
  assert_int_equal(trail_metrics_render(small, sizeof small), n);
  assert_int_equal(small[sizeof small - 1], '\0');
  assert_memory_equal(small, full, sizeof small - 1);
  assert_int_equal(trail_metrics_render(NULL, 0), n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_render, setup, teardown),
      cmocka_unit_test_setup_teardown(test_size_contract, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Flood control (lib/sample.c): the first N events per second and message,
 * then every Mth; the rest counted and reported in a line of their own.
 * The sampler's clock is replaced, so no test depends on real seconds.
 */
#include "support.h"

#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

static uint64_t fake_sec = 1000;
static uint64_t fake_clock(void) { return fake_sec; }

static int setup(void **state) {
  (void)state;
  trail_init("sample-test");
  cap_start(TRAIL_LEVEL_TRACE);
  trail__sample_clock = fake_clock;
  trail_counters_reset();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cap_stop();
  return 0;
}

static size_t count_msg(const char *msg) {
  size_t n = 0;
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    if (strcmp(jstr(j, "message"), msg) == 0)
      n++;
    json_decref(j);
  }
  return n;
}

/* 1000 events in one second: 10 + every 100th pass; 981 reported. */
static void test_first_then_every(void **state) {
  (void)state;
  trail_logger *lg = trail_logger_get("hot");
  assert_int_equal(trail_logger_set_sampling(lg, 10, 100), 0);
  for (int i = 0; i < 1000; i++)
    trail_error(lg, "db down", TRAIL_INT("i", i));
  assert_int_equal(count_msg("db down"), 19);
  trail_counters c;
  trail_counters_get(&c);
  assert_int_equal(c.suppressed, 981);
  assert_int_equal(count_msg("log events suppressed by sampling"), 9);

  /* Another message passes, after the report of what is pending. */
  cap_clear();
  trail_error(lg, "other");
  assert_int_equal(cap_count(), 2);
  json_t *j = cap_json(0);
  assert_str_field(j, "message", "log events suppressed by sampling");
  assert_str_field(j, "logger", "hot");
  assert_str_field(j, "level", "warn");
  json_decref(j);

  /* every report together accounts for every suppressed event */
  trail_logger_set_sampling(lg, 0, 0);
}

/* Reports add up to the counter, with flush writing the last one. */
static void test_reports_add_up(void **state) {
  (void)state;
  trail_logger *lg = trail_logger_get("hot2");
  assert_int_equal(trail_logger_set_sampling(lg, 3, 0), 0);
  for (int i = 0; i < 500; i++)
    trail_warn(lg, "retrying");
  assert_int_equal(trail_flush(), 0);
  uint64_t reported = 0;
  size_t passed = 0;
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    if (strcmp(jstr(j, "message"), "retrying") == 0)
      passed++;
    else
      reported +=
          (uint64_t)json_integer_value(json_object_get(j, "suppressed"));
    json_decref(j);
  }
  assert_int_equal(passed, 3);
  assert_int_equal(reported, 497);
  trail_counters c;
  trail_counters_get(&c);
  assert_int_equal(c.suppressed, 497);
  trail_logger_set_sampling(lg, 0, 0);
}

/* A new second starts a new count; messages count apart; fatal passes. */
static void test_seconds_messages_fatal(void **state) {
  (void)state;
  trail_logger *lg = trail_logger_get("hot3");
  trail_logger_set_sampling(lg, 2, 0);
  for (int i = 0; i < 5; i++) {
    trail_info(lg, "a");
    trail_info(lg, "b");
    trail_fatal(lg, "c");
  }
  assert_int_equal(count_msg("a"), 2);
  assert_int_equal(count_msg("b"), 2);
  assert_int_equal(count_msg("c"), 5);
  fake_sec++;
  for (int i = 0; i < 5; i++)
    trail_info(lg, "a");
  assert_int_equal(count_msg("a"), 4);
  /* the f variants sample by their format */
  for (int i = 0; i < 5; i++)
    trail_infof(lg, "request %d failed", i);
  assert_int_equal(cap_count() - count_msg("a") - count_msg("b") -
                       count_msg("c") -
                       count_msg("log events suppressed by sampling"),
                   2);
  trail_logger_set_sampling(lg, 0, 0);
}

/* Children inherit; trail_sampling_set reaches every logger; off again. */
static void test_inherit_and_global(void **state) {
  (void)state;
  assert_int_equal(trail_sampling_set(1, 0), 0);
  trail_logger *lg = trail_logger_get("hot4");
  trail_logger *child = trail_logger_child(lg, TRAIL_STR("k", "v"));
  for (int i = 0; i < 4; i++) {
    trail_info(NULL, "root");
    trail_info(child, "child");
  }
  assert_int_equal(count_msg("root"), 1);
  assert_int_equal(count_msg("child"), 1);
  trail_logger_free(child);
  assert_int_equal(trail_sampling_set(0, 0), 0);
  cap_clear();
  for (int i = 0; i < 4; i++)
    trail_info(NULL, "root");
  assert_int_equal(count_msg("root"), 4);
}

/* TRAIL_SAMPLING from the environment, and a bad value. */
static void test_env(void **state) {
  (void)state;
  setenv("TRAIL_SAMPLING", "2,0", 1);
  trail_config_from_env();
  for (int i = 0; i < 5; i++)
    trail_info(trail_logger_get("envlg"), "e");
  assert_int_equal(count_msg("e"), 2);
  setenv("TRAIL_SAMPLING", "lots", 1);
  assert_int_equal(trail_config_from_env(), 1);
  unsetenv("TRAIL_SAMPLING");
  trail_sampling_set(0, 0);
}

/*
 * Never silent: what a logger held back is reported when its sampling
 * changes, when a child goes, with no request's ids, and even when the
 * sinks take only error and above.
 */
static void test_never_silent(void **state) {
  (void)state;
  trail_logger *lg = trail_logger_get("hot5");
  trail_logger_set_sampling(lg, 1, 0);
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  trail_ctx *prev = trail_ctx_enter(&ctx);
  for (int i = 0; i < 10; i++)
    trail_info(lg, "x");
  trail_logger_set_sampling(lg, 0, 0); /* the change reports the 9 */
  trail_ctx_leave(prev);
  json_t *j = cap_json(cap_count() - 1);
  assert_str_field(j, "message", "log events suppressed by sampling");
  assert_int_equal(json_integer_value(json_object_get(j, "suppressed")), 9);
  assert_null(json_object_get(j, "request_id"));
  json_decref(j);

  trail_logger *child = trail_logger_child(NULL, TRAIL_STR("k", "v"));
  trail_logger_set_sampling(child, 1, 0);
  for (int i = 0; i < 5; i++)
    trail_info(child, "y");
  trail_logger_free(child); /* the child's 4 are reported as it goes */
  j = cap_json(cap_count() - 1);
  assert_int_equal(json_integer_value(json_object_get(j, "suppressed")), 4);
  json_decref(j);

  /* sinks at error: the report goes out at error rather than not at all */
  cap_start(TRAIL_LEVEL_ERROR);
  trail_logger_set_sampling(lg, 1, 0);
  for (int i = 0; i < 3; i++)
    trail_error(lg, "z");
  assert_int_equal(trail_flush(), 0);
  j = cap_json(cap_count() - 1);
  assert_str_field(j, "level", "error");
  assert_int_equal(json_integer_value(json_object_get(j, "suppressed")), 2);
  json_decref(j);
  trail_logger_set_sampling(lg, 0, 0);
}

/*
 * A normal exit reports what flood control still holds back: sync mode, and
 * async mode with the writer started before or after sampling was set.
 */
enum { EXIT_SYNC, EXIT_ASYNC_FIRST, EXIT_ASYNC_LAST };

static void exit_child(const char *path, int mode) {
  trail_init("sample-exit");
  trail_sinks_clear();
  if (trail_sink_add_file(path, TRAIL_LEVEL_TRACE) < 0)
    _exit(3);
  if (mode == EXIT_ASYNC_FIRST && trail_async_start(NULL) != 0)
    _exit(4);
  if (trail_sampling_set(1, 1000000) != 0)
    _exit(5);
  if (mode == EXIT_ASYNC_LAST && trail_async_start(NULL) != 0)
    _exit(4);
  for (int i = 0; i < 10; i++)
    trail_warn(NULL, "hot loop"); /* one written, nine held back */
  exit(0);                        /* no trail_flush(), no trail_shutdown() */
}

static void test_reported_at_exit(void **state) {
  (void)state;
  for (int mode = EXIT_SYNC; mode <= EXIT_ASYNC_LAST; mode++) {
    char dir[] = "/tmp/trail-sample-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/app.log", dir);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
      exit_child(path, mode);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    int hot = 0, reports = 0;
    while (fgets(line, sizeof line, f) != NULL) {
      json_t *j = parse_line(line, strlen(line));
      const char *m = json_string_value(json_object_get(j, "message"));
      hot += strcmp(m, "hot loop") == 0;
      if (strcmp(m, "log events suppressed by sampling") == 0) {
        reports++;
        assert_int_equal(json_integer_value(json_object_get(j, "suppressed")),
                         9);
      }
      json_decref(j);
    }
    fclose(f);
    assert_int_equal(hot, 1);
    assert_int_equal(reports, 1);
    unlink(path);
    rmdir(dir);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_first_then_every, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reports_add_up, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seconds_messages_fatal, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_inherit_and_global, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env, setup, teardown),
      cmocka_unit_test_setup_teardown(test_never_silent, setup, teardown),
      cmocka_unit_test(test_reported_at_exit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Configuration (lib/config.c, lib/level.c, lib/error.c): the TRAIL_*
 * environment variables and their errors on stderr, trail_levels_set and
 * trail_config_error, service names, the maximum line length, the level
 * names, and the error names and texts.
 */
#define _GNU_SOURCE
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

/* ---- helpers ------------------------------------------------------------ */

/*
 * Unsets every TRAIL_* variable, the test harness's own included: each test
 * sets what it tests, and no other name may add a line to what it reads.
 */
static void env_clear(void) {
  for (size_t i = 0; environ[i] != NULL;) {
    size_t n = strcspn(environ[i], "=");
    if (strncmp(environ[i], "TRAIL_", 6) != 0) {
      i++;
      continue;
    }
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)n, environ[i]);
    unsetenv(name);
    i = 0;
  }
}

static size_t count_newlines(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    n += s[i] == '\n';
  return n;
}

/* A file of JSON lines: exactly want lines, each parsed; the first kept. */
static json_t *file_lines(const char *path, size_t want) {
  size_t len;
  char *buf = read_file(path, &len);
  assert_int_equal(count_newlines(buf, len), want);
  json_t *first = NULL;
  for (size_t at = 0; at < len;) {
    const char *end = memchr(buf + at, '\n', len - at);
    assert_non_null(end);
    size_t n = (size_t)(end - (buf + at)) + 1;
    json_t *j = parse_line(buf + at, n);
    assert_key_order(j);
    if (first == NULL)
      first = j;
    else
      json_decref(j);
    at += n;
  }
  free(buf);
  return first;
}

/* Where stderr (or stdout) goes while a call runs. */

/* trail_config_from_env() with stderr in a file; returns what it wrote. */
static char *from_env_stderr(int *rc) {
  char path[256];
  tmp_path(path, sizeof path, "stderr.txt");
  redirect r = redirect_begin(STDERR_FILENO, path);
  *rc = trail_config_from_env();
  redirect_end(r);
  size_t len;
  return read_file(path, &len);
}

/*
 * The complaint about one bad variable: exactly one line, starting with
 * "trail: VAR=", naming the value, and holding every string in want.
 */
static void assert_one_complaint(const char *text, const char *var,
                                 const char *value, const char *const *want) {
  size_t len = strlen(text);
  if (count_newlines(text, len) != 1 || text[len - 1] != '\n')
    fail_msg("want exactly one line on stderr, got: \"%s\"", text);
  char head[64];
  snprintf(head, sizeof head, "trail: %s=", var);
  if (strncmp(text, head, strlen(head)) != 0)
    fail_msg("the line does not start with %s: %s", head, text);
  if (value[0] != '\0' && strstr(text, value) == NULL)
    fail_msg("the line does not name the value %s: %s", value, text);
  for (; *want; want++)
    if (strstr(text, *want) == NULL)
      fail_msg("the line lacks \"%s\": %s", *want, text);
}

static int setup(void **state) {
  (void)state;
  env_clear();
  trail_shutdown();
  snprintf(tmpdir, sizeof tmpdir, "/tmp/trail-config-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  env_clear();
  cap_stop();
  remove_tree(tmpdir);
  return 0;
}

/* The last captured line, parsed; the caller json_decref()s it. */
static json_t *last_line(void) {
  assert_true(cap_count() > 0);
  return cap_json(cap_count() - 1);
}

static const char *const level_list =
    "trace, debug, info, warn, error, fatal, off";

/* ---- TRAIL_SERVICE ------------------------------------------------------ */

/*
 * TRAIL_SERVICE overrides trail_init's argument; without it the argument is
 * the service, and without either the program's name.
 */
static void test_env_service(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_INFO);
  setenv("TRAIL_SERVICE", "orders-api", 1);
  assert_int_equal(trail_init("argument-name"), 0);
  assert_string_equal(trail_service(), "orders-api");
  trail_info(NULL, "one");
  json_t *j = last_line();
  assert_str_field(j, "service", "orders-api");
  json_decref(j);

  unsetenv("TRAIL_SERVICE");
  assert_int_equal(trail_init("billing"), 0);
  trail_info(NULL, "two");
  j = last_line();
  assert_str_field(j, "service", "billing");
  json_decref(j);

  assert_int_equal(cap_count(), 2);
  trail_shutdown();
  cap_start(TRAIL_LEVEL_INFO);
  assert_int_equal(trail_init(NULL), 0);
  assert_string_equal(trail_service(), program_invocation_short_name);
  trail_info(NULL, "three");
  j = last_line();
  assert_str_field(j, "service", program_invocation_short_name);
  json_decref(j);
  assert_int_equal(cap_count(), 1);
}

/* ---- TRAIL_CALLER ------------------------------------------------------- */

/* The caller key after TRAIL_CALLER=value: "test_config.c:LINE" or absent. */
static void check_caller(const char *value, int want_on) {
  trail_shutdown();
  cap_start(TRAIL_LEVEL_INFO);
  if (value)
    setenv("TRAIL_CALLER", value, 1);
  else
    unsetenv("TRAIL_CALLER");
  assert_int_equal(trail_config_from_env(), 0);
  const int line = __LINE__ + 1;
  trail_info(NULL, "where");
  trail_log(NULL, TRAIL_LEVEL_INFO, "function, no call site", NULL, 0);
  assert_int_equal(cap_count(), 2);
  json_t *j = cap_json(0);
  assert_key_order(j);
  if (want_on) {
    char want[64];
    snprintf(want, sizeof want, "test_config.c:%d", line);
    assert_str_field(j, "caller", want);
  } else {
    assert_null(json_object_get(j, "caller"));
  }
  json_decref(j);
  j = cap_json(1);
  assert_null(json_object_get(j, "caller"));
  json_decref(j);
}

/* TRAIL_CALLER's true and false spellings, case-insensitive; off by default. */
static void test_env_caller(void **state) {
  (void)state;
  check_caller(NULL, 0);
  static const char *const on[] = {"1", "true", "YES", "On", "TRUE"};
  static const char *const off[] = {"0", "false", "no", "OFF", "False"};
  for (size_t i = 0; i < sizeof on / sizeof on[0]; i++)
    check_caller(on[i], 1);
  for (size_t i = 0; i < sizeof off / sizeof off[0]; i++)
    check_caller(off[i], 0);
}

/* ---- TRAIL_LEVEL -------------------------------------------------------- */

/* The number of captured lines from logger name at level lv. */
static size_t count_lines(const char *logger, const char *lv) {
  size_t n = 0;
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    if (strcmp(jstr(j, "logger"), logger) == 0 &&
        strcmp(jstr(j, "level"), lv) == 0)
      n++;
    json_decref(j);
  }
  return n;
}

/*
 * TRAIL_LEVEL=info,db=debug: db and its dotted descendants at debug, dbx
 * and the others at info, for loggers made before and after.
 */
static void test_env_level_descendants(void **state) {
  (void)state;
  static const char *const names[] = {"db", "db.pool", "db.pool.conn", "dbx",
                                      "http"};
  trail_logger *before[5];
  for (size_t i = 0; i < 5; i++)
    before[i] = trail_logger_get(names[i]);
  cap_start(TRAIL_LEVEL_TRACE);
  setenv("TRAIL_LEVEL", "info,db=debug", 1);
  assert_int_equal(trail_config_from_env(), 0);
  for (size_t i = 0; i < 5; i++) {
    trail_debug(before[i], "d");
    trail_info(before[i], "i");
  }
  trail_logger *late = trail_logger_get("db.made-later");
  trail_debug(late, "d");
  trail_debug(NULL, "d");
  trail_info(NULL, "i");
  assert_int_equal(cap_count(), 3 + 5 + 1 + 1);
  assert_int_equal(count_lines("db", "debug"), 1);
  assert_int_equal(count_lines("db.pool", "debug"), 1);
  assert_int_equal(count_lines("db.pool.conn", "debug"), 1);
  assert_int_equal(count_lines("db.made-later", "debug"), 1);
  assert_int_equal(count_lines("dbx", "debug"), 0);
  assert_int_equal(count_lines("http", "debug"), 0);
  assert_int_equal(count_lines("root", "debug"), 0);
  for (size_t i = 0; i < 5; i++)
    assert_int_equal(count_lines(names[i], "info"), 1);
  assert_int_equal(count_lines("root", "info"), 1);
}

/*
 * The longest matching name wins, whatever the order of the items; level
 * names are case-insensitive and "warning" is warn.
 */
static void test_env_level_longest_match(void **state) {
  (void)state;
  static const char *const specs[] = {
      "warn, db=debug, db.pool=error",
      "db.pool=ERROR,db=Debug,Warning",
  };
  static const struct {
    const char *name;
    trail_level level;
  } want[] = {
      {"root", TRAIL_LEVEL_WARN},
      {"db", TRAIL_LEVEL_DEBUG},
      {"db.pool", TRAIL_LEVEL_ERROR},
      {"db.pool.conn", TRAIL_LEVEL_ERROR},
      {"db.poolx", TRAIL_LEVEL_DEBUG},
      {"dbx", TRAIL_LEVEL_WARN},
      {"db.pool.conn.x", TRAIL_LEVEL_ERROR},
  };
  const size_t nwant = sizeof want / sizeof want[0];
  for (size_t s = 0; s < 2; s++) {
    trail_shutdown();
    cap_start(TRAIL_LEVEL_TRACE);
    setenv("TRAIL_LEVEL", specs[s], 1);
    assert_int_equal(trail_config_from_env(), 0);
    size_t expected = 0;
    for (size_t i = 0; i < nwant; i++) {
      trail_logger *lg = trail_logger_get(want[i].name);
      assert_non_null(lg);
      assert_int_equal(trail_logger_level(lg), want[i].level);
      for (int l = TRAIL_LEVEL_TRACE; l <= TRAIL_LEVEL_FATAL; l++) {
        trail_log(lg, (trail_level)l, "m", NULL, 0);
        if (l >= (int)want[i].level)
          expected++;
      }
    }
    assert_int_equal(cap_count(), expected);
    for (size_t i = 0; i < nwant; i++)
      for (int l = TRAIL_LEVEL_TRACE; l <= TRAIL_LEVEL_FATAL; l++)
        assert_int_equal(count_lines(want[i].name, trail_level_name(l)),
                         l >= (int)want[i].level ? 1 : 0);
  }
}

/* "off" for a name silences it and its descendants, even at fatal. */
static void test_env_level_off(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_TRACE);
  setenv("TRAIL_LEVEL", "info,http.client=off", 1);
  assert_int_equal(trail_config_from_env(), 0);
  trail_fatal(trail_logger_get("http.client"), "no");
  trail_fatal(trail_logger_get("http.client.pool"), "no");
  trail_fatal(trail_logger_get("http"), "yes");
  assert_int_equal(cap_count(), 1);
  json_t *j = cap_json(0);
  assert_str_field(j, "logger", "http");
  json_decref(j);
}

/* ---- TRAIL_OUTPUT ------------------------------------------------------- */

/* TRAIL_OUTPUT=path: trail_init sends the lines to that file. */
static void test_env_output_file(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "env.log");
  setenv("TRAIL_OUTPUT", path, 1);
  setenv("TRAIL_SERVICE", "file-svc", 1);
  assert_int_equal(trail_init("ignored"), 0);
  trail_info(NULL, "to the file", TRAIL_INT("n", 1));
  trail_warn(NULL, "again", TRAIL_INT("n", 2));
  json_t *j = file_lines(path, 2);
  assert_str_field(j, "message", "to the file");
  assert_str_field(j, "service", "file-svc");
  json_decref(j);
}

/* TRAIL_OUTPUT=stdout and =stderr send the lines to fd 1 and fd 2. */
static void test_env_output_std(void **state) {
  (void)state;
  static const struct {
    const char *value;
    int fd;
  } cases[] = {{"stderr", STDERR_FILENO}, {"stdout", STDOUT_FILENO}};
  for (size_t k = 0; k < 2; k++) {
    char path[256];
    tmp_path(path, sizeof path, cases[k].value);
    trail_shutdown();
    cap_start(TRAIL_LEVEL_TRACE);
    setenv("TRAIL_OUTPUT", cases[k].value, 1);
    redirect r = redirect_begin(cases[k].fd, path);
    int rc = trail_init("std-svc");
    trail_info(NULL, cases[k].value);
    redirect_end(r);
    assert_int_equal(rc, 0);
    assert_int_equal(cap_count(), 0); /* replaced */
    json_t *j = file_lines(path, 1);
    assert_str_field(j, "message", cases[k].value);
    assert_str_field(j, "service", "std-svc");
    json_decref(j);
  }
}

/* ---- TRAIL_MAX_LINE ----------------------------------------------------- */

/* Accepted TRAIL_MAX_LINE values: bytes, k/K and m/M suffixes. */
static void test_env_max_line(void **state) {
  (void)state;
  static const struct {
    const char *value;
    size_t bytes;
  } good[] = {
      {"2048", 2048},    {"4096", 4096},         {"65536", 65536},
      {"2k", 2048},      {"64k", 65536},         {"64K", 65536},
      {"1m", 1048576},   {"1M", 1048576},        {"16m", 16777216},
      {"16M", 16777216}, {"16777216", 16777216}, {"16384k", 16777216},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    trail_shutdown();
    setenv("TRAIL_MAX_LINE", good[i].value, 1);
    int rc;
    char *err = from_env_stderr(&rc);
    if (rc != 0 || err[0] != '\0')
      fail_msg("TRAIL_MAX_LINE=%s rejected: %s", good[i].value, err);
    free(err);
    assert_int_equal(trail_max_line(), good[i].bytes);
  }
}

/* TRAIL_MAX_LINE=2k cuts a long line to 2048 bytes; 64k does not. */
static void test_env_max_line_effect(void **state) {
  (void)state;
  char *msg = malloc(5001);
  assert_non_null(msg);
  memset(msg, 'x', 5000);
  msg[5000] = '\0';
  cap_start(TRAIL_LEVEL_INFO);
  setenv("TRAIL_MAX_LINE", "2k", 1);
  assert_int_equal(trail_config_from_env(), 0);
  trail_info(NULL, msg);
  setenv("TRAIL_MAX_LINE", "64k", 1);
  assert_int_equal(trail_config_from_env(), 0);
  trail_info(NULL, msg);
  assert_int_equal(cap_count(), 2);
  assert_true(cap.lines[0].len <= 2048);
  json_t *j = cap_json(0);
  assert_true(json_is_true(json_object_get(j, "truncated")));
  assert_true(strlen(jstr(j, "message")) < 5000);
  json_decref(j);
  j = cap_json(1);
  assert_null(json_object_get(j, "truncated"));
  assert_string_equal(jstr(j, "message"), msg);
  json_decref(j);
  free(msg);
}

/* ---- bad values --------------------------------------------------------- */

/*
 * A bad TRAIL_LEVEL: one stderr line naming it and the accepted levels, the
 * whole value ignored (info stays), trail_init still succeeds.
 */
static void test_env_bad_level(void **state) {
  (void)state;
  static const char *const bad[] = {
      "info,db=verbose",     "verbose", "",      " , ",
      "debug,bad name=info", "db=",     "=debug"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    trail_shutdown();
    cap_start(TRAIL_LEVEL_TRACE);
    setenv("TRAIL_LEVEL", bad[i], 1);
    int rc;
    char *text = from_env_stderr(&rc);
    assert_int_equal(rc, 1);
    const char *want_level[] = {level_list, "using \"info\"", NULL};
    const char *want_name[] = {TRAIL__LOGGER_NAME_RULE, "using \"info\"", NULL};
    assert_one_complaint(text, "TRAIL_LEVEL", bad[i],
                         strstr(bad[i], "bad name") || bad[i][0] == '='
                             ? want_name
                             : want_level);
    free(text);
    trail_logger *db = trail_logger_get("db");
    assert_int_equal(trail_logger_level(db), TRAIL_LEVEL_INFO);
    assert_int_equal(trail_logger_level(NULL), TRAIL_LEVEL_INFO);
    trail_debug(db, "no");
    trail_debug(NULL, "no");
    trail_info(db, "yes");
    assert_int_equal(cap_count(), 1);
  }
  /* trail_init ignores the bad variable and applies the good ones. */
  trail_shutdown();
  cap_start(TRAIL_LEVEL_TRACE);
  setenv("TRAIL_LEVEL", "loud", 1);
  setenv("TRAIL_SERVICE", "still-applied", 1);
  char path[256];
  tmp_path(path, sizeof path, "init-stderr.txt");
  redirect r = redirect_begin(STDERR_FILENO, path);
  int rc = trail_init("svc");
  redirect_end(r);
  assert_int_equal(rc, 0);
  size_t len;
  char *text = read_file(path, &len);
  const char *want[] = {level_list, NULL};
  assert_one_complaint(text, "TRAIL_LEVEL", "loud", want);
  free(text);
  trail_debug(NULL, "no");
  trail_info(NULL, "yes");
  assert_int_equal(cap_count(), 1);
  json_t *j = cap_json(0);
  assert_str_field(j, "service", "still-applied");
  json_decref(j);
}

/* A bad TRAIL_SERVICE: one line, the rule; the program's name stays. */
static void test_env_bad_service(void **state) {
  (void)state;
  static const char *const bad[] = {"bad name", "", "a,b", "a=b", "quo\"te"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    trail_shutdown();
    cap_start(TRAIL_LEVEL_INFO);
    setenv("TRAIL_SERVICE", bad[i], 1);
    int rc;
    char *text = from_env_stderr(&rc);
    assert_int_equal(rc, 1);
    const char *want[] = {"1 to 128 printable ASCII", NULL};
    assert_one_complaint(text, "TRAIL_SERVICE", bad[i], want);
    free(text);
    trail_info(NULL, "m");
    json_t *j = last_line();
    assert_str_field(j, "service", program_invocation_short_name);
    json_decref(j);
  }
}

/*
 * A bad TRAIL_CALLER: one line with the accepted spellings; caller stays
 * off.
 */
static void test_env_bad_caller(void **state) {
  (void)state;
  static const char *const bad[] = {"maybe", "", "2", "enabled", " 1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    trail_shutdown();
    cap_start(TRAIL_LEVEL_INFO);
    setenv("TRAIL_CALLER", bad[i], 1);
    int rc;
    char *text = from_env_stderr(&rc);
    assert_int_equal(rc, 1);
    const char *want[] = {"1, 0, true, false, yes, no, on, off", NULL};
    assert_one_complaint(text, "TRAIL_CALLER", bad[i], want);
    free(text);
    trail_info(NULL, "m");
    json_t *j = last_line();
    assert_null(json_object_get(j, "caller"));
    json_decref(j);
  }
}

/*
 * A bad TRAIL_MAX_LINE: one line with the range and the suffixes; the
 * maximum stays 16384.
 */
static void test_env_bad_max_line(void **state) {
  (void)state;
  static const char *const bad[] = {"2047",  "1k",
                                    "17m",   "16777217",
                                    "0",     "",
                                    "abc",   "1g",
                                    "64kb",  "-4096",
                                    " 4096", "4096 ",
                                    "0x800", "99999999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    trail_shutdown();
    setenv("TRAIL_MAX_LINE", bad[i], 1);
    int rc;
    char *text = from_env_stderr(&rc);
    assert_int_equal(rc, 1);
    const char *want[] = {"2048", "16M", "k or m", NULL};
    assert_one_complaint(text, "TRAIL_MAX_LINE", bad[i], want);
    free(text);
    assert_int_equal(trail_max_line(), 16384);
  }
}

/*
 * A size whose suffix multiplication wraps past 2^64 into the accepted range
 * is still out of range: 2^54+2 KiB is not 2048 bytes.
 */
static void test_env_max_line_overflow(void **state) {
  (void)state;
  static const char *const bad[] = {"18014398509481986k", "17592186044418m"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    trail_shutdown();
    setenv("TRAIL_MAX_LINE", bad[i], 1);
    int rc;
    char *text = from_env_stderr(&rc);
    size_t got = trail_max_line();
    if (got != 16384) /* text is left to the failing test's exit */
      fail_msg("TRAIL_MAX_LINE=%s was taken as %zu bytes", bad[i], got);
    assert_int_equal(rc, 1);
    const char *want[] = {"2048", "16M", NULL};
    assert_one_complaint(text, "TRAIL_MAX_LINE", bad[i], want);
    free(text);
  }
}

/*
 * An empty TRAIL_OUTPUT: one line with the accepted values; the output stays
 * what it was.
 */
static void test_env_bad_output_empty(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_INFO);
  setenv("TRAIL_OUTPUT", "", 1);
  int rc;
  char *text = from_env_stderr(&rc);
  assert_int_equal(rc, 1);
  const char *want[] = {"stdout, stderr, - or a path", NULL};
  assert_one_complaint(text, "TRAIL_OUTPUT", "", want);
  free(text);
  trail_info(NULL, "still captured");
  assert_int_equal(cap_count(), 1);
}

/*
 * A TRAIL_OUTPUT file that cannot be opened: one line naming the variable,
 * the path and the reason, and standard output stays the output.
 */
static void test_env_bad_output_path(void **state) {
  (void)state;
  char path[256], out[256], err[256];
  tmp_path(path, sizeof path, "no-such-dir/app.log");
  tmp_path(out, sizeof out, "stdout.txt");
  tmp_path(err, sizeof err, "stderr.txt");
  setenv("TRAIL_OUTPUT", path, 1);
  redirect ro = redirect_begin(STDOUT_FILENO, out);
  redirect re = redirect_begin(STDERR_FILENO, err);
  int rc = trail_init("out-svc");
  trail_info(NULL, "on stdout");
  redirect_end(re);
  redirect_end(ro);
  assert_int_equal(rc, 0);
  size_t len;
  char *text = read_file(err, &len);
  const char *want[] = {"No such file or directory", "stdout", NULL};
  assert_one_complaint(text, "TRAIL_OUTPUT", path, want);
  free(text);
  json_t *j = file_lines(out, 1);
  assert_str_field(j, "message", "on stdout");
  assert_str_field(j, "service", "out-svc");
  json_decref(j);
}

/* Several bad variables: one line each, and the count returned. */
static void test_env_several_bad(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_INFO);
  setenv("TRAIL_LEVEL", "chatty", 1);
  setenv("TRAIL_CALLER", "perhaps", 1);
  setenv("TRAIL_MAX_LINE", "10", 1);
  setenv("TRAIL_SERVICE", "fine-name", 1);
  int rc;
  char *text = from_env_stderr(&rc);
  assert_int_equal(rc, 3);
  assert_int_equal(count_newlines(text, strlen(text)), 3);
  assert_non_null(strstr(text, "TRAIL_LEVEL=\"chatty\""));
  assert_non_null(strstr(text, "TRAIL_CALLER=\"perhaps\""));
  assert_non_null(strstr(text, "TRAIL_MAX_LINE=\"10\""));
  assert_null(strstr(text, "TRAIL_SERVICE"));
  free(text);
  trail_info(NULL, "m");
  json_t *j = last_line();
  assert_str_field(j, "service", "fine-name");
  json_decref(j);
}

/* TRAIL_LEVEL=value, applied with stderr in a file: what it wrote. */
static char *level_stderr(const char *value, int *rc) {
  setenv("TRAIL_LEVEL", value, 1);
  char *text = from_env_stderr(rc);
  unsetenv("TRAIL_LEVEL");
  return text;
}

/*
 * A logger name with a character outside the logger-name set (';' or ':'
 * or a space, typos of the separator): the whole value is rejected with
 * the usual one line, and no logger of that name gets a level.
 */
static void test_env_level_bad_name_chars(void **state) {
  (void)state;
  static const struct {
    const char *value, *name;
  } cases[] = {
      {"info;db=debug", "info;db"},
      {"info,my db=debug", "my db"},
      {"a:b=debug", "a:b"},
      {"warn,db.*=debug", "db.*"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    trail_shutdown();
    int rc;
    char *text = level_stderr(cases[i].value, &rc);
    char want[512];
    snprintf(want, sizeof want,
             "trail: TRAIL_LEVEL=\"%s\": invalid logger name \"%s\" (1 to "
             "128 ASCII letters, digits, '.', '_' or '-'; items are "
             "separated by ','); using \"info\"\n",
             cases[i].value, cases[i].name);
    assert_string_equal(text, want);
    free(text);
    assert_int_equal(rc, 1);
    assert_int_equal(trail_logger_level(NULL), TRAIL_LEVEL_INFO);
    assert_int_equal(trail_logger_level(trail_logger_get("db")),
                     TRAIL_LEVEL_INFO);
    /* Such a name is no logger's either. */
    assert_null(trail_logger_get(cases[i].name));
  }
}

/* ---- TRAIL_OUTPUT names ---------------------------------------------------
 */

/* The number of entries of tmpdir, "." and ".." aside. */
static size_t tmpdir_entries(void) {
  DIR *d = opendir(tmpdir);
  assert_non_null(d);
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

/*
 * stdout and stderr in any case, and "-" for stdout, name the standard
 * descriptors: the line reaches the descriptor and no file of that name is
 * made in the working directory (tmpdir here).
 */
static void test_env_output_std_spellings(void **state) {
  (void)state;
  static const struct {
    const char *value;
    int fd;
  } cases[] = {{"STDOUT", STDOUT_FILENO},
               {"Stderr", STDERR_FILENO},
               {"-", STDOUT_FILENO},
               {"sTdOuT", STDOUT_FILENO},
               {"STDERR", STDERR_FILENO}};
  char cwd[PATH_MAX], capture[PATH_MAX];
  assert_non_null(getcwd(cwd, sizeof cwd));
  snprintf(capture, sizeof capture, "%s.fd", tmpdir);
  assert_int_equal(chdir(tmpdir), 0);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    trail_shutdown();
    setenv("TRAIL_OUTPUT", cases[k].value, 1);
    redirect r = redirect_begin(cases[k].fd, capture);
    int rc = trail_config_from_env();
    trail_info(NULL, cases[k].value);
    redirect_end(r);
    assert_int_equal(rc, 0);
    json_t *j = file_lines(capture, 1);
    assert_str_field(j, "message", cases[k].value);
    json_decref(j);
    assert_int_equal(tmpdir_entries(), 0);
  }
  unlink(capture);
  assert_int_equal(chdir(cwd), 0);
}

/* A path that only looks like a standard name is a file: ./stdout. */
static void test_env_output_std_lookalike(void **state) {
  (void)state;
  char cwd[PATH_MAX], path[256];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(tmpdir), 0);
  setenv("TRAIL_OUTPUT", "./stdout", 1);
  cap_start(TRAIL_LEVEL_INFO);
  assert_int_equal(trail_config_from_env(), 0);
  trail_info(NULL, "to the file");
  assert_int_equal(cap_count(), 0);
  assert_int_equal(chdir(cwd), 0);
  tmp_path(path, sizeof path, "stdout");
  json_t *j = file_lines(path, 1);
  assert_str_field(j, "message", "to the file");
  json_decref(j);
  /* The C call takes the same names. */
  assert_int_equal(trail_output_set("STDERR", NULL), 0);
  trail_config_error err;
  assert_int_equal(trail_output_set("", &err), TRAIL_EINVAL_SPEC);
  assert_non_null(strstr(err.text, "stdout, stderr, - or a path"));
}

/* ---- TRAIL_REDACT: adding and replacing ---------------------------------- */

/* One line with the field key="v": its value redacted when want says so. */
static void check_redacted(const char *key, int want) {
  cap_clear();
  trail_info(NULL, "m", TRAIL_STR(key, "v"));
  assert_int_equal(cap_count(), 1);
  json_t *j = cap_json(0);
  assert_str_field(j, key, want ? "[REDACTED]" : "v");
  json_decref(j);
}

/* TRAIL_REDACT=+card adds to the default list, silently. */
static void test_env_redact_add(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_INFO);
  setenv("TRAIL_REDACT", " +card, ssn", 1);
  int rc;
  char *text = from_env_stderr(&rc);
  assert_int_equal(rc, 0);
  assert_string_equal(text, "");
  free(text);
  check_redacted("card", 1);
  check_redacted("ssn", 1);
  check_redacted("password", 1);
  check_redacted("set-cookie", 1);
  check_redacted("user", 0);
}

/*
 * A list without '+' replaces the defaults, and says so in one line naming
 * the default keys no longer redacted; a list that keeps them all says
 * nothing; an empty list turns redaction off, said without the hint.
 */
static void test_env_redact_replace_notice(void **state) {
  (void)state;
  static const struct {
    const char *value, *line;
  } cases[] = {
      {"card",
       "trail: TRAIL_REDACT=\"card\" replaces the default list (no longer "
       "redacted: password, passwd, secret, token, api_key, authorization, "
       "cookie, set-cookie); use TRAIL_REDACT=+card to add to it\n"},
      {"Password,TOKEN,card",
       "trail: TRAIL_REDACT=\"Password,TOKEN,card\" replaces the default "
       "list (no longer redacted: passwd, secret, api_key, authorization, "
       "cookie, set-cookie); use TRAIL_REDACT=+Password,TOKEN,card to add to "
       "it\n"},
      {"password,passwd,secret,token,api_key,authorization,cookie,set-cookie,"
       "card",
       ""},
      {"", "trail: TRAIL_REDACT=\"\" replaces the default list (no longer "
           "redacted: password, passwd, secret, token, api_key, authorization, "
           "cookie, set-cookie)\n"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    trail_shutdown();
    cap_start(TRAIL_LEVEL_INFO);
    setenv("TRAIL_REDACT", cases[i].value, 1);
    int rc;
    char *text = from_env_stderr(&rc);
    assert_int_equal(rc, 0);
    assert_string_equal(text, cases[i].line);
    free(text);
    check_redacted("card", strstr(cases[i].value, "card") != NULL);
    check_redacted("password", strstr(cases[i].value, "assword") != NULL);
  }
}

/*
 * TRAIL_ASYNC_STOP_WAIT: milliseconds from 1 to an hour, or forever; any
 * other value is reported, and the writer starts with the default wait.
 */
static void test_env_async_stop_wait(void **state) {
  (void)state;
  static const char *const good[] = {"1", "100", "3600000", "forever",
                                     "FOREVER"};
  static const char *const bad[] = {"0",   "-5",   "3600001", "10ms",
                                    "1e3", " 100", "",        "never"};
  static const char *const want[] = {"not milliseconds from 1 to 3600000",
                                     "nor forever", "using 5000", NULL};
  setenv("TRAIL_ASYNC", "1", 1);
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    setenv("TRAIL_ASYNC_STOP_WAIT", good[i], 1);
    int rc;
    char *err = from_env_stderr(&rc);
    if (rc != 0 || err[0] != '\0')
      fail_msg("TRAIL_ASYNC_STOP_WAIT=%s rejected: %s", good[i], err);
    free(err);
    assert_true(trail_async_running());
    assert_int_equal(trail_async_stop(), 0);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    setenv("TRAIL_ASYNC_STOP_WAIT", bad[i], 1);
    int rc;
    char *err = from_env_stderr(&rc);
    assert_int_equal(rc, 1);
    assert_one_complaint(err, "TRAIL_ASYNC_STOP_WAIT", bad[i], want);
    free(err);
    assert_true(trail_async_running());
    assert_int_equal(trail_async_stop(), 0);
  }
}

/* ---- unknown TRAIL_* variables ------------------------------------------- */

/* trail__env_check_names(env) with stderr in a file: what it wrote. */
static char *check_names_stderr(char *const *env) {
  char path[256];
  tmp_path(path, sizeof path, "names.txt");
  redirect r = redirect_begin(STDERR_FILENO, path);
  trail__env_check_names(env);
  redirect_end(r);
  size_t len;
  return read_file(path, &len);
}

/*
 * Each TRAIL_* name the library does not read gets one line, with the
 * nearest known name when one is within two edits; known names (those
 * read through TRAIL_ASYNC included), the test suite's own TRAIL_TEST_*
 * (in capitals only) and other variables get none.
 */
static void test_env_unknown_names(void **state) {
  (void)state;
  char *env[] = {"TRAIL_LEVLE=debug",
                 "TRAIL_LEVEL=info",
                 "PATH=/bin",
                 "TRAILER=1",
                 "TRAIL_ASYNC_QUEUE=8m",
                 "TRAIL_ASYNC_OVERFLOW=drop",
                 "TRAIL_ASYNC_STOP_WAIT=forever",
                 "TRAIL_ASYNC_QUEU=8m",
                 "TRAIL_SERVICES=x",
                 "trail_caller=1",
                 "TRAIL_TEST_EXAMPLES_DIR=/x",
                 "trail_test_x=1",
                 "TRAIL_SHARED_LIB=/x",
                 "TRAIL_FOO=1",
                 "TRAIL_OUTPUT",
                 NULL};
  char *text = check_names_stderr(env);
  assert_string_equal(
      text, "trail: unknown variable TRAIL_LEVLE, did you mean TRAIL_LEVEL?\n"
            "trail: unknown variable TRAIL_ASYNC_QUEU, did you mean "
            "TRAIL_ASYNC_QUEUE?\n"
            "trail: unknown variable TRAIL_SERVICES, did you mean "
            "TRAIL_SERVICE?\n"
            "trail: unknown variable trail_caller, did you mean "
            "TRAIL_CALLER?\n"
            "trail: unknown variable trail_test_x\n"
            "trail: unknown variable TRAIL_SHARED_LIB\n"
            "trail: unknown variable TRAIL_FOO\n");
  free(text);
  char *known[] = {"TRAIL_LEVEL=x", "TRAIL_REDACT=", "HOME=/", NULL};
  text = check_names_stderr(known);
  assert_string_equal(text, "");
  free(text);
}

/* The name a re-executed test_config runs as instead of its tests. */
#define CHILD_ARG "--init-twice"

/* In the re-executed child: trail_init twice, across a trail_shutdown. */
static int child_init_twice(void) {
  trail_init("child");
  trail_config_from_env();
  trail_shutdown();
  trail_init("child");
  trail_shutdown();
  return 0;
}

/*
 * The unknown names are reported at the first trail_init of a process and
 * not again: a fresh process (this program, re-executed) with TRAIL_LEVLE
 * set writes exactly one line on stderr, however often it reads the
 * environment, and the known variable beside it is still applied.
 */
static void test_env_unknown_once_per_process(void **state) {
  (void)state;
  char err[256];
  tmp_path(err, sizeof err, "child-stderr.txt");
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    setenv("TRAIL_LEVLE", "debug", 1);
    setenv("TRAIL_OUTPUT", "/dev/null", 1);
    int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
      _exit(125);
    execl("/proc/self/exe", "test_config", CHILD_ARG, (char *)NULL);
    _exit(126);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  size_t len;
  char *text = read_file(err, &len);
  assert_string_equal(
      text, "trail: unknown variable TRAIL_LEVLE, did you mean TRAIL_LEVEL?\n");
  free(text);
}

/* ---- trail_levels_set --------------------------------------------------- */

/* A failed trail_levels_set: code, source, text, and nothing applied. */
static void check_levels_error(const char *spec, int code,
                               const char *in_text) {
  trail_config_error err;
  memset(&err, 0x55, sizeof err);
  assert_int_equal(trail_levels_set(spec, &err), code);
  assert_int_equal(err.code, code);
  assert_string_equal(err.source, "trail_levels_set");
  assert_non_null(memchr(err.text, '\0', sizeof err.text));
  assert_null(strchr(err.text, '\n'));
  if (strstr(err.text, in_text) == NULL)
    fail_msg("error text for \"%s\" lacks \"%s\": %s", spec ? spec : "(null)",
             in_text, err.text);
  assert_int_equal(trail_levels_set(spec, NULL), code);
  /* The levels set before are still in force. */
  assert_int_equal(trail_logger_level(NULL), TRAIL_LEVEL_WARN);
  assert_int_equal(trail_logger_level(trail_logger_get("db")),
                   TRAIL_LEVEL_DEBUG);
}

/*
 * Bad specifications fill trail_config_error and change nothing, not even
 * the items before the bad one.
 */
static void test_levels_set_errors(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_TRACE);
  assert_int_equal(trail_levels_set("warn,db=debug", NULL), 0);
  check_levels_error("info,db=verbose", TRAIL_EINVAL_LEVEL, "verbose");
  check_levels_error("info,db=verbose", TRAIL_EINVAL_LEVEL, level_list);
  check_levels_error("verbose", TRAIL_EINVAL_LEVEL, "\"verbose\"");
  check_levels_error("trace,db=loud", TRAIL_EINVAL_LEVEL, "\"db\"");
  check_levels_error("debug,bad name=info", TRAIL_EINVAL_NAME, "bad name");
  check_levels_error("=debug", TRAIL_EINVAL_NAME, "invalid logger name");
  check_levels_error("a\"b=debug", TRAIL_EINVAL_NAME, "invalid logger name");
  check_levels_error("info;db=debug", TRAIL_EINVAL_NAME, "\"info;db\"");
  check_levels_error("a:b=debug", TRAIL_EINVAL_NAME, TRAIL__LOGGER_NAME_RULE);
  check_levels_error("", TRAIL_EINVAL_SPEC, level_list);
  check_levels_error(" , ,", TRAIL_EINVAL_SPEC, "empty");
  check_levels_error(NULL, TRAIL_EINVAL_SPEC, "");

  char many[33 * 16 + 8] = "info";
  for (int i = 0; i < 33; i++) {
    char item[16];
    snprintf(item, sizeof item, ",n%d=debug", i);
    strcat(many, item);
  }
  check_levels_error(many, TRAIL_EINVAL_SPEC, "32");

  /* Lines agree with the levels still in force. */
  trail_info(NULL, "no");
  trail_warn(NULL, "yes");
  trail_debug(trail_logger_get("db"), "yes");
  assert_int_equal(cap_count(), 2);

  /* Accepted forms: spaces, empty items, 32 names. */
  assert_int_equal(trail_levels_set("  debug , ,db = error,", NULL), 0);
  assert_int_equal(trail_logger_level(NULL), TRAIL_LEVEL_DEBUG);
  assert_int_equal(trail_logger_level(trail_logger_get("db")),
                   TRAIL_LEVEL_ERROR);
  many[strlen(many) - strlen(",n32=debug")] = '\0';
  assert_int_equal(trail_levels_set(many, NULL), 0);
  assert_int_equal(trail_logger_level(trail_logger_get("n31")),
                   TRAIL_LEVEL_DEBUG);
}

/* ---- trail_service_set -------------------------------------------------- */

/*
 * Invalid service names give TRAIL_EINVAL_NAME and leave the service alone;
 * 1 and 128 bytes are accepted and written.
 */
static void test_service_set(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_INFO);
  assert_int_equal(trail_service_set("before"), 0);
  char long_name[130];
  memset(long_name, 's', 129);
  long_name[129] = '\0';
  const char *bad[] = {NULL,          "",          "a b",    "a\"b", "a\\b",
                       "a,b",         "a=b",       "tab\t",  "\x7f", "del\x7f",
                       "caf\xc3\xa9", "new\nline", long_name};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(trail_service_set(bad[i]), TRAIL_EINVAL_NAME);
    assert_string_equal(trail_service(), "before");
  }
  trail_info(NULL, "m");
  json_t *j = last_line();
  assert_str_field(j, "service", "before");
  json_decref(j);

  long_name[128] = '\0';
  assert_int_equal(trail_service_set(long_name), 0);
  trail_info(NULL, "m");
  j = last_line();
  assert_str_field(j, "service", long_name);
  json_decref(j);
  assert_int_equal(trail_service_set("x"), 0);
  assert_int_equal(trail_service_set("orders-api.v2_eu:1/a~b"), 0);
  trail_info(NULL, "m");
  j = last_line();
  assert_str_field(j, "service", "orders-api.v2_eu:1/a~b");
  json_decref(j);

  /* trail_init with a bad name fails, and still applies the environment. */
  setenv("TRAIL_CALLER", "1", 1);
  assert_int_equal(trail_init("bad name"), TRAIL_EINVAL_NAME);
  assert_string_equal(trail_service(), "orders-api.v2_eu:1/a~b");
  trail_info(NULL, "m");
  j = last_line();
  assert_non_null(json_object_get(j, "caller"));
  json_decref(j);
}

/* ---- trail_max_line_set ------------------------------------------------- */

/* 2048 .. 16 MiB accepted; outside, TRAIL_ERANGE and no change. */
static void test_max_line_set(void **state) {
  (void)state;
  assert_int_equal(trail_max_line(), 16384);
  assert_int_equal(trail_max_line_set(2047), TRAIL_ERANGE);
  assert_int_equal(trail_max_line(), 16384);
  assert_int_equal(trail_max_line_set(2048), 0);
  assert_int_equal(trail_max_line(), 2048);
  assert_int_equal(trail_max_line_set(16u * 1024 * 1024), 0);
  assert_int_equal(trail_max_line(), 16u * 1024 * 1024);
  assert_int_equal(trail_max_line_set(16u * 1024 * 1024 + 1), TRAIL_ERANGE);
  assert_int_equal(trail_max_line_set(0), TRAIL_ERANGE);
  assert_int_equal(trail_max_line_set(SIZE_MAX), TRAIL_ERANGE);
  assert_int_equal(trail_max_line(), 16u * 1024 * 1024);
  assert_int_equal(trail_max_line_set(65536), 0);
  trail_shutdown();
  assert_int_equal(trail_max_line(), 16384);
}

/* ---- level names -------------------------------------------------------- */

/* trail_level_name and trail_level_parse: the table, both ways. */
static void test_level_names(void **state) {
  (void)state;
  static const char *const names[] = {"trace", "debug", "info", "warn",
                                      "error", "fatal", "off"};
  for (int l = 0; l <= TRAIL_LEVEL_OFF; l++) {
    assert_string_equal(trail_level_name((trail_level)l), names[l]);
    trail_level out = (trail_level)99;
    assert_int_equal(trail_level_parse(names[l], &out), 0);
    assert_int_equal(out, l);
    char upper[8];
    for (size_t i = 0; i <= strlen(names[l]); i++)
      upper[i] = (char)(names[l][i] >= 'a' ? names[l][i] - 32 : names[l][i]);
    out = (trail_level)99;
    assert_int_equal(trail_level_parse(upper, &out), 0);
    assert_int_equal(out, l);
  }
  assert_string_equal(trail_level_name((trail_level)7), "?");
  assert_string_equal(trail_level_name((trail_level)-1), "?");
  assert_string_equal(trail_level_name((trail_level)INT_MAX), "?");

  static const struct {
    const char *s;
    trail_level l;
  } extra[] = {{"warning", TRAIL_LEVEL_WARN},
               {"WARNING", TRAIL_LEVEL_WARN},
               {"Warning", TRAIL_LEVEL_WARN},
               {"InFo", TRAIL_LEVEL_INFO}};
  for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
    trail_level out = (trail_level)99;
    assert_int_equal(trail_level_parse(extra[i].s, &out), 0);
    assert_int_equal(out, extra[i].l);
  }

  static const char *const bad[] = {
      "",        "inf", "information", "warn ", " info",
      "verbose", "3",   "warnings",    "err",   "fatal!"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    trail_level out = (trail_level)99;
    assert_int_equal(trail_level_parse(bad[i], &out), TRAIL_EINVAL_LEVEL);
    assert_int_equal(out, 99); /* untouched */
  }
  trail_level out = (trail_level)99;
  assert_int_equal(trail_level_parse(NULL, &out), TRAIL_EINVAL_LEVEL);
  assert_int_equal(out, 99);
  assert_int_equal(trail_level_parse("info", NULL), TRAIL_EINVAL_LEVEL);
}

/* ---- error names and texts ---------------------------------------------- */

/*
 * Every TRAIL_E* code has its own name and text; -errno values get the C
 * library's; unknown codes still get a non-NULL string.
 */
static void test_error_names(void **state) {
  (void)state;
  static const struct {
    int code;
    const char *name;
  } codes[] = {
      {TRAIL_EINVAL_LEVEL, "TRAIL_EINVAL_LEVEL"},
      {TRAIL_EINVAL_NAME, "TRAIL_EINVAL_NAME"},
      {TRAIL_EINVAL_SPEC, "TRAIL_EINVAL_SPEC"},
      {TRAIL_EINVAL_ID, "TRAIL_EINVAL_ID"},
      {TRAIL_EINVAL_TRACEPARENT, "TRAIL_EINVAL_TRACEPARENT"},
      {TRAIL_ETOOLONG, "TRAIL_ETOOLONG"},
      {TRAIL_ENOSPACE, "TRAIL_ENOSPACE"},
      {TRAIL_ENOSINK, "TRAIL_ENOSINK"},
      {TRAIL_ERANGE, "TRAIL_ERANGE"},
      {-ENOENT, "ENOENT"},
      {-EACCES, "EACCES"},
      {-EINVAL, "EINVAL"},
  };
  const size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    const char *name = trail_err_name(codes[i].code);
    const char *text = trail_strerror(codes[i].code);
    assert_non_null(name);
    assert_non_null(text);
    assert_string_equal(name, codes[i].name);
    assert_true(strlen(text) > 0);
    if (codes[i].code <= TRAIL_EINVAL_LEVEL)
      assert_true(codes[i].code < -4095); /* below every errno value */
    for (size_t k = 0; k < i; k++) {
      assert_string_not_equal(trail_err_name(codes[k].code), name);
      assert_string_not_equal(trail_strerror(codes[k].code), text);
    }
  }
  assert_string_equal(trail_strerror(-ENOENT), "No such file or directory");
  static const int unknown[] = {0,      1,     12345,   -30000,
                                -30010, -4096, INT_MIN, INT_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    const char *name = trail_err_name(unknown[i]);
    const char *text = trail_strerror(unknown[i]);
    assert_non_null(name);
    assert_non_null(text);
    assert_true(strlen(name) > 0 && strlen(text) > 0);
    for (size_t k = 0; k < n; k++)
      assert_string_not_equal(name, codes[k].name);
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], CHILD_ARG) == 0)
    return child_init_twice();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_env_service, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_caller, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_level_descendants, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_env_level_longest_match, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_env_level_off, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_output_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_output_std, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_max_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_max_line_effect, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_env_bad_level, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_bad_service, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_bad_caller, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_bad_max_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_max_line_overflow, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_env_bad_output_empty, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_env_bad_output_path, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_env_several_bad, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_level_bad_name_chars, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_env_output_std_spellings, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_env_output_std_lookalike, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_env_redact_add, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_redact_replace_notice, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_env_unknown_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_unknown_once_per_process, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_levels_set_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_service_set, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_async_stop_wait, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_max_line_set, setup, teardown),
      cmocka_unit_test_setup_teardown(test_level_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_names, setup, teardown),
  };
  env_clear(); /* before the first read of the environment */
  return cmocka_run_group_tests(tests, NULL, NULL);
}

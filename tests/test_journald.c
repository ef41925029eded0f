/*
 * The journald sink (adapters/journald): field names, priorities, and the
 * entries it sends. Where no journal runs (a container, a CI machine), the
 * test plays the journal: it binds the journal's socket itself and reads
 * the datagrams of the native protocol. Skipped (77) when a real journal
 * owns the socket or the socket cannot be made.
 */
#include "support.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "trail/journald.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static void test_names_and_priorities(void **state) {
  (void)state;
  static const struct {
    const char *key, *want;
  } cases[] = {{"message", "MESSAGE"},         {"trace_id", "TRACE_ID"},
               {"duration_ms", "DURATION_MS"}, {"set-cookie", "SET_COOKIE"},
               {"_level", "F_LEVEL"},          {"9lives", "F9LIVES"},
               {"k\xc3\xa9y", "K__Y"},         {"", "F"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char out[72];
    trail_journald_field_name(cases[i].key, strlen(cases[i].key), out);
    assert_string_equal(out, cases[i].want);
  }
  char longkey[100], out[72];
  memset(longkey, 'a', sizeof longkey);
  assert_int_equal(trail_journald_field_name(longkey, sizeof longkey, out), 64);
  assert_int_equal(trail_journald_priority(TRAIL_LEVEL_FATAL), 2);
  assert_int_equal(trail_journald_priority(TRAIL_LEVEL_ERROR), 3);
  assert_int_equal(trail_journald_priority(TRAIL_LEVEL_WARN), 4);
  assert_int_equal(trail_journald_priority(TRAIL_LEVEL_INFO), 6);
  assert_int_equal(trail_journald_priority(TRAIL_LEVEL_DEBUG), 7);
  assert_int_equal(trail_journald_priority(TRAIL_LEVEL_TRACE), 7);
}

/* Finds FIELD's value in one native-protocol datagram. */
static int entry_field(const char *d, size_t n, const char *name, char *out,
                       size_t outsz) {
  size_t nl = strlen(name);
  for (size_t i = 0; i < n;) {
    const char *end = memchr(d + i, '\n', n - i);
    const char *eq = memchr(d + i, '=', (size_t)((end ? end : d + n) - d - i));
    if (eq != NULL) { /* NAME=value\n */
      size_t vlen = (size_t)(end - eq - 1);
      if ((size_t)(eq - d - i) == nl && memcmp(d + i, name, nl) == 0) {
        snprintf(out, outsz, "%.*s", (int)vlen, eq + 1);
        return 1;
      }
      i = (size_t)(end - d) + 1;
    } else { /* NAME\n<le64 length><data>\n */
      size_t klen = (size_t)(end - d - i);
      uint64_t vlen;
      memcpy(&vlen, end + 1, 8);
      const char *v = end + 9;
      if (klen == nl && memcmp(d + i, name, nl) == 0) {
        snprintf(out, outsz, "%.*s", (int)vlen, v);
        return 1;
      }
      i = (size_t)(v + vlen + 1 - d);
    }
  }
  return 0;
}

static void test_entries(void **state) {
  (void)state;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", JOURNAL_SOCKET);
  if (access(JOURNAL_SOCKET, F_OK) == 0) {
    int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int live = connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(probe);
    if (live) {
      skip(); /* a real journal: leave it alone */
      return;
    }
    unlink(JOURNAL_SOCKET); /* left by an earlier run of this test */
  }
  mkdir("/run/systemd", 0755);
  mkdir("/run/systemd/journal", 0755);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    if (fd >= 0)
      close(fd);
    skip(); /* not allowed to play the journal here */
    return;
  }
  trail_init("journal-test");
  trail_sinks_clear();
  assert_true(trail_journald_sink_add(TRAIL_LEVEL_INFO) >= 0);
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  trail_ctx_set_user_id(&ctx, "user-4711");
  trail_ctx *prev = trail_ctx_enter(&ctx);
  trail_warn(trail_logger_get("db"), "slow query\nsecond line",
             TRAIL_INT("rows", 42), TRAIL_STR("password", "hunter2"));
  trail_debug(NULL, "not sent");
  trail_ctx_leave(prev);

  static char d[65536];
  ssize_t n = recv(fd, d, sizeof d, MSG_DONTWAIT);
  assert_true(n > 0);
  char v[256];
  assert_true(entry_field(d, (size_t)n, "MESSAGE", v, sizeof v));
  assert_string_equal(v, "slow query\nsecond line");
  assert_true(entry_field(d, (size_t)n, "PRIORITY", v, sizeof v));
  assert_string_equal(v, "4");
  assert_true(entry_field(d, (size_t)n, "LOGGER", v, sizeof v));
  assert_string_equal(v, "db");
  assert_true(entry_field(d, (size_t)n, "SYSLOG_IDENTIFIER", v, sizeof v));
  assert_string_equal(v, "journal-test");
  assert_true(entry_field(d, (size_t)n, "TRACE_ID", v, sizeof v));
  assert_string_equal(v, trail_ctx_trace_id(&ctx));
  assert_true(entry_field(d, (size_t)n, "REQUEST_ID", v, sizeof v));
  assert_string_equal(v, trail_ctx_request_id(&ctx));
  assert_true(entry_field(d, (size_t)n, "USER_ID", v, sizeof v));
  assert_string_equal(v, "user-4711");
  assert_true(entry_field(d, (size_t)n, "ROWS", v, sizeof v));
  assert_string_equal(v, "42");
  assert_true(entry_field(d, (size_t)n, "PASSWORD", v, sizeof v));
  assert_string_equal(v, "[REDACTED]");
  /* the debug line was filtered: nothing more arrived */
  assert_true(recv(fd, d, sizeof d, MSG_DONTWAIT) < 0);
  assert_int_equal(trail_journald_errors(), 0);
  trail_shutdown();
  close(fd);
  unlink(JOURNAL_SOCKET);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names_and_priorities),
      cmocka_unit_test(test_entries),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

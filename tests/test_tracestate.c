/*
 * W3C tracestate (lib/tracestate.c): what is kept, normalised, shortened,
 * and what makes the whole value invalid.
 */
#include "support.h"

static void keep(const char *in, const char *want) {
  trail_ctx c;
  trail_ctx_clear(&c);
  int rc = trail_ctx_set_tracestate(&c, in, TRAIL_NTS);
  if (rc != 0)
    fail_msg("rejected: \"%s\"", in);
  assert_string_equal(trail_ctx_tracestate(&c), want);
}

static void reject(const char *in) {
  trail_ctx c;
  trail_ctx_clear(&c);
  assert_int_equal(trail_ctx_set_tracestate(&c, "old=1", TRAIL_NTS), 0);
  if (trail_ctx_set_tracestate(&c, in, TRAIL_NTS) != TRAIL_EINVAL_TRACESTATE)
    fail_msg("accepted: \"%s\"", in);
  assert_string_equal(trail_ctx_tracestate(&c), "old=1");
}

static void test_valid(void **state) {
  (void)state;
  keep("foo=1", "foo=1");
  keep("foo=1,bar=2", "foo=1,bar=2");
  keep(" foo=1 , \tbar=2\t", "foo=1,bar=2");
  keep("foo=1,,,bar=2,", "foo=1,bar=2"); /* empty members dropped */
  keep("", "");
  keep("a_-*/z9=v", "a_-*/z9=v");
  keep("tenant@sys=v", "tenant@sys=v");
  keep("1tenant@s=v", "1tenant@s=v");
  keep("k=a b", "k=a b");             /* inner space allowed */
  keep("k=!\"#+-<>~", "k=!\"#+-<>~"); /* every other printable */
}

static void test_invalid(void **state) {
  (void)state;
  reject("Foo=1");        /* uppercase key */
  reject("1foo=1");       /* simple key starts with a letter */
  reject("foo");          /* no value */
  reject("foo=");         /* empty value */
  reject("foo=a,b=");     /* one bad member spoils the list */
  reject("foo=1,foo=2");  /* duplicate key */
  reject("foo=a=b");      /* '=' in a value */
  reject("foo=\x01");     /* control character */
  reject("foo=\xc3\xa9"); /* non-ASCII */
  reject("t@S=1");        /* system id starts lowercase */
  reject("t@=1");
  reject("@s=1");
  reject("t@s@x=1");
  reject("t@abcdefghijklmno=1"); /* system id over 14 */
}

static void test_limits(void **state) {
  (void)state;
  char buf[4096];
  /* 32 members fit, 33 do not */
  size_t o = 0;
  for (int i = 0; i < 32; i++)
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%sk%d=v", i ? "," : "", i);
  keep(buf, buf);
  snprintf(buf + o, sizeof buf - o, ",k32=v");
  reject(buf);
  /* key of 256 is fine, 257 is not */
  memset(buf, 'k', 256);
  strcpy(buf + 256, "=v");
  keep(buf, buf);
  memset(buf, 'k', 257);
  strcpy(buf + 257, "=v");
  reject(buf);
  /* tenant 241 fine, 242 not */
  memset(buf, 't', 241);
  strcpy(buf + 241, "@s=v");
  keep(buf, buf);
  memset(buf, 't', 242);
  strcpy(buf + 242, "@s=v");
  reject(buf);
  /* value 256 fine, 257 not */
  strcpy(buf, "k=");
  memset(buf + 2, 'v', 256);
  buf[258] = '\0';
  keep(buf, buf);
  strcpy(buf, "k=");
  memset(buf + 2, 'v', 257);
  buf[259] = '\0';
  reject(buf);
}

/* Over 512 bytes: members over 128 go first, then from the end. */
static void test_shortening(void **state) {
  (void)state;
  char in[2048], big[200];
  memset(big, 'x', 150);
  big[150] = '\0';
  snprintf(in, sizeof in, "a=1,long=%s,b=2,c=%s,d=%s,e=%s", big, big, big, big);
  trail_ctx c;
  trail_ctx_clear(&c);
  assert_int_equal(trail_ctx_set_tracestate(&c, in, TRAIL_NTS), 0);
  const char *ts = trail_ctx_tracestate(&c);
  assert_true(strlen(ts) <= TRAIL_TRACESTATE_MAX);
  /* the first long members went; the short ones stay, in order */
  assert_non_null(strstr(ts, "a=1,"));
  assert_non_null(strstr(ts, "b=2"));
  assert_null(strstr(ts, "long="));

  /* short members only: cut from the end */
  size_t o = 0;
  for (int i = 0; i < 32; i++)
    o += (size_t)snprintf(in + o, sizeof in - o, "%sk%02d=%020d", i ? "," : "",
                          i, i);
  assert_true(o > TRAIL_TRACESTATE_MAX);
  assert_int_equal(trail_ctx_set_tracestate(&c, in, TRAIL_NTS), 0);
  ts = trail_ctx_tracestate(&c);
  assert_true(strlen(ts) <= TRAIL_TRACESTATE_MAX);
  assert_int_equal(strncmp(ts, in, strlen(ts)), 0); /* a prefix, whole */
  assert_null(strstr(ts, "k31="));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_invalid),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_shortening),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

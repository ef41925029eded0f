/*
 * W3C tracestate (lib/tracestate.c): what is kept, normalised, shortened,
 * and what makes the whole value invalid, by the rules of W3C Trace Context
 * Level 2 (sections 3.3.1.1 to 3.3.1.5).
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

/*
 * One case per grammar point of W3C Trace Context Level 2 (section numbers
 * of its text): in, and what is kept (NULL: rejected whole).
 */
typedef struct ts_case {
  const char *why, *in, *want;
} ts_case;

static const ts_case cases[] = {
    /* 3.3.1.2 list, 3.3.1.1: OWS around members, empty members */
    {"one member", "foo=1", "foo=1"},
    {"two members", "foo=1,bar=2", "foo=1,bar=2"},
    {"OWS around members", " foo=1 , \tbar=2\t", "foo=1,bar=2"},
    {"empty members", "foo=1,,,bar=2,", "foo=1,bar=2"},
    {"white-space-only members", ", \t ,foo=1, ,", "foo=1"},
    {"empty header", "", ""},
    {"white space and commas only", " , ,\t", ""},
    {"no value", "foo", NULL},
    {"one bad member spoils the list", "foo=a,b=", NULL},
    {"OWS before '='", "foo =1", NULL},
    /* 3.3.1.3.1 Key: ( lcalpha / DIGIT ) 0*255 ( keychar ) */
    {"every key character", "a_-*/@z9=v", "a_-*/@z9=v"},
    {"key starting with a digit", "1foo=1", "1foo=1"},
    {"key of one digit", "7=1", "7=1"},
    {"'@' at the end", "foo@=1", "foo@=1"},
    {"'@' twice", "foo@@bar=1", "foo@@bar=1"},
    {"'@' in three parts", "foo@bar@baz=1", "foo@bar@baz=1"},
    {"15 characters after '@'", "t@vvvvvvvvvvvvvvv=1", "t@vvvvvvvvvvvvvvv=1"},
    {"digit after '@'", "t@1=1", "t@1=1"},
    {"tenant@system as before", "fw529a3039@dt=1", "fw529a3039@dt=1"},
    {"uppercase key", "Foo=1", NULL},
    {"uppercase after '@'", "t@S=1", NULL},
    {"key starting with '@'", "@s=1", NULL},
    {"key starting with '_'", "_foo=1", NULL},
    {"key with '.'", "foo.bar=1", NULL},
    {"empty key", "=1", NULL},
    /* 3.3.1.3.2 Value: 0*255(chr) nblk-chr */
    {"space inside a value", "k=a b", "k=a b"},
    {"leading spaces kept", "k=  a", "k=  a"},
    {"trailing spaces are OWS", "k=a  ,j=b ", "k=a,j=b"},
    {"trailing tab is OWS", "k=a\t", "k=a"},
    {"every other printable", "k=!\"#+-<>~", "k=!\"#+-<>~"},
    {"value of spaces only", "k=   ", NULL},
    {"empty value", "foo=", NULL},
    {"'=' in a value", "foo=a=b", NULL},
    {"tab inside a value", "k=a\tb", NULL},
    {"control character", "foo=\x01", NULL},
    {"DEL", "foo=\x7f", NULL},
    {"non-ASCII", "foo=\xc3\xa9", NULL},
    /* 3.3.1.4: one entry per key is the sender's duty; kept as sent */
    {"duplicate key", "foo=1,foo=2", "foo=1,foo=2"},
    {"duplicate key and value", "foo=1,bar=2,foo=1", "foo=1,bar=2,foo=1"},
};

static void test_grammar(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const ts_case *c = &cases[i];
    trail_ctx ctx;
    trail_ctx_clear(&ctx);
    assert_int_equal(trail_ctx_set_tracestate(&ctx, "old=1", TRAIL_NTS), 0);
    int rc = trail_ctx_set_tracestate(&ctx, c->in, TRAIL_NTS);
    if (c->want == NULL && rc != TRAIL_EINVAL_TRACESTATE)
      fail_msg("%s: accepted \"%s\" (rc %d)", c->why, c->in, rc);
    if (c->want != NULL && rc != 0)
      fail_msg("%s: rejected \"%s\"", c->why, c->in);
    const char *want = c->want ? c->want : "old=1"; /* rejected: unchanged */
    if (strcmp(trail_ctx_tracestate(&ctx), want) != 0)
      fail_msg("%s: kept \"%s\", want \"%s\"", c->why,
               trail_ctx_tracestate(&ctx), want);
  }
}

/* A list of n members k0=v..k<n-1>=v, into buf. */
static void members(char *buf, size_t size, int n) {
  size_t o = 0;
  buf[0] = '\0';
  for (int i = 0; i < n; i++)
    o += (size_t)snprintf(buf + o, size - o, "%sk%d=v", i ? "," : "", i);
}

/* 3.3.1.2: a maximum of 32 list-members; empty ones do not count. */
static void test_member_count(void **state) {
  (void)state;
  char buf[4096], spaced[4200];
  members(buf, sizeof buf, 32);
  keep(buf, buf);
  snprintf(spaced, sizeof spaced, ",, %s,,\t,", buf);
  keep(spaced, buf);
  members(buf, sizeof buf, 33);
  reject(buf);
}

/* A key of n characters c, then "=v". */
static void long_key(char *buf, size_t n, char first, char c) {
  buf[0] = first;
  memset(buf + 1, c, n - 1);
  strcpy(buf + n, "=v");
}

/* 3.3.1.3.1, 3.3.1.3.2: keys and values of 1 to 256 characters. */
static void test_lengths(void **state) {
  (void)state;
  char buf[4096];
  long_key(buf, 256, 'k', 'k');
  keep(buf, buf);
  long_key(buf, 257, 'k', 'k');
  reject(buf);
  long_key(buf, 256, '1', '@'); /* a digit, then 255 '@': one key */
  keep(buf, buf);
  /* the former limits: 242 before '@', 15 after; now one 256 limit */
  memset(buf, 't', 242);
  buf[242] = '@';
  memset(buf + 243, 's', 13);
  strcpy(buf + 256, "=v");
  keep(buf, buf);
  memset(buf, 't', 241);
  buf[241] = '@';
  memset(buf + 242, 's', 15);
  strcpy(buf + 257, "=v");
  reject(buf);
  strcpy(buf, "k=");
  memset(buf + 2, 'v', 256);
  buf[258] = '\0';
  keep(buf, buf);
  strcpy(buf, "k=");
  memset(buf + 2, 'v', 257);
  buf[259] = '\0';
  reject(buf);
  strcpy(buf, "k=");
  memset(buf + 2, ' ', 255); /* 255 spaces, then one non-blank */
  strcpy(buf + 257, "x");
  keep(buf, buf);
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
      cmocka_unit_test(test_grammar),
      cmocka_unit_test(test_member_count),
      cmocka_unit_test(test_lengths),
      cmocka_unit_test(test_shortening),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

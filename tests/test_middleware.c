/*
 * The middleware core (lib/http.c) without a server: ids from headers, the
 * W3C rules, the access line's fields and level, skipped paths, and the
 * outgoing headers.
 */
#include "support.h"

#include "trail/http.h"

static const char *tp_in =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static int setup(void **state) {
  (void)state;
  trail_init("mw-test");
  cap_start(TRAIL_LEVEL_TRACE);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cap_stop();
  return 0;
}

typedef struct hdr {
  const char *name, *value;
} hdr;

static void run(trail_http_request *r, const trail_http_config *cfg,
                const char *method, const char *path, const hdr *h, size_t n) {
  trail_http_begin(r, cfg, method, path, TRAIL_NTS, "127.0.0.1");
  for (size_t i = 0; i < n; i++)
    trail_http_header(r, h[i].name, TRAIL_NTS, h[i].value, TRAIL_NTS);
  trail_http_headers_done(r);
}

static json_t *access_line(void) {
  for (size_t i = cap_count(); i > 0; i--) {
    json_t *j = cap_json(i - 1);
    if (strcmp(jstr(j, "message"), "request completed") == 0)
      return j;
    json_decref(j);
  }
  fail_msg("no access line");
  return NULL;
}

/* A request with the usual headers: ids kept, trace continued, line right. */
static void test_continued_request(void **state) {
  (void)state;
  trail_http_config cfg;
  trail_http_config_init(&cfg);
  cfg.user_id_header = "X-User-ID";
  hdr h[] = {{"X-Request-ID", "req-1"},
             {"TraceParent", tp_in}, /* names are case-insensitive */
             {"tracestate", "congo=t61rcWkgMzE"},
             {"tracestate", " rojo=00f067aa0ba902b7 "},
             {"User-Agent", "curl/7.88.1"},
             {"x-user-id", "user-4711"}};
  trail_http_request r;
  run(&r, &cfg, "GET", "/api/orders/42?token=secret", h, 6);
  trail_ctx *ctx = trail_http_ctx(&r);
  assert_string_equal(trail_http_request_id(&r), "req-1");
  assert_string_equal(trail_ctx_trace_id(ctx),
                      "4bf92f3577b34da6a3ce929d0e0e4736");
  assert_string_equal(trail_ctx_parent_span_id(ctx), "00f067aa0ba902b7");
  assert_string_not_equal(trail_ctx_span_id(ctx), "00f067aa0ba902b7");
  assert_string_equal(trail_ctx_tracestate(ctx),
                      "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  assert_string_equal(trail_ctx_user_id(ctx), "user-4711");

  trail_ctx *prev = trail_ctx_enter(ctx);
  trail_info(trail_logger_get("orders"), "order loaded");
  trail_ctx_leave(prev);
  trail_http_end(&r, 200, 512);
  trail_http_end(&r, 500, 1); /* a second end does nothing */
  assert_int_equal(cap_count(), 2);

  json_t *j = access_line();
  assert_key_order(j);
  assert_str_field(j, "logger", "http");
  assert_str_field(j, "level", "info");
  assert_str_field(j, "request_id", "req-1");
  assert_str_field(j, "user_id", "user-4711");
  assert_str_field(j, "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736");
  assert_str_field(j, "span_id", trail_ctx_span_id(ctx));
  assert_str_field(j, "method", "GET");
  assert_str_field(j, "path", "/api/orders/42");
  assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
  assert_int_equal(json_integer_value(json_object_get(j, "bytes")), 512);
  assert_true(json_is_number(json_object_get(j, "duration_ms")));
  assert_str_field(j, "remote_addr", "127.0.0.1");
  assert_str_field(j, "user_agent", "curl/7.88.1");
  assert_str_field(j, "parent_span_id", "00f067aa0ba902b7");
  json_decref(j);
}

/* What replaces a rejected or missing header. */
static void test_rejections(void **state) {
  (void)state;
  static const struct {
    hdr h[3];
    size_t n;
    int rid_kept, trace_kept, ts_kept;
  } cases[] = {
      {{{"X-Request-ID", "bad id"}}, 1, 0, 0, 0},
      {{{"X-Request-ID", "a\r\nb"}}, 1, 0, 0, 0},
      {{{"X-Request-ID", "\xc3\xa9t\xc3\xa9"}}, 1, 0, 0, 0},
      {{{"X-Request-ID", "one"}, {"X-Request-ID", "two"}}, 2, 0, 0, 0},
      {{{"traceparent",
         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        {"traceparent",
         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
       2,
       0,
       0,
       0},
      {{{"traceparent",
         "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"},
        {"tracestate", "foo=1"}},
       2,
       0,
       0,
       0},
      {{{"tracestate", "foo=1"}}, 1, 0, 0, 0},
      {{{"traceparent",
         "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future-part-"
         "that-is-longer-than-the-copy"},
        {"tracestate", "foo=1"}},
       2,
       0,
       1,
       1},
      {{{"traceparent",
         "  00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\t"},
        {"tracestate", "Foo=1"}},
       2,
       0,
       1,
       0},
  };
  trail_logger_set_level(trail_logger_get("http"), TRAIL_LEVEL_DEBUG);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    trail_http_request r;
    run(&r, NULL, "GET", "/x", cases[i].h, cases[i].n);
    trail_ctx *c = trail_http_ctx(&r);
    const char *rid = trail_http_request_id(&r);
    if (cases[i].rid_kept)
      assert_string_equal(rid, cases[i].h[0].value);
    else
      assert_int_equal(strlen(rid), 36); /* a new UUID */
    int kept =
        strcmp(trail_ctx_trace_id(c), "4bf92f3577b34da6a3ce929d0e0e4736") == 0;
    if (kept != cases[i].trace_kept)
      fail_msg("case %zu: trace kept %d", i, kept);
    assert_int_equal(trail_ctx_tracestate(c)[0] != '\0', cases[i].ts_kept);
    trail_http_end(&r, 200, 0);
  }
  /* every rejection was said, at debug, with the request's id */
  size_t debug = 0;
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    if (strcmp(jstr(j, "message"), "request header rejected") == 0) {
      assert_str_field(j, "level", "debug");
      assert_non_null(json_object_get(j, "request_id"));
      debug++;
    }
    json_decref(j);
  }
  assert_true(debug >= 8);
  trail_logger_set_level(trail_logger_get("http"), TRAIL_LEVEL_INFO);
}

/* Hostile values: huge, many, control bytes. Lines stay valid. */
static void test_hostile_headers(void **state) {
  (void)state;
  size_t n = 64 * 1024;
  char *huge = malloc(n + 1);
  memset(huge, 'a', n);
  huge[n] = '\0';
  trail_http_request r;
  trail_http_begin(&r, NULL, "GET\r\n", huge, TRAIL_NTS, "::1");
  trail_http_header(&r, "X-Request-ID", TRAIL_NTS, huge, TRAIL_NTS);
  trail_http_header(&r, "traceparent", TRAIL_NTS, huge, TRAIL_NTS);
  trail_http_header(&r, "User-Agent", TRAIL_NTS,
                    "evil\n{\"level\":\"x\"}\x1b[31m", TRAIL_NTS);
  for (int i = 0; i < 100; i++)
    trail_http_header(&r, "tracestate", TRAIL_NTS, huge, TRAIL_NTS);
  trail_http_headers_done(&r);
  trail_http_end(&r, 200, 0);
  free(huge);
  json_t *j = access_line();
  assert_key_order(j);
  assert_int_equal(strlen(jstr(j, "request_id")), 36);
  assert_str_field(j, "user_agent", "evil\n{\"level\":\"x\"}\x1b[31m");
  assert_true(json_is_true(json_object_get(j, "path_cut")));
  assert_int_equal(json_string_length(json_object_get(j, "path")),
                   TRAIL_HTTP_PATH_MAX);
  json_decref(j);
}

/* Levels: 2xx info, 4xx warn, 5xx error, slow warn; skipped paths. */
static void test_levels_and_skip(void **state) {
  (void)state;
  static const char *const skip[] = {"/healthz", NULL};
  trail_http_config cfg;
  trail_http_config_init(&cfg);
  cfg.skip_paths = skip;
  static const struct {
    int status;
    const char *level;
  } cases[] = {{101, "info"}, {200, "info"},  {302, "info"}, {404, "warn"},
               {499, "warn"}, {500, "error"}, {503, "error"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cap_clear();
    trail_http_request r;
    run(&r, &cfg, "GET", "/a", NULL, 0);
    trail_http_end(&r, cases[i].status, 1);
    json_t *j = access_line();
    assert_str_field(j, "level", cases[i].level);
    assert_int_equal(json_object_get(j, "client_gone") != NULL,
                     cases[i].status == TRAIL_HTTP_CLIENT_GONE);
    json_decref(j);
  }
  cap_clear();
  trail_http_request r;
  run(&r, &cfg, "GET", "/healthz?full=1", NULL, 0);
  trail_http_end(&r, 200, 3);
  assert_int_equal(cap_count(), 0);

  /* slow: a threshold below any real duration */
  cfg.slow_ms = 1e-9;
  run(&r, &cfg, "GET", "/slow", NULL, 0);
  trail_http_end(&r, 200, 3);
  json_t *j = access_line();
  assert_str_field(j, "level", "warn");
  json_decref(j);

  /* the query is kept when configured */
  cfg.slow_ms = 0;
  cfg.log_query = true;
  cap_clear();
  run(&r, &cfg, "GET", "/q?a=1", NULL, 0);
  trail_http_end(&r, 200, 3);
  j = access_line();
  assert_str_field(j, "path", "/q?a=1");
  json_decref(j);
}

/* end without headers_done (the client left early) still writes a line. */
static void test_end_without_headers_done(void **state) {
  (void)state;
  trail_http_request r;
  trail_http_begin(&r, NULL, "POST", "/api/orders", TRAIL_NTS, NULL);
  trail_http_header(&r, "X-Request-ID", TRAIL_NTS, "early", TRAIL_NTS);
  trail_http_end(&r, TRAIL_HTTP_CLIENT_GONE, 0);
  json_t *j = access_line();
  assert_str_field(j, "request_id", "early");
  assert_null(json_object_get(j, "remote_addr"));
  json_decref(j);
}

/* The headers of an outgoing call: same trace, a new span as parent. */
static void test_outgoing(void **state) {
  (void)state;
  hdr h[] = {{"X-Request-ID", "req-9"},
             {"traceparent", tp_in},
             {"tracestate", "rojo=1"}};
  trail_http_request r;
  run(&r, NULL, "GET", "/", h, 3);
  trail_http_outgoing a, b;
  assert_int_equal(trail_http_outgoing_make(trail_http_ctx(&r), &a), 0);
  assert_int_equal(trail_http_outgoing_make(trail_http_ctx(&r), &b), 0);
  assert_int_equal(strlen(a.traceparent), 55);
  assert_memory_equal(a.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-",
                      36);
  assert_memory_equal(a.traceparent + 36, a.span_id, 16);
  assert_string_equal(a.traceparent + 52, "-01");
  assert_string_not_equal(a.span_id, b.span_id); /* a span per call */
  assert_string_not_equal(a.span_id, trail_ctx_span_id(trail_http_ctx(&r)));
  assert_string_equal(a.tracestate, "rojo=1");
  assert_string_equal(a.request_id, "req-9");
  /* NULL: the current context */
  trail_ctx *prev = trail_ctx_enter(trail_http_ctx(&r));
  assert_int_equal(trail_http_outgoing_make(NULL, &b), 0);
  trail_ctx_leave(prev);
  assert_memory_equal(b.traceparent, a.traceparent, 36);
  assert_int_equal(trail_http_outgoing_make(NULL, &b), TRAIL_EINVAL_ID);
  trail_http_end(&r, 200, 0);
}

/*
 * A duplicated tracestate key (here across two headers, as HTTP joins them)
 * is the sender's mistake, not a reason to lose the list: W3C Trace
 * Context, section 3.3.1.4. The list is propagated as it came, and nothing
 * is rejected. Keys of the Level 2 grammar ("foo@") go along too.
 */
static void test_duplicate_tracestate_key(void **state) {
  (void)state;
  hdr h[] = {{"traceparent", tp_in},
             {"tracestate", "congo=1,rojo=2"},
             {"tracestate", "congo=3, foo@=x"}};
  trail_logger_set_level(trail_logger_get("http"), TRAIL_LEVEL_DEBUG);
  trail_http_request r;
  run(&r, NULL, "GET", "/", h, 3);
  const char *want = "congo=1,rojo=2,congo=3,foo@=x";
  assert_string_equal(trail_ctx_tracestate(trail_http_ctx(&r)), want);
  trail_http_outgoing out;
  assert_int_equal(trail_http_outgoing_make(trail_http_ctx(&r), &out), 0);
  assert_string_equal(out.tracestate, want);
  trail_http_end(&r, 200, 0);
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    if (strcmp(jstr(j, "message"), "request header rejected") == 0)
      fail_msg("rejected: %s", jstr(j, "header"));
    json_decref(j);
  }
  trail_logger_set_level(trail_logger_get("http"), TRAIL_LEVEL_INFO);
}

/*
 * A tracestate list of 32 members, total bytes long with its commas, into
 * out (total + 1 bytes): "k00=vvv...", the extra bytes on the first members.
 * total is 32 * 5 + 31 at least (a value of one character each).
 */
static void make_tracestate(char *out, size_t total) {
  size_t body = total - 31, o = 0; /* 31 commas */
  for (int i = 0; i < 32; i++) {
    size_t len = body / 32 + ((size_t)i < body % 32);
    if (i > 0)
      out[o++] = ',';
    o += (size_t)snprintf(out + o, 5, "k%02d=", i);
    memset(out + o, 'v', len - 4);
    o += len - 4;
  }
  out[o] = '\0';
}

/* The reason of the request's tracestate rejection, or NULL when none. */
static char *tracestate_rejection(void) {
  char *reason = NULL;
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    if (strcmp(jstr(j, "message"), "request header rejected") == 0 &&
        strcmp(jstr(j, "header"), "tracestate") == 0) {
      assert_null(reason);
      reason = strdup(jstr(j, "reason"));
    }
    json_decref(j);
  }
  return reason;
}

/*
 * The joined list is validated up to 1024 bytes, the limit included, in one
 * header or several (the commas that join them count); a byte more, or a
 * NUL, drops it, and the debug line says which.
 */
static void test_tracestate_joined_limit(void **state) {
  (void)state;
  char list[1026];
  static const struct {
    size_t total;
    int split, nul;
    const char *reason; /* NULL: kept */
  } cases[] = {{1024, 0, 0, NULL},
               {1024, 1, 0, NULL},
               {1025, 0, 0, "longer than 1024 bytes"},
               {1025, 1, 0, "longer than 1024 bytes"},
               {400, 0, 1, "holds a NUL byte"}};
  trail_logger_set_level(trail_logger_get("http"), TRAIL_LEVEL_DEBUG);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    make_tracestate(list, cases[i].total);
    assert_int_equal(strlen(list), cases[i].total);
    size_t len = strlen(list);
    if (cases[i].nul)
      list[10] = '\0';
    cap_clear();
    trail_http_request r;
    trail_http_begin(&r, NULL, "GET", "/", TRAIL_NTS, "127.0.0.1");
    trail_http_header(&r, "traceparent", TRAIL_NTS, tp_in, TRAIL_NTS);
    if (cases[i].split) { /* at the first comma, which the join puts back */
      size_t comma = strcspn(list, ",");
      trail_http_header(&r, "tracestate", TRAIL_NTS, list, comma);
      trail_http_header(&r, "tracestate", TRAIL_NTS, list + comma + 1,
                        len - comma - 1);
    } else {
      trail_http_header(&r, "tracestate", TRAIL_NTS, list, len);
    }
    trail_http_headers_done(&r);
    const char *kept = trail_ctx_tracestate(trail_http_ctx(&r));
    char *reason = tracestate_rejection();
    if (cases[i].reason == NULL) {
      assert_null(reason);
      /* shortened to 512 from the end: the first members stay */
      assert_true(strncmp(kept, "k00=", 4) == 0);
      assert_true(strlen(kept) <= TRAIL_TRACESTATE_MAX);
    } else {
      assert_string_equal(kept, "");
      assert_non_null(reason);
      assert_string_equal(reason, cases[i].reason);
    }
    free(reason);
    trail_http_end(&r, 200, 0);
  }
  trail_logger_set_level(trail_logger_get("http"), TRAIL_LEVEL_INFO);
}

/*
 * Flags this version does not define are not passed on: W3C Trace Context,
 * section 3.2.2.5 (trace-flags) has vendors set them to zero. sampled (01)
 * and random (02) go along.
 */
static void test_outgoing_flags(void **state) {
  (void)state;
  static const struct {
    const char *in, *out;
  } cases[] = {{"ff", "-03"}, {"fd", "-01"}, {"02", "-02"}, {"00", "-00"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char tp[64];
    snprintf(tp, sizeof tp, "%.53s%s", tp_in, cases[i].in);
    hdr h[] = {{"traceparent", tp}};
    trail_http_request r;
    run(&r, NULL, "GET", "/", h, 1);
    trail_http_outgoing out;
    assert_int_equal(trail_http_outgoing_make(trail_http_ctx(&r), &out), 0);
    assert_memory_equal(out.traceparent, tp_in, 36); /* the trace went on */
    assert_string_equal(out.traceparent + 52, cases[i].out);
    char mine[TRAIL_TRACEPARENT_LEN + 1];
    assert_int_equal(
        trail_ctx_traceparent(trail_http_ctx(&r), mine, sizeof mine), 55);
    assert_string_equal(mine + 52, cases[i].out);
    trail_http_end(&r, 200, 0);
  }
}

static int int_field(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  if (!json_is_integer(v))
    fail_msg("%s is not an integer", key);
  return (int)json_integer_value(v);
}

/* One request's access line: begun, reported through do_fn, ended. */
typedef void (*report_fn)(trail_http_request *r);

static json_t *ended(const char *method, const char *path,
                     const trail_http_config *cfg, report_fn fn,
                     int server_status, uint64_t server_bytes) {
  trail_http_request r;
  cap_clear();
  run(&r, cfg, method, path, NULL, 0);
  if (fn != NULL)
    fn(&r);
  trail_http_end(&r, server_status, server_bytes);
  return access_line();
}

static void rep_200_body(trail_http_request *r) {
  trail_http_response(r, 200);
  trail_http_body(r, 3);
  trail_http_body(r, 4); /* accumulates */
}
static void rep_201_gone(trail_http_request *r) {
  trail_http_response(r, 201);
  trail_http_body(r, 5);
  trail_http_client_gone(r);
}
static void rep_status_only(trail_http_request *r) {
  trail_http_response(r, 404);
}
static void rep_body_zero(trail_http_request *r) { trail_http_body(r, 0); }

/* 499 over the status reported through trail over the server's. */
static void test_status_precedence(void **state) {
  (void)state;
  json_t *j = ended("GET", "/a", NULL, NULL, 503, 9); /* the server's */
  assert_int_equal(int_field(j, "status"), 503);
  assert_int_equal(int_field(j, "bytes"), 9);
  assert_null(json_object_get(j, "client_gone"));
  json_decref(j);

  j = ended("GET", "/a", NULL, rep_200_body, 1, 99); /* trail's over it */
  assert_int_equal(int_field(j, "status"), 200);
  assert_int_equal(int_field(j, "bytes"), 7);
  assert_str_field(j, "level", "info");
  json_decref(j);

  j = ended("GET", "/a", NULL, rep_status_only, 200, 12);
  assert_int_equal(int_field(j, "status"), 404);
  assert_int_equal(int_field(j, "bytes"), 12); /* no body reported */
  assert_str_field(j, "level", "warn");
  json_decref(j);

  j = ended("GET", "/a", NULL, rep_body_zero, 200, 12);
  assert_int_equal(int_field(j, "bytes"), 0); /* counted by trail: none */
  json_decref(j);

  j = ended("GET", "/a", NULL, rep_201_gone, 200, 0); /* gone over both */
  assert_int_equal(int_field(j, "status"), TRAIL_HTTP_CLIENT_GONE);
  assert_true(json_is_true(json_object_get(j, "client_gone")));
  assert_int_equal(int_field(j, "bytes"), 5); /* what went out before */
  assert_str_field(j, "level", "warn");
  json_decref(j);

  /* reports after the end, or before a begin, change nothing */
  trail_http_request r;
  run(&r, NULL, "GET", "/late", NULL, 0);
  trail_http_end(&r, 200, 1);
  trail_http_client_gone(&r);
  trail_http_response(&r, 500);
  trail_http_end(&r, 500, 1);
  j = access_line();
  assert_int_equal(int_field(j, "status"), 200);
  json_decref(j);
}

static void rep_bad_statuses(trail_http_request *r) {
  trail_http_response(r, 201);
  trail_http_response(r, 0);   /* not a status: ignored */
  trail_http_response(r, 600); /* nor this */
  trail_http_response(r, 99);
}

/* A status outside 100-599 is never the line's: "status":0 is not written. */
static void test_status_out_of_range(void **state) {
  static const int unnamed[] = {0, -1, 1, 99, 600, 1000};
  (void)state;
  for (size_t i = 0; i < sizeof unnamed / sizeof unnamed[0]; i++) {
    json_t *j = ended("GET", "/a", NULL, NULL, unnamed[i], 0);
    assert_int_equal(int_field(j, "status"), 500);
    assert_str_field(j, "level", "error");
    json_decref(j);
  }
  json_t *j = ended("GET", "/a", NULL, NULL, 100, 0); /* the edges are */
  assert_int_equal(int_field(j, "status"), 100);
  json_decref(j);
  j = ended("GET", "/a", NULL, NULL, 599, 0);
  assert_int_equal(int_field(j, "status"), 599);
  json_decref(j);
  j = ended("GET", "/a", NULL, rep_bad_statuses, 0, 0); /* the last valid */
  assert_int_equal(int_field(j, "status"), 201);
  json_decref(j);
}

static void rep_body_10(trail_http_request *r) { trail_http_body(r, 10); }

/* HEAD, 1xx, 204 and 304 carry no body: the query and the access line. */
static void test_no_body(void **state) {
  (void)state;
  trail_http_request r;
  run(&r, NULL, "HEAD", "/h", NULL, 0);
  assert_true(trail_http_no_body(&r, 200));
  trail_http_end(&r, 200, 0);
  run(&r, NULL, "GET", "/g", NULL, 0);
  static const int none[] = {100, 101, 103, 199, 204, 304};
  static const int some[] = {200, 201, 206, 301, 302, 400, 404, 500};
  for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
    assert_true(trail_http_no_body(&r, none[i]));
    assert_true(trail_http_no_body(NULL, none[i]));
  }
  for (size_t i = 0; i < sizeof some / sizeof some[0]; i++) {
    assert_false(trail_http_no_body(&r, some[i]));
    assert_false(trail_http_no_body(NULL, some[i]));
  }
  trail_http_end(&r, 200, 0);
  run(&r, NULL, "GET", "/g", NULL, 0);
  trail_http_set_method(&r, "HEAD");
  assert_true(trail_http_no_body(&r, 200));
  trail_http_end(&r, 200, 0);

  json_t *j = ended("HEAD", "/h", NULL, rep_body_10, 200, 10);
  assert_str_field(j, "method", "HEAD");
  assert_int_equal(int_field(j, "bytes"), 0);
  json_decref(j);
  static const int st[] = {101, 204, 304};
  for (size_t i = 0; i < 3; i++) {
    j = ended("GET", "/g", NULL, rep_body_10, st[i], 10);
    assert_int_equal(int_field(j, "status"), st[i]);
    assert_int_equal(int_field(j, "bytes"), 0);
    json_decref(j);
  }
  j = ended("GET", "/g", NULL, rep_body_10, 200, 0);
  assert_int_equal(int_field(j, "bytes"), 10);
  json_decref(j);
}

/* The id to echo: the client's valid one, else trail's own, always one. */
static void test_request_id_echo(void **state) {
  (void)state;
  trail_http_request r;
  hdr ok[] = {{"X-Request-ID", "echo-1"}};
  run(&r, NULL, "GET", "/", ok, 1);
  assert_string_equal(trail_http_request_id(&r), "echo-1");
  trail_http_end(&r, 200, 0);
  hdr bad[] = {{"X-Request-ID", "no spaces allowed"}};
  run(&r, NULL, "GET", "/", bad, 1);
  const char *id = trail_http_request_id(&r);
  assert_int_equal(strlen(id), 36); /* a new UUID */
  assert_int_equal(trail_request_id_check(id, strlen(id)), 0);
  trail_http_end(&r, 200, 0);
  json_t *j = access_line();
  assert_str_field(j, "request_id", id);
  json_decref(j);
  hdr two[] = {{"X-Request-ID", "twice-a"}, {"X-Request-ID", "twice-b"}};
  run(&r, NULL, "GET", "/", two, 2);
  assert_string_not_equal(trail_http_request_id(&r), "twice-a");
  assert_string_not_equal(trail_http_request_id(&r), "twice-b");
  trail_http_end(&r, 200, 0);
  assert_string_equal(trail_http_request_id(NULL), "");
}

static const char *path_of(const char *target, int log_query) {
  static char out[TRAIL_HTTP_PATH_MAX + 1];
  trail_http_config cfg;
  trail_http_config_init(&cfg);
  cfg.log_query = log_query;
  json_t *j = ended("GET", target, &cfg, NULL, 200, 0);
  snprintf(out, sizeof out, "%s", jstr(j, "path"));
  json_decref(j);
  return out;
}

/* Absolute-form targets (RFC 9112 section 3.2.2) are logged by path. */
static void test_absolute_form(void **state) {
  (void)state;
  assert_string_equal(path_of("http://host/p?q", 0), "/p");
  assert_string_equal(path_of("http://host/p?q", 1), "/p?q");
  assert_string_equal(path_of("https://h:8080", 0), "/");
  assert_string_equal(path_of("https://h:8080", 1), "/");
  assert_string_equal(path_of("http://h?x=1", 1), "/?x=1");
  assert_string_equal(path_of("http://h?x=1", 0), "/");
  /* only a query: the path is empty, which is "/" (RFC 9112, 3.2.1) */
  assert_string_equal(path_of("?x=1", 0), "/");
  assert_string_equal(path_of("?x=1", 1), "/?x=1");
  assert_string_equal(path_of("HTTP://user@h:1/a/b", 0), "/a/b");
  assert_string_equal(path_of("/plain?q", 1), "/plain?q");
  assert_string_equal(path_of("/x/http://y", 0), "/x/http://y");
  json_t *j = ended("OPTIONS", "*", NULL, NULL, 200, 0);
  assert_str_field(j, "path", "*");
  json_decref(j);
  /* the skip list sees the reduced path */
  static const char *const skip[] = {"/healthz", NULL};
  trail_http_config cfg;
  trail_http_config_init(&cfg);
  cfg.skip_paths = skip;
  trail_http_request r;
  cap_clear();
  run(&r, &cfg, "GET", "http://h/healthz?x", NULL, 0);
  trail_http_end(&r, 200, 0);
  assert_int_equal(cap_count(), 0);
}

/* A server's diagnostic: a warn line of logger "http", data, trimmed. */
static void test_server_error(void **state) {
  (void)state;
  trail_http_request r;
  hdr h[] = {{"X-Request-ID", "diag-1"}};
  run(&r, NULL, "GET", "/", h, 1);
  cap_clear();
  trail_http_server_error(&r, "Socket closed %s\r\n", TRAIL_NTS);
  trail_http_server_error(NULL, "no request\nhere\nXX", 15);
  trail_http_server_error(NULL, NULL, 3);
  assert_int_equal(cap_count(), 2);
  json_t *a = cap_json(0);
  assert_str_field(a, "logger", "http");
  assert_str_field(a, "level", "warn");
  assert_str_field(a, "message", "Socket closed %s");
  assert_str_field(a, "request_id", "diag-1");
  json_decref(a);
  json_t *b = cap_json(1);
  assert_str_field(b, "logger", "http");
  assert_str_field(b, "level", "warn");
  assert_str_field(b, "message", "no request\nhere");
  assert_null(json_object_get(b, "request_id"));
  json_decref(b);
  /* without a request, the current context is the line's */
  cap_clear();
  trail_ctx *prev = trail_ctx_enter(trail_http_ctx(&r));
  trail_http_server_error(NULL, "inside", TRAIL_NTS);
  trail_ctx_leave(prev);
  json_t *c = cap_json(0);
  assert_str_field(c, "request_id", "diag-1");
  json_decref(c);
  trail_http_end(&r, 200, 0);
}

/*
 * The opaque storage: one size, aligned for any scalar (as max_align_t is
 * on this platform's ABI; check_compile.sh proves C99 and C11 agree).
 */
static void test_storage(void **state) {
  (void)state;
  assert_int_equal(sizeof(trail_http_request), TRAIL_HTTP_REQUEST_SIZE);
  assert_true(_Alignof(trail_http_request) >= _Alignof(long double));
  assert_true(_Alignof(trail_http_request) >= _Alignof(long long));
  assert_true(_Alignof(trail_http_request) >= _Alignof(void *));
#if defined(__x86_64__) || defined(__aarch64__)
  assert_int_equal(_Alignof(trail_http_request), _Alignof(max_align_t));
#endif
  trail_http_request many[3];
  for (int i = 0; i < 3; i++)
    run(&many[i], NULL, "GET", "/", NULL, 0);
  for (int i = 0; i < 3; i++) {
    assert_ptr_not_equal(trail_http_ctx(&many[i]), NULL);
    trail_http_end(&many[i], 200, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_continued_request, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hostile_headers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_levels_and_skip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_end_without_headers_done, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_outgoing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duplicate_tracestate_key, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_tracestate_joined_limit, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_outgoing_flags, setup, teardown),
      cmocka_unit_test_setup_teardown(test_status_precedence, setup, teardown),
      cmocka_unit_test_setup_teardown(test_status_out_of_range, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_no_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_request_id_echo, setup, teardown),
      cmocka_unit_test_setup_teardown(test_absolute_form, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_storage, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

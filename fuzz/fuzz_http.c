/*
 * Fuzz target: the HTTP middleware core of include/trail/http.h, as a
 * server adapter drives it, with hostile requests.
 *
 * The input gives the configuration (user id header, query logging, a
 * skipped path, a slow threshold), the maximum line length, the method,
 * path and remote address, up to 16 headers with arbitrary names (or the
 * ones trail reads, in any case) and values (CR, LF, NUL, non-ASCII,
 * oversize), the status and the byte count. It then runs
 * trail_http_begin / header / headers_done / end and checks:
 *
 * - every line written (the access line and the "request header rejected"
 *   debug lines) passes fz_check_line();
 * - the request id echoed to the client is a valid id, and is the client's
 *   when it sent exactly one valid X-Request-ID;
 * - the trace is continued exactly when one traceparent was sent and it is
 *   valid (trail_traceparent_parse on the value as sent), with its trace
 *   id, parent and the flags W3C Trace Context Level 2 defines (sampled,
 *   random: section 3.2.2.5 has the others set to zero); else a new trace;
 * - the tracestate is kept only under a continued trace, and is then what
 *   trail_ctx_set_tracestate() makes of the values joined;
 * - the user id comes from the configured header, sent once, 1..128 bytes;
 * - the access line is written once (none for a skipped path), at the
 *   level the status gives, with the request's ids, method, path, status
 *   and bytes; the headers for an outgoing call carry the same trace.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "trail/http.h"

#define MAX_HEADERS 16

static const char *const header_table[] = {
    "traceparent", "tracestate",  "X-Request-ID", "x-request-id", "User-Agent",
    "X-User-ID",   "TRACEPARENT", "TraceState",   "Content-Type", "X-User-Id"};
#define HEADER_TABLE_N (sizeof header_table / sizeof header_table[0])

typedef struct header {
  const char *name;
  size_t name_len; /* as passed: may be TRAIL_NTS */
  const char *value;
  size_t value_len;
} header;

static int initialized;

/* Trims HTTP optional white space, as a header value is read. */
static void ows(const char **v, size_t *n) {
  while (*n > 0 && (**v == ' ' || **v == '\t')) {
    (*v)++;
    (*n)--;
  }
  while (*n > 0 && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
    (*n)--;
}

/* Case-insensitive name match on a header as passed. */
static int is(const header *h, const char *want) {
  size_t n = h->name_len == TRAIL_NTS ? strlen(h->name) : h->name_len;
  if (want == NULL || strlen(want) != n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char a = h->name[i], b = want[i];
    if (a >= 'A' && a <= 'Z')
      a = (char)(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z')
      b = (char)(b - 'A' + 'a');
    if (a != b)
      return 0;
  }
  return 1;
}

/* The value of a header as trail sees it: its length resolved, trimmed. */
static void value_of(const header *h, const char **v, size_t *n) {
  *v = h->value;
  *n = h->value_len == TRAIL_NTS ? strlen(h->value) : h->value_len;
  ows(v, n);
}

/* The level the access line must have. */
static trail_level access_level(int status, int slow) {
  trail_level lv = status >= 500   ? TRAIL_LEVEL_ERROR
                   : status >= 400 ? TRAIL_LEVEL_WARN
                                   : TRAIL_LEVEL_INFO;
  if (slow && lv < TRAIL_LEVEL_WARN)
    lv = TRAIL_LEVEL_WARN;
  return lv;
}

/*
 * What the context must hold after the headers: the id, the trace, the
 * tracestate and the user, computed from the headers as passed.
 */
static void check_context(trail_http_request *r, const trail_http_config *cfg,
                          const header *hs, size_t nh) {
  trail_ctx *ctx = trail_http_ctx(r);
  const char *rid = trail_http_request_id(r);
  FZ_CHECK(trail_request_id_check(rid, strlen(rid)) == 0, "bad request id %s",
           rid);

  size_t n_rid = 0, n_tp = 0, n_user = 0;
  const header *rid_h = NULL, *tp_h = NULL, *user_h = NULL;
  /* tracestate values are joined while they fit the 1024 bytes kept */
  char joined[2 * TRAIL_TRACESTATE_MAX + 1];
  size_t jl = 0;
  int ts_bad = 0;
  for (size_t i = 0; i < nh; i++) {
    const char *v;
    size_t n;
    value_of(&hs[i], &v, &n);
    if (is(&hs[i], "x-request-id")) {
      n_rid++;
      rid_h = &hs[i];
    } else if (is(&hs[i], "traceparent")) {
      n_tp++;
      tp_h = &hs[i];
    } else if (is(&hs[i], "tracestate")) {
      if (n > 0 && jl + 1 + n > 2 * TRAIL_TRACESTATE_MAX) {
        ts_bad = 1;
      } else if (n > 0) {
        if (jl)
          joined[jl++] = ',';
        memcpy(joined + jl, v, n);
        jl += n;
      }
    } else if (is(&hs[i], "user-agent")) {
      /* kept for the access line only */
    } else if (is(&hs[i], cfg->user_id_header)) {
      n_user++;
      user_h = &hs[i];
    }
  }

  if (n_rid == 1) {
    const char *v;
    size_t n;
    value_of(rid_h, &v, &n);
    if (trail_request_id_check(v, n) == 0)
      FZ_CHECK(strlen(rid) == n && memcmp(rid, v, n) == 0,
               "the client's valid X-Request-ID was replaced");
    else
      FZ_CHECK(strlen(rid) == 36, "an invalid X-Request-ID was kept: %s", rid);
  } else {
    FZ_CHECK(strlen(rid) == 36, "request id %s is not a new UUID", rid);
  }

  trail_traceparent tp;
  int continued = 0;
  if (n_tp == 1) {
    const char *v;
    size_t n;
    value_of(tp_h, &v, &n);
    continued = trail_traceparent_parse(v, n, &tp) == 0;
  }
  FZ_CHECK(strlen(trail_ctx_trace_id(ctx)) == 32 &&
               strlen(trail_ctx_span_id(ctx)) == 16,
           "the context has no trace");
  if (continued) {
    FZ_CHECK(strcmp(trail_ctx_trace_id(ctx), tp.trace_id) == 0 &&
                 strcmp(trail_ctx_parent_span_id(ctx), tp.parent_id) == 0 &&
                 trail_ctx_trace_flags(ctx) == (tp.flags & 0x03),
             "a valid traceparent was not continued");
  } else {
    FZ_CHECK(trail_ctx_parent_span_id(ctx)[0] == '\0',
             "a trace was continued from a missing, repeated or invalid "
             "traceparent");
  }

  const char *ts = trail_ctx_tracestate(ctx);
  if (!continued || jl == 0 || ts_bad) {
    FZ_CHECK(ts[0] == '\0',
             "tracestate kept without a continued trace or "
             "from an oversize one: %s",
             ts);
  } else {
    trail_ctx ref;
    trail_ctx_clear(&ref);
    if (trail_ctx_set_tracestate(&ref, joined, jl) == 0)
      FZ_CHECK(strcmp(ts, trail_ctx_tracestate(&ref)) == 0,
               "tracestate kept as %s, want %s", ts,
               trail_ctx_tracestate(&ref));
    else
      FZ_CHECK(ts[0] == '\0', "an invalid tracestate was kept: %s", ts);
  }

  const char *user = trail_ctx_user_id(ctx);
  if (cfg->user_id_header && n_user == 1) {
    const char *v;
    size_t n;
    value_of(user_h, &v, &n);
    if (n >= 1 && n <= TRAIL_USER_ID_MAX) {
      size_t cn = strnlen(v, n);
      FZ_CHECK(strlen(user) == cn && memcmp(user, v, cn) == 0,
               "the user header was not taken");
    } else {
      FZ_CHECK(user[0] == '\0', "an oversize or empty user id was kept");
    }
  } else {
    FZ_CHECK(user[0] == '\0', "a user id from nowhere: %s", user);
  }

  trail_http_outgoing out;
  FZ_CHECK(trail_http_outgoing_make(ctx, &out) == 0, "outgoing failed");
  trail_traceparent otp;
  FZ_CHECK(trail_traceparent_parse(out.traceparent, TRAIL_NTS, &otp) == 0 &&
               strcmp(otp.trace_id, trail_ctx_trace_id(ctx)) == 0 &&
               strcmp(otp.parent_id, out.span_id) == 0 &&
               otp.flags == trail_ctx_trace_flags(ctx),
           "outgoing traceparent %s is not the request's trace",
           out.traceparent);
  FZ_CHECK(strcmp(out.tracestate, ts) == 0 && strcmp(out.request_id, rid) == 0,
           "outgoing tracestate or request id differs");
}

/*
 * The access line: the request's ids, method and path as recorded, the
 * status and byte count passed.
 */
static void check_access(json_t *root, trail_http_request *r,
                         const uint8_t *method, size_t mlen,
                         const uint8_t *path, size_t plen, int log_query,
                         int status, uint64_t bytes) {
  trail_ctx *ctx = trail_http_ctx(r);
  json_t *v = json_object_get(root, "request_id");
  FZ_CHECK(v && strcmp(json_string_value(v), trail_http_request_id(r)) == 0,
           "access line request_id differs");
  v = json_object_get(root, "trace_id");
  FZ_CHECK(v && strcmp(json_string_value(v), trail_ctx_trace_id(ctx)) == 0,
           "access line trace_id differs");

  /* method: at most 16 bytes, up to a NUL; path: the query cut unless
   * logged, at most 2048 bytes, up to a NUL */
  size_t ml = strnlen((const char *)method, mlen);
  if (ml > TRAIL_HTTP_METHOD_MAX)
    ml = TRAIL_HTTP_METHOD_MAX;
  FZ_CHECK(fz_string_is(json_object_get(root, "method"), method, ml),
           "method differs");
  size_t pl = plen;
  if (!log_query) {
    const uint8_t *q = memchr(path, '?', plen);
    if (q)
      pl = (size_t)(q - path);
  }
  if (pl > TRAIL_HTTP_PATH_MAX)
    pl = TRAIL_HTTP_PATH_MAX;
  pl = strnlen((const char *)path, pl);
  FZ_CHECK(fz_string_is(json_object_get(root, "path"), path, pl),
           "path differs");
  /* numbers by value: a byte count above INT64_MAX makes jansson read
   * every integer of the line as a real */
  FZ_CHECK(fz_number_is(json_object_get(root, "status"), status),
           "status differs");
  FZ_CHECK(fz_number_is(json_object_get(root, "bytes"), (double)bytes),
           "bytes differs");
  FZ_CHECK(strcmp(json_string_value(json_object_get(root, "message")),
                  "request completed") == 0,
           "access line message");
}

/*
 * Layout: flags, maximum line, method, path, remote address, headers,
 * status, bytes. Flags: bit 0 user id header, bit 1 log the query, bit 2
 * skip "/healthz", bit 3 everything is slow, bit 4 call headers_done
 * before end, bit 5 set the user from the handler, bit 6 no remote
 * address, bit 7 path passed NUL-terminated.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!initialized) {
    fz_capture_install();
    initialized = 1;
  }
  fz_in in = {data, size};
  uint8_t flags = fz_u8(&in);
  size_t max_line = 2048 + fz_u16(&in) % (32768 - 2048 + 1);
  FZ_CHECK(trail_max_line_set(max_line) == 0, "max line");

  static const char *const skip[] = {"/healthz", NULL};
  trail_http_config cfg;
  trail_http_config_init(&cfg);
  cfg.user_id_header = flags & 1 ? "X-User-ID" : NULL;
  cfg.log_query = (flags & 2) != 0;
  cfg.skip_paths = flags & 4 ? skip : NULL;
  cfg.slow_ms = flags & 8 ? 1e-9 : 0;

  const uint8_t *method, *path, *addr;
  size_t mlen = fz_slice8(&in, &method);
  size_t plen = fz_slice16(&in, 4096, &path);
  size_t alen = fz_slice8(&in, &addr);
  const char *m = fz_strndup(method, mlen);
  const char *p = fz_strndup(path, plen);
  size_t plen_arg = plen;
  if (flags & 0x80) {
    plen_arg = TRAIL_NTS;
    plen = strlen(p);
  }

  header hs[MAX_HEADERS];
  size_t nh = fz_u8(&in) % (MAX_HEADERS + 1);
  for (size_t i = 0; i < nh; i++) {
    uint8_t sel = fz_u8(&in);
    const uint8_t *s;
    size_t n;
    if (sel % 16 < HEADER_TABLE_N) {
      hs[i].name = header_table[sel % 16];
      hs[i].name_len = sel & 0x80 ? TRAIL_NTS : strlen(hs[i].name);
    } else {
      n = fz_slice8(&in, &s);
      hs[i].name = fz_strndup(s, n);
      hs[i].name_len = sel & 0x80 ? TRAIL_NTS : n;
    }
    n = fz_slice16(&in, 2100, &s);
    hs[i].value = fz_strndup(s, n);
    hs[i].value_len = sel & 0x40 ? TRAIL_NTS : n;
  }
  int status = (int)(int16_t)fz_u16(&in);
  uint64_t bytes = fz_u64(&in);

  trail_http_request *r = malloc(sizeof *r);
  FZ_CHECK(r != NULL, "out of memory");
  trail_http_begin(r, &cfg, m, p, plen_arg,
                   flags & 0x40 ? NULL : fz_strndup(addr, alen));
  for (size_t i = 0; i < nh; i++)
    trail_http_header(r, hs[i].name, hs[i].name_len, hs[i].value,
                      hs[i].value_len);
  if (flags & 0x10)
    trail_http_headers_done(r);
  trail_http_headers_done(r); /* a second call does nothing */
  check_context(r, &cfg, hs, nh);
  size_t before_end = fz_nlines;
  if (flags & 0x20)
    FZ_CHECK(trail_http_set_user(r, "handler-user") == 0, "set_user failed");
  trail_http_end(r, status, bytes);
  trail_http_end(r, status, bytes); /* a second call does nothing */

  for (size_t i = 0; i < fz_nlines; i++) {
    fz_parsed pl;
    fz_check_line(fz_lines[i].text, fz_lines[i].len, max_line, &pl);
    FZ_CHECK(strcmp(json_string_value(json_object_get(pl.root, "logger")),
                    "http") == 0,
             "a middleware line not on logger http");
    if (i >= before_end && !pl.truncated)
      check_access(pl.root, r, method, mlen, (const uint8_t *)p, plen,
                   cfg.log_query, status, bytes);
    json_decref(pl.root);
  }
  /* The path as kept: the query cut unless logged, 2048 bytes, to a NUL. */
  size_t rl = plen;
  const char *q = cfg.log_query ? NULL : memchr(p, '?', plen);
  if (q != NULL)
    rl = (size_t)(q - p);
  rl = strnlen(p, rl > TRAIL_HTTP_PATH_MAX ? TRAIL_HTTP_PATH_MAX : rl);
  int skipped = (flags & 4) && rl == 8 && memcmp(p, "/healthz", 8) == 0;
  FZ_CHECK(fz_nlines - before_end == (skipped ? 0u : 1u),
           "%zu access lines (skipped=%d)", fz_nlines - before_end, skipped);
  if (!skipped)
    FZ_CHECK(fz_lines[before_end].level ==
                 access_level(status, cfg.slow_ms > 0),
             "access line level %d for status %d",
             (int)fz_lines[before_end].level, status);

  free(r);
  fz_capture_reset();
  fz_arena_free();
  return 0;
}

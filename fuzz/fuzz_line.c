/*
 * Fuzz target: one whole logging call through the public API.
 *
 * The input decides everything a caller controls: the maximum line length
 * (2048 to 65536 bytes), caller information, the level, the logger (a
 * registry logger, and maybe a child with bound fields), a request context
 * (its ids and bound fields), the message, the way the call is made
 * (trail_log, the macros' trail__log, trail__logf, trail_ctx_log) and up to
 * 24 event fields of every kind with arbitrary keys (reserved ones and
 * repeats included) and values: strings with NUL bytes and invalid UTF-8,
 * integer extremes, doubles from raw bits (NaN, infinities, subnormals),
 * booleans and jansson values built from the bytes.
 *
 * The line is captured by a callback sink and must pass fz_check_line();
 * then its content is compared with what was passed: the logger name, the
 * context's ids, caller, the message (whole, or a prefix when the line says
 * it was truncated), and, in a line that was not truncated, every field's
 * key by the rename rule of docs/log-format.md and every value.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"

#define MAX_FIELDS 24
#define MAX_BOUND 8

/* Keys worth hitting often: the reserved ones and near misses. */
static const char *const key_table[] = {
    "timestamp", "level",    "logger",  "message", "service",   "request_id",
    "user_id",   "trace_id", "span_id", "caller",  "truncated", "_level",
    "k",         "_k",       "",        "__k",     "password",  "Token"};
#define KEY_TABLE_N (sizeof key_table / sizeof key_table[0])

static const char *const name_table[] = {"http", "db", "db.pool",  "a.b.c",
                                         "root", "x",  "bad name", NULL};
#define NAME_TABLE_N (sizeof name_table / sizeof name_table[0])

/* One field as passed, with what is needed to check it in the line. */
typedef struct want_field {
  trail_field f;
  const char *key; /* as passed; NULL is written as "_" */
  json_t *json;    /* owned here when kind is TRAIL_FIELD_JSON */
} want_field;

static int initialized;

/*
 * One-time setup: only the capture sink, every level enabled, service
 * "fuzz". libFuzzer runs inputs one after another in one process, so the
 * per-input state (maximum, caller) is set again by every input.
 */
static void init(void) {
  if (initialized)
    return;
  fz_capture_install();
  initialized = 1;
}

/* Integer and double values that are interesting more often than chance. */
static uint64_t pick_u64(fz_in *in) {
  static const uint64_t special[] = {0,
                                     1,
                                     UINT64_MAX,
                                     INT64_MAX,
                                     (uint64_t)INT64_MIN,
                                     (uint64_t)INT64_MAX + 1};
  uint8_t sel = fz_u8(in);
  if (sel < 6)
    return special[sel];
  return fz_u64(in);
}

/*
 * Decodes one field. The key: one of key_table, NULL, or raw bytes (cut at
 * a NUL, as C strings are). The value: by kind, from the bytes; a kind
 * outside the enum is passed too, as a caller building fields by hand
 * might.
 */
static void decode_field(fz_in *in, want_field *w) {
  const uint8_t *s;
  size_t n;
  uint8_t kind = fz_u8(in), keysel = fz_u8(in);
  memset(w, 0, sizeof *w);
  if (keysel < KEY_TABLE_N)
    w->key = key_table[keysel];
  else if (keysel == KEY_TABLE_N)
    w->key = NULL;
  else {
    n = fz_slice8(in, &s);
    w->key = fz_strndup(s, n);
  }
  switch (kind % 8) {
  case 0:
    n = fz_slice16(in, 70000, &s);
    w->f = TRAIL_STRN(w->key, (const char *)s, n);
    break;
  case 1:
    n = fz_slice16(in, 70000, &s);
    if (kind & 0x80) {
      /* By hand: a NULL literal in the macro is not what is tested here. */
      w->f.kind = TRAIL_FIELD_STR;
      w->f.len = TRAIL_NTS;
      w->f.v.s = NULL;
    } else {
      w->f = TRAIL_STR(w->key, fz_strndup(s, n));
    }
    break;
  case 2:
    w->f = TRAIL_INT(w->key, (int64_t)pick_u64(in));
    break;
  case 3:
    w->f = TRAIL_UINT(w->key, pick_u64(in));
    break;
  case 4: {
    uint64_t bits = pick_u64(in);
    double d;
    memcpy(&d, &bits, sizeof d);
    w->f = TRAIL_DOUBLE(w->key, d);
    break;
  }
  case 5:
    w->f = TRAIL_BOOL(w->key, fz_u8(in));
    break;
  case 6:
    w->json = kind & 0x80 ? NULL : fz_build_json(in, 0);
    w->f = TRAIL_JSON(w->key, w->json);
    break;
  default:
    w->f = TRAIL_INT(w->key, 7);
    w->f.kind = (trail_field_kind)(kind >> 3);
    if (w->f.kind >= TRAIL_FIELD_STR && w->f.kind <= TRAIL_FIELD_JSON)
      w->f.kind = (trail_field_kind)99;
    break;
  }
  w->f.key = w->key;
}

/* ---- comparing values ---------------------------------------------------- */

/*
 * The value of one field, whole, as docs/log-format.md says it is written;
 * under a sensitive key (include/trail.h, trail_redact_set) "[REDACTED]".
 */
static int value_same(const trail_field *f, json_t *got) {
  const char *key = f->key ? f->key : "_";
  if (fz_redacted(key, strlen(key)))
    return json_is_string(got) &&
           strcmp(json_string_value(got), "[REDACTED]") == 0;
  switch (f->kind) {
  case TRAIL_FIELD_STR:
    if (f->v.s == NULL)
      return json_is_null(got);
    return fz_string_is(got, (const uint8_t *)f->v.s,
                        f->len == TRAIL_NTS ? strlen(f->v.s) : f->len);
  case TRAIL_FIELD_INT:
    if (json_is_integer(got))
      return json_integer_value(got) == f->v.i;
    return fz_number_is(got, (double)f->v.i);
  case TRAIL_FIELD_UINT:
    if (json_is_integer(got))
      return f->v.u <= INT64_MAX && (uint64_t)json_integer_value(got) == f->v.u;
    return fz_number_is(got, (double)f->v.u);
  case TRAIL_FIELD_DOUBLE:
    if (isnan(f->v.d))
      return json_is_string(got) && strcmp(json_string_value(got), "NaN") == 0;
    if (isinf(f->v.d))
      return json_is_string(got) &&
             strcmp(json_string_value(got), f->v.d > 0 ? "+Inf" : "-Inf") == 0;
    return fz_number_is(got, f->v.d);
  case TRAIL_FIELD_BOOL:
    return f->v.b ? json_is_true(got) : json_is_false(got);
  case TRAIL_FIELD_JSON:
    return fz_json_same((json_t *)f->v.j, got, 0);
  default:
    return json_is_string(got) &&
           strcmp(json_string_value(got), "[invalid field kind]") == 0;
  }
}

/* ---- the rename rule ----------------------------------------------------- */

static int reserved(const char *k, size_t n) {
  static const char *const keys[] = {
      "timestamp", "level",    "logger",  "message", "service",  "request_id",
      "user_id",   "trace_id", "span_id", "caller",  "truncated"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strlen(keys[i]) == n && memcmp(keys[i], k, n) == 0)
      return 1;
  return 0;
}

/*
 * The key the rule of docs/log-format.md gives the field: its text as read
 * back (invalid UTF-8 replaced), "_" for NULL, with "_" prepended while it
 * is reserved or already taken by an earlier field. Returns a malloc'd
 * string of *len bytes; the caller adds it to taken.
 */
static char *expected_key(const char *key, char **taken, size_t *taken_len,
                          size_t ntaken, size_t *len) {
  const char *k = key ? key : "_";
  size_t kn = strlen(k), extra = 0;
  char *fixed = malloc(3 * kn + 1);
  FZ_CHECK(fixed != NULL, "out of memory");
  size_t fl = fz_utf8_fix((const uint8_t *)k, kn, fixed);
  char *out = malloc(fl + MAX_FIELDS + 2 * MAX_BOUND + 16);
  FZ_CHECK(out != NULL, "out of memory");
  for (;;) {
    memset(out, '_', extra);
    memcpy(out + extra, fixed, fl);
    size_t n = extra + fl;
    int hit = reserved(out, n);
    for (size_t i = 0; !hit && i < ntaken; i++)
      hit = taken_len[i] == n && memcmp(taken[i], out, n) == 0;
    if (!hit) {
      free(fixed);
      *len = n;
      return out;
    }
    extra++;
  }
}

/* ---- one input ----------------------------------------------------------- */

typedef struct call {
  size_t max_line;
  int caller_on;
  int how; /* 0 trail__log, 1 trail__logf, 2 trail_log, 3 trail_ctx_log */
  trail_level level;
  trail_logger *base;  /* the registry logger */
  trail_logger *child; /* NULL, or a child of base with bound fields */
  const char *file;
  int line;
  const uint8_t *msg;
  size_t msg_len;
  int use_ctx;
  int want_child;
  trail_ctx ctx;
  int ctx_bound; /* ctx_fields were bound */
  want_field child_fields[MAX_BOUND], ctx_fields[MAX_BOUND], fields[MAX_FIELDS];
  size_t nchild, nctx, nfields;
} call;

/* The registry logger the input names; valid raw names are cut to 2 bytes
 * so that the registry, which never frees, stays small. */
static trail_logger *pick_logger(fz_in *in) {
  uint8_t sel = fz_u8(in);
  if (sel < NAME_TABLE_N)
    return trail_logger_get(name_table[sel]);
  const uint8_t *s;
  size_t n = fz_slice8(in, &s);
  if (trail__name_valid((const char *)s, n) && n > 2)
    n = 2;
  return trail_logger_get(fz_strndup(s, n));
}

/* Sets one context id from the input: leave, clear (NULL) or bytes. */
static void set_id(fz_in *in, trail_ctx *ctx,
                   int (*set)(trail_ctx *, const char *)) {
  const uint8_t *s;
  uint8_t sel = fz_u8(in);
  if (sel % 3 == 0)
    return;
  if (sel % 3 == 1) {
    FZ_CHECK(set(ctx, NULL) == 0, "clearing an id failed");
    return;
  }
  size_t n = fz_slice8(in, &s);
  char copy[sizeof ctx->ids_];
  memcpy(copy, ctx->ids_, sizeof copy);
  uint16_t copy_len = ctx->ids_len_;
  if (set(ctx, fz_strndup(s, n)) != 0)
    FZ_CHECK(ctx->ids_len_ == copy_len &&
                 memcmp(copy, ctx->ids_, copy_len) == 0,
             "a rejected id changed the context");
}

static void decode(fz_in *in, call *c) {
  uint8_t flags = fz_u8(in);
  c->caller_on = flags & 1;
  c->how = (flags >> 1) & 3;
  c->use_ctx = (flags >> 3) & 1;
  c->want_child = (flags >> 4) & 1;
  int file_from_input = (flags >> 5) & 1;
  c->max_line = 2048 + fz_u16(in) % (65536 - 2048 + 1);
  c->level = (trail_level)(int8_t)fz_u8(in);
  c->base = pick_logger(in);
  c->msg_len = fz_slice16(in, 70000, &c->msg);
  c->file = "src/orders/handler.c";
  c->line = (int)fz_u32(in);
  if (file_from_input) {
    const uint8_t *s;
    size_t n = fz_slice8(in, &s);
    c->file = fz_strndup(s, n);
  }

  if (c->use_ctx) {
    uint8_t mode = fz_u8(in);
    if (mode & 1)
      trail_ctx_init(&c->ctx);
    else
      trail_ctx_clear(&c->ctx);
    set_id(in, &c->ctx, trail_ctx_set_request_id);
    set_id(in, &c->ctx, trail_ctx_set_user_id);
    set_id(in, &c->ctx, trail_ctx_set_trace_id);
    set_id(in, &c->ctx, trail_ctx_set_span_id);
    c->nctx = fz_u8(in) % (MAX_BOUND + 1);
    for (size_t i = 0; i < c->nctx; i++)
      decode_field(in, &c->ctx_fields[i]);
  }
  if (c->want_child) {
    c->nchild = fz_u8(in) % (MAX_BOUND + 1);
    for (size_t i = 0; i < c->nchild; i++)
      decode_field(in, &c->child_fields[i]);
  }
  c->nfields = fz_u8(in) % (MAX_FIELDS + 1);
  for (size_t i = 0; i < c->nfields; i++)
    decode_field(in, &c->fields[i]);
}

/* The context's bound fields and the child's, made once the maximum is set. */
static void bind(call *c) {
  if (c->use_ctx && c->nctx > 0) {
    trail_field f[MAX_BOUND];
    for (size_t i = 0; i < c->nctx; i++)
      f[i] = c->ctx_fields[i].f;
    uint16_t before = c->ctx.fields_len_;
    int rc = trail_ctx_add_fields(&c->ctx, f, c->nctx);
    FZ_CHECK(rc == 0 || rc == TRAIL_ENOSPACE, "trail_ctx_add_fields: %d", rc);
    FZ_CHECK(rc == 0 || c->ctx.fields_len_ == before,
             "a failed trail_ctx_add_fields changed the context");
    c->ctx_bound = rc == 0;
  }
  if (c->want_child) {
    trail_field f[MAX_BOUND];
    for (size_t i = 0; i < c->nchild; i++)
      f[i] = c->child_fields[i].f;
    c->child = trail_logger_with(c->base, f, c->nchild);
    FZ_CHECK(c->child != NULL, "trail_logger_with failed");
  }
}

/* Makes the call the input chose. */
static void log_it(call *c) {
  trail_logger *lg = c->child ? c->child : c->base;
  trail_field f[MAX_FIELDS];
  for (size_t i = 0; i < c->nfields; i++)
    f[i] = c->fields[i].f;
  char *msg = fz_strndup(c->msg, c->msg_len);
  trail_ctx *prev = NULL;
  if (c->use_ctx && c->how != 3)
    prev = trail_ctx_enter(&c->ctx);
  switch (c->how) {
  case 0:
    trail__log(lg, c->level, c->file, c->line, msg, f, c->nfields);
    break;
  case 1:
    trail__logf(lg, c->level, c->file, c->line, "%.*s", (int)c->msg_len,
                (const char *)c->msg);
    break;
  case 2:
    trail_log(lg, c->level, msg, f, c->nfields);
    break;
  default:
    trail_ctx_log(c->use_ctx ? &c->ctx : NULL, lg, c->level, msg, f,
                  c->nfields);
    break;
  }
  if (c->use_ctx && c->how != 3)
    trail_ctx_leave(prev);
  FZ_CHECK(trail_ctx_current() == NULL, "the current context was not restored");
}

/* The context keys: present exactly when set, holding the context's ids. */
static void check_ids(const call *c, json_t *root) {
  static const char *const keys[] = {"request_id", "user_id", "trace_id",
                                     "span_id"};
  const char *vals[4] = {"", "", "", ""};
  if (c->use_ctx) {
    vals[0] = trail_ctx_request_id(&c->ctx);
    vals[1] = trail_ctx_user_id(&c->ctx);
    vals[2] = trail_ctx_trace_id(&c->ctx);
    vals[3] = trail_ctx_span_id(&c->ctx);
  }
  for (size_t i = 0; i < 4; i++) {
    json_t *v = json_object_get(root, keys[i]);
    if (vals[i][0] == '\0') {
      FZ_CHECK(v == NULL, "%s in the line but not in the context", keys[i]);
      continue;
    }
    FZ_CHECK(v != NULL, "%s missing from the line", keys[i]);
    FZ_CHECK(fz_string_is(v, (const uint8_t *)vals[i], strlen(vals[i])),
             "%s is not the context's", keys[i]);
  }
}

/* caller: "base.c:42" when on and the call passed a call site. */
static void check_caller(const call *c, json_t *root) {
  json_t *v = json_object_get(root, "caller");
  if (!c->caller_on || c->how >= 2) {
    FZ_CHECK(v == NULL, "caller written when off or without a call site");
    return;
  }
  const char *base = strrchr(c->file, '/');
  base = base ? base + 1 : c->file;
  char text[200];
  int n = snprintf(text, sizeof text, "%.128s:%d", base, c->line);
  FZ_CHECK(v != NULL, "caller missing");
  FZ_CHECK(fz_string_is(v, (const uint8_t *)text, (size_t)n),
           "caller is not \"%s\"", text);
}

/*
 * The message: what trail was given (up to its first NUL; for the f path
 * the formatted text) read back whole, or a prefix of it in a truncated
 * line.
 */
static void check_message(const call *c, const fz_parsed *p) {
  json_t *v = json_object_get(p->root, "message");
  size_t n = strnlen((const char *)c->msg, c->msg_len);
  char *fixed = malloc(3 * n + 1);
  FZ_CHECK(fixed != NULL, "out of memory");
  size_t fl = fz_utf8_fix(c->msg, n, fixed);
  const char *got = json_string_value(v);
  size_t gl = json_string_length(v);
  if (p->truncated)
    FZ_CHECK(fz_has_prefix(fixed, fl, got, gl),
             "message is not a prefix of the one passed");
  else
    FZ_CHECK(gl == fl && memcmp(got, fixed, fl) == 0,
             "message is not the one passed (%zu bytes, want %zu)", gl, fl);
  free(fixed);
}

/*
 * The fields of a line that was not truncated: every one present, in the
 * line order (logger's, context's, event's), each under the key the rename
 * rule gives it and holding its value.
 */
static void check_fields(const call *c, const fz_parsed *p) {
  const want_field *all[3 * MAX_FIELDS];
  size_t nall = 0;
  size_t nchild = c->child ? c->child->nkeys : 0;
  for (size_t i = 0; i < nchild; i++)
    all[nall++] = &c->child_fields[i];
  if (c->ctx_bound)
    for (size_t i = 0; i < c->nctx; i++)
      all[nall++] = &c->ctx_fields[i];
  if (c->how != 1)
    for (size_t i = 0; i < c->nfields; i++)
      all[nall++] = &c->fields[i];

  FZ_CHECK(p->nkeys - p->first_free == nall,
           "%zu fields in a line that was not truncated, %zu passed",
           p->nkeys - p->first_free, nall);
  char *taken[3 * MAX_FIELDS];
  size_t taken_len[3 * MAX_FIELDS];
  for (size_t i = 0; i < nall; i++) {
    size_t klen, wl;
    json_t *v;
    const char *k = fz_key_at(p->root, p->first_free + i, &klen, &v);
    taken[i] = expected_key(all[i]->key, taken, taken_len, i, &wl);
    taken_len[i] = wl;
    FZ_CHECK(klen == wl && memcmp(k, taken[i], wl) == 0,
             "field %zu has key \"%s\", the rename rule gives \"%.*s\"", i, k,
             (int)wl, taken[i]);
    if (!value_same(&all[i]->f, v)) {
      char *got = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
      char *want =
          all[i]->f.kind == TRAIL_FIELD_JSON && all[i]->f.v.j
              ? json_dumps(all[i]->f.v.j, JSON_ENCODE_ANY | JSON_COMPACT)
              : NULL;
      FZ_FAIL("field %zu (\"%s\", kind %d) does not hold the value passed: "
              "got %.500s, passed %.500s",
              i, k, (int)all[i]->f.kind, got ? got : "?",
              want ? want : "(not JSON)");
    }
  }
  for (size_t i = 0; i < nall; i++)
    free(taken[i]);
}

static void release(call *c) {
  trail_logger_free(c->child);
  for (size_t i = 0; i < MAX_BOUND; i++) {
    json_decref(c->child_fields[i].json);
    json_decref(c->ctx_fields[i].json);
  }
  for (size_t i = 0; i < MAX_FIELDS; i++)
    json_decref(c->fields[i].json);
  fz_arena_free();
  fz_capture_reset();
}

/*
 * One input: decode, set the maximum and caller, bind, log once, and check
 * the one line that must come out, and the truncated counter with it.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init();
  fz_in in = {data, size};
  call *c = calloc(1, sizeof *c);
  FZ_CHECK(c != NULL, "out of memory");
  decode(&in, c);
  FZ_CHECK(trail_max_line_set(c->max_line) == 0, "max line %zu", c->max_line);
  trail_caller_set(c->caller_on);
  bind(c);

  trail_counters before, after;
  trail_counters_get(&before);
  log_it(c);
  trail_counters_get(&after);

  FZ_CHECK(fz_nlines == 1, "%zu lines for one call", fz_nlines);
  const fz_line *l = &fz_lines[0];
  fz_parsed p;
  fz_check_line(l->text, l->len, c->max_line, &p);

  const char *want_logger = trail_logger_name(c->base);
  const char *got_logger = json_string_value(json_object_get(p.root, "logger"));
  FZ_CHECK(strcmp(got_logger, want_logger) == 0, "logger %s, want %s",
           got_logger, want_logger);
  FZ_CHECK(strcmp(json_string_value(json_object_get(p.root, "service")),
                  "fuzz") == 0,
           "service is not fuzz");
  trail_level lv = (int)c->level < 0                   ? TRAIL_LEVEL_TRACE
                   : (int)c->level > TRAIL_LEVEL_FATAL ? TRAIL_LEVEL_FATAL
                                                       : c->level;
  FZ_CHECK(strcmp(json_string_value(json_object_get(p.root, "level")),
                  trail_level_name(lv)) == 0,
           "level is not %s", trail_level_name(lv));
  FZ_CHECK(l->level == lv, "the sink got level %d, want %d", (int)l->level,
           (int)lv);
  FZ_CHECK(after.truncated - before.truncated == (uint64_t)p.truncated,
           "truncated counter moved by %llu for a line with truncated=%d",
           (unsigned long long)(after.truncated - before.truncated),
           p.truncated);

  check_ids(c, p.root);
  check_caller(c, p.root);
  check_message(c, &p);
  if (!p.truncated)
    check_fields(c, &p);

  json_decref(p.root);
  release(c);
  free(c);
  return 0;
}

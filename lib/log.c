/*
 * The logging call: assembles one line in the contract's key order into a
 * per-thread buffer and hands it to the sinks. Nothing is allocated per
 * event; a thread's buffers are made on its first event and grown only when
 * the maximum line length or the number of fields grows.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "contract.h"
#include "internal.h"

typedef struct tls_state {
  char *buf; /* the line */
  size_t buf_cap;
  trail__key *keys; /* keys of the line, for the rename rule */
  size_t keys_cap;
  char *fmt; /* the message of the f variants */
  size_t fmt_cap;
  int registered;
} tls_state;

static TRAIL__TLS tls_state tls;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void *p) {
  tls_state *t = p;
  free(t->buf);
  free(t->keys);
  free(t->fmt);
  memset(t, 0, sizeof *t);
}

static void tls_key_make(void) { pthread_key_create(&tls_key, tls_free); }

/* Grows a thread's buffers; the key's destructor frees them at its exit. */
static int tls_reserve(size_t buf_need, size_t keys_need) {
  if (!tls.registered) {
    pthread_once(&tls_once, tls_key_make);
    pthread_setspecific(tls_key, &tls);
    tls.registered = 1;
  }
  if (tls.buf_cap < buf_need) {
    char *p = realloc(tls.buf, buf_need);
    if (p == NULL)
      return -1;
    tls.buf = p;
    tls.buf_cap = buf_need;
  }
  if (tls.keys_cap < keys_need) {
    size_t n = keys_need < 64 ? 64 : keys_need;
    trail__key *k = realloc(tls.keys, n * sizeof *k);
    if (k == NULL)
      return -1;
    tls.keys = k;
    tls.keys_cap = n;
  }
  return 0;
}

#define LEVEL_SEG(name)                                                        \
  {                                                                            \
    TRAIL__SEG_STR(TRAIL__K_LEVEL)                                             \
    name "\"", TRAIL__LIT_LEN(TRAIL__SEG_STR(TRAIL__K_LEVEL) name "\"")        \
  }
static const struct {
  const char *s;
  size_t n;
} level_seg[] = {
    LEVEL_SEG("trace"), LEVEL_SEG("debug"), LEVEL_SEG("info"),
    LEVEL_SEG("warn"),  LEVEL_SEG("error"), LEVEL_SEG("fatal"),
};

/* "file.c:42": the base name, so lines do not carry build paths. */
static size_t caller_text(char *out, size_t size, const char *file, int line) {
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  int n = snprintf(out, size, "%.128s:%d", base, line);
  return n < 0 ? 0 : (size_t)n >= size ? size - 1 : (size_t)n;
}

/*
 * Copies a pre-encoded run of bound fields. When it was encoded under the
 * redaction list in force (gen), fits whole and nothing before it could
 * collide, it is one memcpy; otherwise field by field with the rename rule,
 * and under another list with each value checked against c's.
 */
static void copy_bound(trail__buf *b, trail__keyset *ks, const trail__conf *c,
                       uint32_t gen, const char *seg, size_t seg_len,
                       const trail__key *keys, size_t nkeys) {
  if (nkeys == 0)
    return;
  if (__builtin_expect(gen != c->redact_gen, 0)) {
    trail__copy_fields(b, ks, seg, seg_len, keys, nkeys, c);
    return;
  }
  if (ks->n == 0 && b->len + seg_len <= b->limit) {
    size_t base = b->len;
    trail__buf_put_unchecked(b, seg, seg_len);
    for (size_t i = 0; i < nkeys; i++) {
      ks->keys[ks->n].off = (uint32_t)(base + keys[i].off);
      ks->keys[ks->n].len = keys[i].len;
      ks->n++;
    }
    return;
  }
  trail__copy_fields(b, ks, seg, seg_len, keys, nkeys, NULL);
}

/*
 * Hands a finished line to the sinks. The common case, one descriptor sink
 * that needs no lock or guard, is a write(2) right here: on this CPU family
 * the kernel's return-stack protections make every return after a system
 * call a mispredicted one, so each call level between the logging call and
 * write(2) costs time on every line.
 */
static inline void write_line(const trail__conf *c, trail_level level,
                              const char *line, size_t len) {
  trail__reopen_check(); /* trail_reopen_on_signal() */
  if (__builtin_expect(TRAIL__LOAD_RELAXED(&trail__crash_tid) != 0, 0))
    trail__crash_park_others(); /* no line after the fatal line */
  trail__sink *s = c->nsinks == 1 ? c->sinks[0] : NULL;
  if (s != NULL && s->fast_fd >= 0 &&
      !__atomic_load_n(&s->given_up, __ATOMIC_RELAXED)) {
    if ((int)level < s->min)
      return;
    ssize_t r = write(s->fast_fd, line, len);
    if (r != (ssize_t)len)
      trail__sink_write_rest(s, line, len, r);
    return;
  }
  trail__sinks_write(c, level, line, len);
}

/*
 * The line's fixed head: timestamp, level, logger and the message's key;
 * at most ~220 bytes, always within the minimum line.
 */
__attribute__((always_inline)) static inline void
put_head(trail__buf *b, const trail__event *ev) {
  char ts[TRAIL__TIMESTAMP_LEN];
  trail__timestamp_at(ts, ev->sec, ev->usec);
#define TS_SEG TRAIL__FIRST_SEG(TRAIL__K_TIMESTAMP) "\""
  trail__buf_put_unchecked(b, TS_SEG, TRAIL__LIT_LEN(TS_SEG));
  trail__buf_put_unchecked(b, ts, sizeof ts);
  trail__buf_put_unchecked(b, "\"", 1);
  trail__buf_put_unchecked(b, level_seg[ev->level].s, level_seg[ev->level].n);
  trail__buf_put_unchecked(b, ev->name_seg, ev->name_seg_len);
  trail__buf_put_unchecked(b, TRAIL__SEG(TRAIL__K_MESSAGE),
                           TRAIL__LIT_LEN(TRAIL__SEG(TRAIL__K_MESSAGE)));
}

/*
 * The message, then the service, the request's ids and the caller. The
 * message may be cut, but never at the expense of the keys after it, nor of
 * the process fields: their room is reserved first.
 */
__attribute__((always_inline)) static inline void
put_message_and_ids(trail__buf *b, const trail__conf *c,
                    const trail__event *ev) {
  size_t after = c->service_seg_len + ev->ids_len +
                 (ev->caller_len ? 12 + 6 * ev->caller_len : 0) +
                 (ev->pf ? ev->pf->len : 0);
  size_t limit = b->limit;
  b->limit = limit > b->len + after + 2 ? limit - after : b->len + 2;
  trail__put_string(b, ev->msg, ev->msg_len);
  b->limit = limit;

  trail__buf_put(b, c->service_seg, c->service_seg_len);
  if (ev->ids_len)
    trail__buf_put(b, ev->ids, ev->ids_len);
  if (ev->caller_len) {
    size_t at = b->len;
    if (trail__buf_put(b, TRAIL__SEG(TRAIL__K_CALLER),
                       TRAIL__LIT_LEN(TRAIL__SEG(TRAIL__K_CALLER))) != 0 ||
        trail__put_string(b, ev->caller, ev->caller_len) != 0)
      b->len = at;
  }
}

/*
 * The line of one event, in the contract's key order. Inlined into emit()
 * (the sync hot path) and behind trail__event_encode() for the async
 * writer, so both spell every line the same way.
 */
__attribute__((always_inline)) static inline size_t
encode_event(trail__buf *b, trail__key *keys, size_t keys_cap,
             const trail__conf *c, const trail__event *ev) {
  put_head(b, ev);
  put_message_and_ids(b, c, ev);
  trail__keyset ks = {.keys = keys, .n = 0, .cap = keys_cap};
  if (ev->pf != NULL)
    copy_bound(b, &ks, c, ev->pf->redact_gen, ev->pf->seg, ev->pf->len,
               ev->pf->keys, ev->pf->nkeys);
  copy_bound(b, &ks, c, ev->lgen, ev->lfields, ev->lfields_len, ev->lkeys,
             ev->lnkeys);
  if (ev->lfields_cut)
    b->truncated = 1;
  copy_bound(b, &ks, c, ev->cgen, ev->cfields, ev->cfields_len, ev->ckeys,
             ev->cnkeys);
  for (size_t i = 0; i < ev->nfields; i++)
    trail__put_field(b, &ks, &ev->fields[i]);

  if (ev->buffered)
    trail__buf_put_unchecked(
        b, TRAIL__SEG(TRAIL__K_BUFFERED) "true",
        TRAIL__LIT_LEN(TRAIL__SEG(TRAIL__K_BUFFERED) "true"));
  if (b->truncated)
    trail__buf_put_unchecked(
        b, TRAIL__SEG(TRAIL__K_TRUNCATED) "true",
        TRAIL__LIT_LEN(TRAIL__SEG(TRAIL__K_TRUNCATED) "true"));
  trail__buf_put_unchecked(b, "}\n", 2);
  return b->len;
}

size_t trail__event_encode(trail__buf *b, trail__key *keys, size_t keys_cap,
                           const trail__conf *c, const trail__event *ev) {
  return encode_event(b, keys, keys_cap, c, ev);
}

/*
 * Queues ev as it is for the writer to encode, when the writer runs and
 * keeps up: 1 when done with it (queued, or dropped and counted), 0 when
 * the caller encodes the line itself. Only in async mode does ev leave
 * emit()'s frame, so in sync mode the compiler keeps its members in
 * registers.
 */
__attribute__((always_inline)) static inline int
queued_as_event(trail__event *ev, int direct) {
  if (direct || !TRAIL__LOAD_RELAXED(&trail__async_on))
    return 0;
  int r = trail__async_push_event(ev);
  if (r == TRAIL__ASYNC_QUEUED)
    trail__count_queued(ev->level);
  return r != TRAIL__ASYNC_OFF;
}

/* Encodes ev (stamped) into the thread's line buffer; its length. */
__attribute__((always_inline)) static inline size_t
encode_tls(const trail__conf *c, const trail__event *ev, size_t max) {
  trail__buf b = {.data = tls.buf,
                  .len = 0,
                  .limit = max - TRAIL__TAIL_RESERVE,
                  .truncated = ev->cut};
  encode_event(&b, tls.keys, tls.keys_cap, c, ev);
  if (b.truncated)
    trail__count_truncated();
  return b.len;
}

/* A finished line to the queue, or to the sinks when there is none (or
 * direct: the writer's own lines), counted. */
__attribute__((always_inline)) static inline void
deliver(const trail__conf *c, trail_level level, const char *line, size_t len,
        int direct) {
  int r = direct || !TRAIL__LOAD_RELAXED(&trail__async_on)
              ? TRAIL__ASYNC_OFF
              : trail__async_push(level, line, len);
  if (r != TRAIL__ASYNC_DROPPED)
    trail__count_event(level, len);
  if (r == TRAIL__ASYNC_OFF)
    write_line(c, level, line, len);
}

/*
 * Stamps, encodes and writes ev on the calling thread: sync mode, or an
 * async caller whose event could not be queued as it is (the line itself
 * is then queued, or written when the writer stops).
 */
__attribute__((always_inline)) static inline void
encode_and_write(const trail__conf *c, trail__event *ev, size_t max,
                 int direct) {
  trail__now(&ev->sec, &ev->usec);
  size_t len = encode_tls(c, ev, max);
  deliver(c, ev->level, tls.buf, len, direct);
}

/* ---- request buffering: what goes into a ring and what comes out -------- */

size_t trail__buffer_record_line(const trail__conf *c, const char *data,
                                 size_t len, char *out, size_t max) {
  trail__event ev;
  trail_field fields[TRAIL__RECORD_KEYS_MAX];
  trail__key keys[TRAIL__EVENT_KEYS];
  if (trail__record_read(data, len, &ev, fields) != 0)
    return 0;
  ev.buffered = 1;
  trail__buf b = {.data = out,
                  .len = 0,
                  .limit = max - TRAIL__TAIL_RESERVE,
                  .truncated = ev.cut};
  size_t n = encode_event(&b, keys, TRAIL__EVENT_KEYS, c, &ev);
  if (b.truncated)
    trail__count_truncated();
  return n;
}

typedef struct flush_arg {
  const trail__conf *c;
  size_t max;
  trail_ctx *ctx;
} flush_arg;

static void emit_call(trail_logger *lg, trail_level level, const char *file,
                      int line, const char *msg, size_t msg_len,
                      const trail_field *fields, size_t nfields, int cut,
                      int direct, int below);

/* The report of the lines a full ring dropped, with the request's ids. */
static void report_buffer_dropped(trail_ctx *ctx, uint64_t n) {
  trail_field f[] = {TRAIL_UINT("buffer_dropped", n)};
  trail_ctx *prev = trail_ctx_enter(ctx);
  emit_call(trail_logger_get("trail"), TRAIL_LEVEL_WARN, NULL, 0,
            "buffered lines dropped: the request's buffer was full", TRAIL_NTS,
            f, 1, 0, 0, 0);
  trail_ctx_leave(prev);
}

/* One entry of a failed request's ring, written marked "buffered". */
static void flush_entry(void *arg, int kind, trail_level level,
                        const char *data, size_t len) {
  flush_arg *fa = arg;
  if (kind == TRAIL__BUF_DROPPED) {
    report_buffer_dropped(fa->ctx, len);
    return;
  }
  if (kind == TRAIL__BUF_LINE) {
    deliver(fa->c, level, data, len, 0);
    return;
  }
  if (tls_reserve(fa->max + TRAIL__BUF_SLACK, 0)) {
    trail__count_dropped();
    return;
  }
  size_t n = trail__buffer_record_line(fa->c, data, len, tls.buf, fa->max);
  if (n > 0)
    deliver(fa->c, level, tls.buf, n, 0);
}

__attribute__((noinline)) static void flush(trail_ctx *ctx) {
  flush_arg fa = {.c = trail__conf_get(), .max = trail_max_line(), .ctx = ctx};
  trail__buffer_drain(ctx, flush_entry, &fa);
}

TRAIL_API void trail_ctx_buffer_flush(trail_ctx *ctx) {
  if (trail__buffer_active(ctx))
    flush(ctx);
}

/*
 * Keeps ev, a line below its logger's level, in its request's ring: as a
 * record (its parts copied, stamped now), or as its finished line when it
 * cannot be recorded. Returns 0 when it is to be written now instead (the
 * request failed), 1 when kept or dropped.
 */
__attribute__((noinline)) static int keep(const trail__conf *c, trail_ctx *ctx,
                                          trail__event *ev, size_t max) {
  int mode = trail__buffer_mode(ctx, ev->level);
  if (mode != TRAIL__BUF_KEEP)
    return mode == TRAIL__BUF_DROP;
  trail__now(&ev->sec, &ev->usec);
  uint32_t slen[TRAIL__RECORD_KEYS_MAX];
  size_t len = trail__record_size(ev, slen);
  char *dst;
  if (len > 0) {
    mode = trail__buffer_reserve(ctx, len, TRAIL__BUF_RECORD, ev->level, &dst);
    if (mode == TRAIL__BUF_KEEP)
      trail__record_write(dst, ev, slen);
  } else {
    ev->buffered = 1;
    len = encode_tls(c, ev, max);
    mode = trail__buffer_reserve(ctx, len, TRAIL__BUF_LINE, ev->level, &dst);
    if (mode == TRAIL__BUF_KEEP)
      memcpy(dst, tls.buf, len);
  }
  if (mode == TRAIL__BUF_KEEP)
    trail__buffer_commit(ctx);
  return mode != TRAIL__BUF_THROUGH;
}

/*
 * Where a made event goes: below its logger's level, into its request's
 * buffer (or written marked, once the request failed); otherwise queued as
 * it is, or encoded and written, after what its request buffered when it
 * is an error.
 */
__attribute__((always_inline)) static inline void
dispatch(const trail__conf *c, trail_ctx *ctx, trail__event *ev, size_t max,
         int direct, int below) {
  if (below) {
    if (keep(c, ctx, ev, max))
      return;
    ev->buffered = 1;
    encode_and_write(c, ev, max, direct);
    return;
  }
  if (ev->level >= TRAIL_LEVEL_ERROR && trail__buffer_active(ctx))
    flush(ctx); /* what led up to an error comes before it */
  if (!queued_as_event(ev, direct))
    encode_and_write(c, ev, max, direct);
}

/*
 * One event: made into a line here and written or queued, or, when the
 * async writer runs and keeps up, copied as it is into the queue for the
 * writer to encode (the caller then pays for copies, not for encoding).
 * Inlined into trail__log(), the call behind the logging macros, for the
 * same reason as write_line(); the other callers go through emit_call().
 */
__attribute__((always_inline)) static inline void
emit(trail_logger *lg, trail_level level, const char *file, int line,
     const char *msg, size_t msg_len, const trail_field *fields, size_t nfields,
     int cut, int direct, int below) {
  const trail__conf *c = trail__conf_get();
  if ((int)level < c->min_level)
    return;
  trail_ctx *ctx = trail__ctx_current();
  char caller[160];
  size_t caller_len = 0;
  if (file != NULL && __atomic_load_n(&trail__caller_on, __ATOMIC_RELAXED))
    caller_len = caller_text(caller, sizeof caller, file, line);
  trail__key ck[TRAIL_CTX_FIELDS_MAX];
  size_t cnkeys = 0;
  if (ctx != NULL && ctx->nfields_ > 0)
    cnkeys = trail__ctx_keys(ctx, ck, TRAIL_CTX_FIELDS_MAX);
  /* Made on the first event, queued or not; room for any process fields. */
  size_t max = trail_max_line();
  if (tls_reserve(max + TRAIL__BUF_SLACK,
                  TRAIL__PFIELDS_MAX + lg->nkeys + cnkeys + nfields + 1)) {
    trail__count_dropped();
    return;
  }
  msg = msg ? msg : "";
  trail__event ev = {
      .level = level,
      .cut = cut,
      .lfields_cut = lg->fields_cut,
      .name_seg = lg->name_seg,
      .name_seg_len = lg->name_seg_len,
      .ids = ctx ? ctx->ids_ : NULL,
      .ids_len = ctx ? ctx->ids_len_ : 0,
      .caller = caller,
      .caller_len = caller_len,
      .lfields = lg->fields,
      .lfields_len = lg->fields_len,
      .lkeys = lg->keys,
      .lnkeys = lg->nkeys,
      .lgen = lg->redact_gen,
      .cgen = ctx ? ctx->redact_gen_ : 0,
      .cfields = ctx ? ctx->fields_ : NULL,
      .cfields_len = cnkeys ? ctx->fields_len_ : 0,
      .ckeys = ck,
      .cnkeys = cnkeys,
      .msg = msg,
      .msg_len = msg_len == TRAIL_NTS ? strlen(msg) : msg_len,
      .fields = fields,
      .nfields = nfields,
      .pf = c->pfields,
  };
  dispatch(c, ctx, &ev, max, direct, below);
}

__attribute__((noinline)) static void
emit_call(trail_logger *lg, trail_level level, const char *file, int line,
          const char *msg, size_t msg_len, const trail_field *fields,
          size_t nfields, int cut, int direct, int below) {
  emit(lg, level, file, line, msg, msg_len, fields, nfields, cut, direct,
       below);
}

/* The async writer's own lines: straight to the sinks, no context. */
void trail__log_direct(trail_logger *logger, trail_level level, const char *msg,
                       const trail_field *fields, size_t nfields) {
  if (logger == NULL)
    logger = trail__root();
  if (!trail_enabled(logger, level))
    return;
  emit_call(logger, level, NULL, 0, msg, TRAIL_NTS, fields, nfields, 0, 1, 0);
}

/* The report of suppressed events, a line of its own on the same logger. */
/*
 * It is written whatever the logger's level, at warn or at the lowest level
 * any sink takes if that is higher, so that some sink always gets it; and
 * with no request's ids, since it speaks of many events, not of the one
 * whose thread happens to write it.
 */
void trail__sample_report(trail_logger *lg, uint64_t n) {
  trail_field f[] = {TRAIL_UINT("suppressed", n)};
  const trail__conf *c = trail__conf_get();
  if (c->min_level > TRAIL_LEVEL_FATAL)
    return; /* no sink at all: counted in suppressed, nowhere to write */
  trail_level level = c->min_level > TRAIL_LEVEL_WARN
                          ? (trail_level)c->min_level
                          : TRAIL_LEVEL_WARN;
  trail_ctx *prev = trail_ctx_enter(NULL);
  emit_call(lg, level, NULL, 0, "log events suppressed by sampling", TRAIL_NTS,
            f, 1, 0, 0, 0);
  trail_ctx_leave(prev);
}

/*
 * Flood control: the event passes its logger's sampler, and what was held
 * back before it is reported first, so the report precedes the lines that
 * follow the flood.
 */
static int sampled(trail_logger *lg, trail_level level, const char *key) {
  if (!trail__sample(lg, level, key))
    return 0;
  uint64_t n = trail__sample_take(lg);
  if (n > 0)
    trail__sample_report(lg, n);
  return 1;
}

/* Levels outside trace..fatal are a caller's mistake: the nearest is used. */
static trail_level clamp_level(trail_level level) {
  if ((int)level < (int)TRAIL_LEVEL_TRACE)
    return TRAIL_LEVEL_TRACE;
  if ((int)level > (int)TRAIL_LEVEL_FATAL)
    return TRAIL_LEVEL_FATAL;
  return level;
}

/*
 * A line below its logger's own level passes the inline check only while
 * some context buffers (the buffering floor lowers every threshold): it is
 * kept when the current context buffers at its level, and dropped if not,
 * unsampled (sampling thins what is written, and the ring is bounded).
 */
static inline int below_level(const trail_logger *lg, trail_level level) {
  return (int)level < __atomic_load_n(&lg->level, __ATOMIC_RELAXED);
}

/* Whether a line below its logger's level is kept (never for a logger set
 * to off, whose lines nobody wants). */
static int keeps_below(const trail_logger *lg, trail_level level) {
  return __atomic_load_n(&lg->level, __ATOMIC_RELAXED) != TRAIL_LEVEL_OFF &&
         trail__buffer_mode(trail__ctx_current(), level) != TRAIL__BUF_DROP;
}

__attribute__((noinline)) static void
log_below(trail_logger *logger, trail_level level, const char *file, int line,
          const char *msg, const trail_field *fields, size_t nfields) {
  if (keeps_below(logger, level))
    emit(logger, level, file, line, msg, TRAIL_NTS, fields, nfields, 0, 0, 1);
}

/*
 * The call behind trail_info() and the other macros. It checks the level
 * again because it can be called directly, and because the threshold the
 * macro read may predate a configuration change.
 */
TRAIL_API void trail__log(trail_logger *logger, trail_level level,
                          const char *file, int line, const char *msg,
                          const trail_field *fields, size_t nfields) {
  if (logger == NULL)
    logger = trail__root();
  level = clamp_level(level);
  if (!trail_enabled(logger, level))
    return;
  if (nfields > 0 && fields == NULL)
    nfields = 0;
  if (__builtin_expect(below_level(logger, level), 0)) {
    log_below(logger, level, file, line, msg, fields, nfields);
    return;
  }
  if (TRAIL__LOAD_RELAXED(&logger->sampler) != NULL &&
      !sampled(logger, level, msg))
    return;
  emit(logger, level, file, line, msg, TRAIL_NTS, fields, nfields, 0, 0, 0);
}

/* The line carries ctx's ids; the current context is put back after. */
TRAIL_API void trail_ctx_log(trail_ctx *ctx, trail_logger *logger,
                             trail_level level, const char *msg,
                             const trail_field *fields, size_t nfields) {
  trail_ctx *prev = trail_ctx_enter(ctx);
  trail__log(logger, level, NULL, 0, msg, fields, nfields);
  trail_ctx_leave(prev);
}

TRAIL_API void trail_log(trail_logger *logger, trail_level level,
                         const char *msg, const trail_field *fields,
                         size_t nfields) {
  trail__log(logger, level, NULL, 0, msg, fields, nfields);
}

/*
 * Formats into the thread's message buffer, as long as a line may be. A
 * longer message is cut there, at a UTF-8 character boundary, and the line
 * is marked truncated like any other cut line.
 */
TRAIL__PRINTF(5, 0)
static void logv(trail_logger *logger, trail_level level, const char *file,
                 int line, const char *fmt, va_list ap) {
  if (logger == NULL)
    logger = trail__root();
  level = clamp_level(level);
  if (!trail_enabled(logger, level))
    return;
  int below = below_level(logger, level);
  if (below && !keeps_below(logger, level))
    return;
  if (!below && TRAIL__LOAD_RELAXED(&logger->sampler) != NULL &&
      !sampled(logger, level, fmt))
    return;
  size_t max = trail_max_line();
  if (tls.fmt_cap < max) {
    char *p = realloc(tls.fmt, max);
    if (p == NULL) {
      trail__count_dropped();
      return;
    }
    tls.fmt = p;
    tls.fmt_cap = max;
  }
  if (fmt == NULL)
    fmt = "";
  int n = vsnprintf(tls.fmt, tls.fmt_cap, fmt, ap);
  size_t len;
  int cut = 0;
  if (n < 0) {
    memcpy(tls.fmt, "[format error]", 15);
    len = 14;
  } else if ((size_t)n >= tls.fmt_cap) {
    len = tls.fmt_cap - 1;
    /* Back off an incomplete UTF-8 sequence at the cut. */
    size_t k = len;
    while (k > 0 && k > len - 4 &&
           ((unsigned char)tls.fmt[k - 1] & 0xC0) == 0x80)
      k--;
    if (k > 0 && ((unsigned char)tls.fmt[k - 1] & 0x80)) {
      unsigned char lead = (unsigned char)tls.fmt[k - 1];
      size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
      if (len - (k - 1) < want)
        len = k - 1;
    }
    cut = 1;
  } else {
    len = (size_t)n;
  }
  emit_call(logger, level, file, line, tls.fmt, len, NULL, 0, cut, 0, below);
}

TRAIL_API void trail_logv(trail_logger *logger, trail_level level,
                          const char *fmt, va_list ap) {
  logv(logger, level, NULL, 0, fmt, ap);
}

TRAIL_API void trail_logf(trail_logger *logger, trail_level level,
                          const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  logv(logger, level, NULL, 0, fmt, ap);
  va_end(ap);
}

TRAIL_API void trail__logf(trail_logger *logger, trail_level level,
                           const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  logv(logger, level, file, line, fmt, ap);
  va_end(ap);
}

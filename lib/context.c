/*
 * The request context: a caller-allocated value holding a request's ids and
 * bound fields, pre-encoded so that each event only copies bytes, and the
 * thread's current context.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "contract.h"
#include "ids.h"
#include "internal.h"

#define PUT_SEG(b, lit) trail__buf_put(b, lit, TRAIL__LIT_LEN(lit))

static TRAIL__TLS trail_ctx *current;

/*
 * Re-encodes the context keys into ids_ after any id changed. The order is
 * the contract's: request_id, user_id, trace_id, span_id, each left out when
 * unset. Only user_id can need escaping; the others were validated.
 */
static void rebuild_ids(trail_ctx *ctx) {
  char tmp[sizeof ctx->ids_ + TRAIL__BUF_SLACK];
  trail__buf b = {.data = tmp, .len = 0, .limit = sizeof ctx->ids_};
  if (ctx->request_id_[0]) {
    PUT_SEG(&b, TRAIL__SEG_STR(TRAIL__K_REQUEST_ID));
    trail__buf_put(&b, ctx->request_id_, strlen(ctx->request_id_));
    trail__buf_put(&b, "\"", 1);
  }
  if (ctx->user_id_[0]) {
    PUT_SEG(&b, TRAIL__SEG(TRAIL__K_USER_ID));
    trail__put_string(&b, ctx->user_id_, strlen(ctx->user_id_));
  }
  if (ctx->trace_id_[0]) {
    PUT_SEG(&b, TRAIL__SEG_STR(TRAIL__K_TRACE_ID));
    trail__buf_put(&b, ctx->trace_id_, TRAIL_TRACE_ID_LEN);
    trail__buf_put(&b, "\"", 1);
  }
  if (ctx->span_id_[0]) {
    PUT_SEG(&b, TRAIL__SEG_STR(TRAIL__K_SPAN_ID));
    trail__buf_put(&b, ctx->span_id_, TRAIL_SPAN_ID_LEN);
    trail__buf_put(&b, "\"", 1);
  }
  memcpy(ctx->ids_, tmp, b.len);
  ctx->ids_len_ = (uint16_t)b.len;
}

/* An empty context: no ids, no fields. */
TRAIL_API void trail_ctx_clear(trail_ctx *ctx) {
  if (ctx == NULL)
    return;
  memset(ctx, 0, sizeof *ctx);
}

/*
 * Empty as trail_ctx_clear() leaves it, for every reader, without clearing
 * its 3 KiB: each string made empty, each length zero. Nothing reads past a
 * string's NUL, past ids_len_, fields_len_ or nfields_.
 */
void trail__ctx_empty(trail_ctx *ctx) {
  ctx->request_id_[0] = ctx->user_id_[0] = '\0';
  ctx->trace_id_[0] = ctx->span_id_[0] = ctx->parent_span_id_[0] = '\0';
  ctx->tracestate_[0] = '\0';
  ctx->trace_flags_ = ctx->has_parent_ = 0;
  ctx->ids_len_ = ctx->fields_len_ = ctx->nfields_ = 0;
  ctx->redact_gen_ = 0;
  ctx->buffer_ = NULL;
  ctx->buffer_bytes_ = 0;
  ctx->buffer_level_ = ctx->buffer_state_ = 0;
}

/*
 * A new request: a UUID v4 request_id and a new trace with a new span, from
 * one draw of the kernel's random pool. The random sources cannot fail in a
 * way worth reporting (getrandom blocks only before the kernel's pool is
 * seeded; without it the ids stay empty), so this returns nothing.
 */
TRAIL_API void trail_ctx_init(trail_ctx *ctx) {
  if (ctx == NULL)
    return;
  trail__ctx_empty(ctx);
  trail__ids_new(ctx->request_id_, ctx->trace_id_, ctx->span_id_);
  ctx->trace_flags_ = 1; /* sampled: this trace is recorded, in the logs */
  rebuild_ids(ctx);
}

/* Sets (or with NULL clears) the request id after checking it. */
TRAIL_API int trail_ctx_set_request_id(trail_ctx *ctx, const char *id) {
  if (ctx == NULL)
    return -EINVAL;
  if (id == NULL) {
    ctx->request_id_[0] = '\0';
  } else {
    size_t n = strnlen(id, TRAIL_REQUEST_ID_MAX + 1);
    int rc = trail_request_id_check(id, n);
    if (rc != 0)
      return rc;
    memcpy(ctx->request_id_, id, n + 1);
  }
  rebuild_ids(ctx);
  return 0;
}

/*
 * Sets (or with NULL clears) the user id: any bytes up to 128, escaped in the
 * line like any string; an empty id clears it too (the key is never "").
 */
TRAIL_API int trail_ctx_set_user_id(trail_ctx *ctx, const char *id) {
  if (ctx == NULL)
    return -EINVAL;
  if (id == NULL) {
    ctx->user_id_[0] = '\0';
  } else {
    size_t n = strnlen(id, TRAIL_USER_ID_MAX + 1);
    if (n > TRAIL_USER_ID_MAX)
      return TRAIL_ETOOLONG;
    memcpy(ctx->user_id_, id, n + 1);
  }
  rebuild_ids(ctx);
  return 0;
}

static int set_hex(trail_ctx *ctx, char *dst, const char *id, size_t want) {
  if (id == NULL) {
    dst[0] = '\0';
  } else {
    if (!trail__hex_id_valid(id, strnlen(id, want + 1), want))
      return TRAIL_EINVAL_ID;
    memcpy(dst, id, want);
    dst[want] = '\0';
  }
  rebuild_ids(ctx);
  return 0;
}

TRAIL_API int trail_ctx_set_trace_id(trail_ctx *ctx, const char *id) {
  if (ctx == NULL)
    return -EINVAL;
  return set_hex(ctx, ctx->trace_id_, id, TRAIL_TRACE_ID_LEN);
}

TRAIL_API int trail_ctx_set_span_id(trail_ctx *ctx, const char *id) {
  if (ctx == NULL)
    return -EINVAL;
  return set_hex(ctx, ctx->span_id_, id, TRAIL_SPAN_ID_LEN);
}

/*
 * The trace-flags bits W3C Trace Context Level 2, section 3.2.2.5 defines:
 * sampled (01) and random-trace-id (02). The others are reserved, and
 * vendors MUST set them to zero: they are not kept, so never passed on.
 * random stays true of the trace id, which is the caller's, unchanged.
 */
#define KNOWN_TRACE_FLAGS 0x03

/*
 * Joins the caller's trace: its trace id and flags are ours, its span is our
 * parent, and this request is a new span of it (W3C Trace Context, section
 * 3.2; section 3.4 allows updating parent-id, the mutation made here).
 */
TRAIL_API int trail_ctx_set_traceparent(trail_ctx *ctx, const char *value,
                                        size_t len) {
  if (ctx == NULL || value == NULL)
    return -EINVAL;
  trail_traceparent tp;
  int rc = trail_traceparent_parse(value, len, &tp);
  if (rc != 0)
    return rc;
  memcpy(ctx->trace_id_, tp.trace_id, TRAIL_TRACE_ID_LEN + 1);
  memcpy(ctx->parent_span_id_, tp.parent_id, TRAIL_SPAN_ID_LEN + 1);
  ctx->has_parent_ = 1;
  ctx->trace_flags_ = (uint8_t)(tp.flags & KNOWN_TRACE_FLAGS);
  trail_span_id_new(ctx->span_id_, sizeof ctx->span_id_);
  rebuild_ids(ctx);
  return 0;
}

/* The traceparent to send downstream: our trace, our span as the parent. */
TRAIL_API int trail_ctx_traceparent(const trail_ctx *ctx, char *buf,
                                    size_t size) {
  if (ctx == NULL || buf == NULL)
    return -EINVAL;
  if (!ctx->trace_id_[0] || !ctx->span_id_[0])
    return TRAIL_EINVAL_ID;
  trail_traceparent tp;
  tp.version = 0;
  tp.flags = ctx->trace_flags_;
  memcpy(tp.trace_id, ctx->trace_id_, sizeof tp.trace_id);
  memcpy(tp.parent_id, ctx->span_id_, sizeof tp.parent_id);
  return trail_traceparent_format(&tp, buf, size);
}

TRAIL_API const char *trail_ctx_request_id(const trail_ctx *ctx) {
  return ctx ? ctx->request_id_ : "";
}
TRAIL_API const char *trail_ctx_user_id(const trail_ctx *ctx) {
  return ctx ? ctx->user_id_ : "";
}
TRAIL_API const char *trail_ctx_trace_id(const trail_ctx *ctx) {
  return ctx ? ctx->trace_id_ : "";
}
TRAIL_API const char *trail_ctx_span_id(const trail_ctx *ctx) {
  return ctx ? ctx->span_id_ : "";
}
TRAIL_API const char *trail_ctx_parent_span_id(const trail_ctx *ctx) {
  return ctx && ctx->has_parent_ ? ctx->parent_span_id_ : "";
}
TRAIL_API uint8_t trail_ctx_trace_flags(const trail_ctx *ctx) {
  return ctx ? ctx->trace_flags_ : 0;
}

size_t trail__ctx_keys(const trail_ctx *ctx, trail__key *out, size_t max) {
  size_t n = ctx->nfields_ < max ? ctx->nfields_ : max;
  for (size_t i = 0; i < n; i++) {
    out[i].off = ctx->field_key_[i][0];
    out[i].len = ctx->field_key_[i][1];
  }
  return n;
}

/*
 * Starts the new field storage with the fields already bound: a copy, or,
 * when they were encoded under another redaction list, a copy with the
 * current list applied. Returns the generation the copy stands for.
 */
static uint32_t copy_bound(const trail_ctx *ctx, trail__buf *b,
                           trail__keyset *ks) {
  const trail__conf *c = trail__conf_get();
  trail__key old[TRAIL_CTX_FIELDS_MAX];
  size_t n = trail__ctx_keys(ctx, old, TRAIL_CTX_FIELDS_MAX);
  if (n > 0 && ctx->redact_gen_ != c->redact_gen) {
    trail__copy_fields(b, ks, ctx->fields_, ctx->fields_len_, old, n, c);
  } else {
    memcpy(b->data, ctx->fields_, ctx->fields_len_);
    memcpy(ks->keys, old, n * sizeof old[0]);
    b->len = ctx->fields_len_;
    ks->n = n;
  }
  return c->redact_gen;
}

/*
 * Binds fields to the context, all or none: they are encoded into a copy of
 * the context's field storage and copied back only when every one fits
 * whole, so a failed call leaves the context as it was.
 */
TRAIL_API int trail_ctx_add_fields(trail_ctx *ctx, const trail_field *fields,
                                   size_t nfields) {
  if (ctx == NULL || (nfields > 0 && fields == NULL))
    return -EINVAL;
  if (ctx->nfields_ + nfields > TRAIL_CTX_FIELDS_MAX)
    return TRAIL_ENOSPACE;
  char tmp[TRAIL_CTX_FIELDS_SIZE + TRAIL__BUF_SLACK];
  trail__key keys[TRAIL_CTX_FIELDS_MAX];
  trail__buf b = {.data = tmp, .len = 0, .limit = TRAIL_CTX_FIELDS_SIZE};
  trail__keyset ks = {.keys = keys, .n = 0, .cap = TRAIL_CTX_FIELDS_MAX};
  uint32_t gen = copy_bound(ctx, &b, &ks);
  if (b.truncated)
    return TRAIL_ENOSPACE;
  for (size_t i = 0; i < nfields; i++)
    if (trail__put_field(&b, &ks, &fields[i]) != 0 || b.truncated)
      return TRAIL_ENOSPACE;
  memcpy(ctx->fields_, tmp, b.len);
  ctx->fields_len_ = (uint16_t)b.len;
  for (size_t i = 0; i < ks.n; i++) {
    ctx->field_key_[i][0] = (uint16_t)keys[i].off;
    ctx->field_key_[i][1] = (uint16_t)keys[i].len;
  }
  ctx->nfields_ = (uint16_t)ks.n;
  ctx->redact_gen_ = gen;
  return 0;
}

/*
 * Entering returns what was current so that leaving can restore it: nesting
 * works, and an event loop that enters and leaves around each callback never
 * leaves one request's context behind for the next.
 */
TRAIL_API trail_ctx *trail_ctx_enter(trail_ctx *ctx) {
  trail_ctx *prev = current;
  current = ctx;
  return prev;
}

TRAIL_API void trail_ctx_leave(trail_ctx *prev) { current = prev; }

TRAIL_API trail_ctx *trail_ctx_current(void) { return current; }

trail_ctx *trail__ctx_current(void) { return current; }

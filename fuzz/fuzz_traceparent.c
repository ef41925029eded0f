/*
 * Fuzz target: the W3C traceparent parser and formatter.
 *
 * The input is a traceparent value (all of it but the first byte, which
 * picks how it is passed: with its length, or NUL-terminated). Checks:
 *
 * - trail_traceparent_parse() accepts exactly what an independent checker
 *   written here from the W3C Trace Context level 1 text accepts, and
 *   fills the same fields; on rejection the output is untouched;
 * - an accepted value formats back to "00-" + trace-id + parent-id + flags,
 *   which for version 00 is the value itself (white space trimmed), and
 *   that text parses to the same fields;
 * - trail_ctx_set_traceparent() agrees, keeps trace id, parent and the
 *   flags Level 2 defines (sampled, random: section 3.2.2.5 has the others
 *   set to zero), makes a new span, and the context's own traceparent
 *   parses;
 * - formatting into buffers that are too small fails with -ENOSPC and
 *   leaves them alone, and a trail_traceparent struct holding arbitrary
 *   bytes is formatted only when its ids are valid.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* Lowercase hex digit value, or -1 (W3C: HEXDIGLC). */
static int hexlc(uint8_t c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* n HEXDIGLC at p, not all zero when nonzero is set. */
static int hex_field(const uint8_t *p, size_t n, int nonzero) {
  int any = 0;
  for (size_t i = 0; i < n; i++) {
    if (hexlc(p[i]) < 0)
      return 0;
    any |= p[i] != '0';
  }
  return !nonzero || any;
}

/*
 * The reference, read straight from the spec:
 *   version "-" trace-id "-" parent-id "-" trace-flags
 * 2, 32, 16 and 2 HEXDIGLC; version ff invalid; trace-id and parent-id not
 * all zero; version 00 exactly 55 characters; a later version at least 55,
 * and if longer the 56th is "-". Leading and trailing spaces and tabs are
 * HTTP optional white space. A NUL anywhere in the value is invalid.
 */
static int reference(const uint8_t *p, size_t n, trail_traceparent *out) {
  if (memchr(p, '\0', n) != NULL)
    return -1;
  while (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
    p++;
    n--;
  }
  while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
    n--;
  if (n < 55)
    return -1;
  if (!hex_field(p, 2, 0) || (p[0] == 'f' && p[1] == 'f'))
    return -1;
  if (p[2] != '-' || p[35] != '-' || p[52] != '-')
    return -1;
  if (!hex_field(p + 3, 32, 1) || !hex_field(p + 36, 16, 1) ||
      !hex_field(p + 53, 2, 0))
    return -1;
  int version = hexlc(p[0]) * 16 + hexlc(p[1]);
  if (version == 0 ? n != 55 : (n > 55 && p[55] != '-'))
    return -1;
  out->version = (uint8_t)version;
  out->flags = (uint8_t)(hexlc(p[53]) * 16 + hexlc(p[54]));
  memcpy(out->trace_id, p + 3, 32);
  out->trace_id[32] = '\0';
  memcpy(out->parent_id, p + 36, 16);
  out->parent_id[16] = '\0';
  return 0;
}

static int same_tp(const trail_traceparent *a, const trail_traceparent *b) {
  return a->version == b->version && a->flags == b->flags &&
         strcmp(a->trace_id, b->trace_id) == 0 &&
         strcmp(a->parent_id, b->parent_id) == 0;
}

/* Formatting with too little room, and a struct of arbitrary bytes. */
static void check_format_edges(const uint8_t *data, size_t size,
                               const trail_traceparent *good) {
  char small[56];
  size_t room = size > 0 ? data[0] % 56 : 0;
  memset(small, 'z', sizeof small);
  FZ_CHECK(trail_traceparent_format(good, small, room) == -ENOSPC,
           "format into %zu bytes did not fail", room);
  for (size_t i = 0; i < sizeof small; i++)
    FZ_CHECK(small[i] == 'z', "a failed format wrote byte %zu", i);

  trail_traceparent raw;
  memset(&raw, 0, sizeof raw);
  size_t n = size < sizeof raw ? size : sizeof raw;
  memcpy(&raw, data, n);
  char out[56];
  int rc = trail_traceparent_format(&raw, out, sizeof out);
  int ids_ok = strnlen(raw.trace_id, sizeof raw.trace_id) == 32 &&
               strnlen(raw.parent_id, sizeof raw.parent_id) == 16 &&
               hex_field((const uint8_t *)raw.trace_id, 32, 1) &&
               hex_field((const uint8_t *)raw.parent_id, 16, 1);
  if (!ids_ok) {
    FZ_CHECK(rc == TRAIL_EINVAL_ID, "invalid ids formatted: %d", rc);
    return;
  }
  FZ_CHECK(rc == 55, "valid ids not formatted: %d", rc);
  trail_traceparent back;
  FZ_CHECK(trail_traceparent_parse(out, TRAIL_NTS, &back) == 0,
           "formatted text does not parse: %s", out);
  FZ_CHECK(back.flags == raw.flags && back.version == 0 &&
               strcmp(back.trace_id, raw.trace_id) == 0 &&
               strcmp(back.parent_id, raw.parent_id) == 0,
           "format/parse round trip differs: %s", out);
}

/*
 * First byte: bit 0 passes the value NUL-terminated (TRAIL_NTS) instead of
 * with its length. The rest is the value.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  int nts = data[0] & 1;
  const uint8_t *v = data + 1;
  size_t n = size - 1;
  const char *arg = (const char *)v;
  size_t len = n;
  if (nts) {
    arg = fz_strndup(v, n);
    len = TRAIL_NTS;
    n = strlen(arg);
    v = (const uint8_t *)arg;
  }

  trail_traceparent want, got;
  memset(&got, 0x5a, sizeof got);
  trail_traceparent untouched;
  memcpy(&untouched, &got, sizeof got);
  int ref = reference(v, n, &want);
  int rc = trail_traceparent_parse(arg, len, &got);
  FZ_CHECK((rc == 0) == (ref == 0), "parse returned %d, reference %d for %.*s",
           rc, ref, (int)n, (const char *)v);

  trail_ctx ctx;
  trail_ctx_init(&ctx);
  trail_ctx before;
  memcpy(&before, &ctx, sizeof ctx);
  int crc = trail_ctx_set_traceparent(&ctx, arg, len);

  if (rc != 0) {
    FZ_CHECK(rc == TRAIL_EINVAL_TRACEPARENT, "parse error code %d", rc);
    FZ_CHECK(memcmp(&got, &untouched, sizeof got) == 0,
             "a rejected value changed the output");
    FZ_CHECK(crc == TRAIL_EINVAL_TRACEPARENT,
             "ctx accepted what parse did not");
    FZ_CHECK(memcmp(&ctx, &before, sizeof ctx) == 0,
             "a rejected traceparent changed the context");
    trail_traceparent good = {0, 1, "4bf92f3577b34da6a3ce929d0e0e4736",
                              "00f067aa0ba902b7"};
    check_format_edges(data, size, &good);
    fz_arena_free();
    return 0;
  }
  FZ_CHECK(same_tp(&got, &want), "parse fields differ from the reference");

  char out[56];
  FZ_CHECK(trail_traceparent_format(&got, out, sizeof out) == 55,
           "format of a parsed value failed");
  FZ_CHECK(memcmp(out, "00-", 3) == 0 &&
               memcmp(out + 3, got.trace_id, 32) == 0 && out[35] == '-' &&
               memcmp(out + 36, got.parent_id, 16) == 0 && out[52] == '-' &&
               out[55] == '\0',
           "formatted text has the wrong shape: %s", out);
  if (got.version == 0) {
    const char *t = arg;
    while (*t == ' ' || *t == '\t')
      t++;
    FZ_CHECK(memcmp(out, t, 55) == 0, "version 00 does not format to itself");
  }
  trail_traceparent again;
  FZ_CHECK(trail_traceparent_parse(out, TRAIL_NTS, &again) == 0,
           "formatted text does not parse: %s", out);
  got.version = 0;
  FZ_CHECK(same_tp(&again, &got), "round trip changed the fields");

  FZ_CHECK(crc == 0, "ctx rejected what parse accepted: %d", crc);
  FZ_CHECK(strcmp(trail_ctx_trace_id(&ctx), got.trace_id) == 0 &&
               strcmp(trail_ctx_parent_span_id(&ctx), got.parent_id) == 0 &&
               trail_ctx_trace_flags(&ctx) == (got.flags & 0x03),
           "context does not hold the traceparent");
  FZ_CHECK(strlen(trail_ctx_span_id(&ctx)) == 16, "no new span");
  char own[56];
  FZ_CHECK(trail_ctx_traceparent(&ctx, own, sizeof own) == 55,
           "context traceparent failed");
  trail_traceparent mine;
  FZ_CHECK(trail_traceparent_parse(own, TRAIL_NTS, &mine) == 0 &&
               strcmp(mine.trace_id, got.trace_id) == 0 &&
               strcmp(mine.parent_id, trail_ctx_span_id(&ctx)) == 0 &&
               mine.flags == (got.flags & 0x03),
           "context's traceparent %s is not its trace and span", own);

  check_format_edges(data, size, &got);
  fz_arena_free();
  return 0;
}

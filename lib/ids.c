/*
 * Ids and traceparent: request ids (UUID v4), W3C trace and span ids, the
 * request-id check applied to incoming X-Request-ID values, and the W3C
 * traceparent header, parsed and formatted.
 *
 * Randomness comes from lib/random.c: the public generators ask the kernel
 * on every call (getrandom(2)); a new request's three ids come from the
 * calling thread's pool, which a child made by fork() never shares with its
 * parent. No lock is needed between threads.
 */
#include "ids.h"
#include "random.h"

#include <trail.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <uuid/uuid.h>

#define TRACE_ID_BYTES (TRAIL_TRACE_ID_LEN / 2)
#define SPAN_ID_BYTES (TRAIL_SPAN_ID_LEN / 2)
#define UUID_BYTES 16

/* The offsets of the parts of a traceparent value. */
#define TP_TRACE_AT 3
#define TP_PARENT_AT (TP_TRACE_AT + TRAIL_TRACE_ID_LEN + 1)
#define TP_FLAGS_AT (TP_PARENT_AT + TRAIL_SPAN_ID_LEN + 1)

/*
 * Every byte's two lowercase hex digits, byte b at 2b: one load and one
 * two-byte store per byte, where a digit at a time took four times the
 * instructions (a new request formats 24 bytes of ids).
 */
static const char hex_pairs[2 * 256 + 1] = "000102030405060708090a0b0c0d0e0f"
                                           "101112131415161718191a1b1c1d1e1f"
                                           "202122232425262728292a2b2c2d2e2f"
                                           "303132333435363738393a3b3c3d3e3f"
                                           "404142434445464748494a4b4c4d4e4f"
                                           "505152535455565758595a5b5c5d5e5f"
                                           "606162636465666768696a6b6c6d6e6f"
                                           "707172737475767778797a7b7c7d7e7f"
                                           "808182838485868788898a8b8c8d8e8f"
                                           "909192939495969798999a9b9c9d9e9f"
                                           "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
                                           "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
                                           "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
                                           "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
                                           "e0e1e2e3e4e5e6e7e8e9eaebecedeeef"
                                           "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

static void hex_encode(const unsigned char *in, size_t n, char *out) {
  for (size_t i = 0; i < n; i++)
    memcpy(out + 2 * i, hex_pairs + 2 * (size_t)in[i], 2);
  out[2 * n] = '\0';
}

/* Lowercase hex only: HEXDIGLC, W3C Trace Context, section 3.2.2. */
static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Two lowercase hex digits at s into *out; 0, or -1 when either is not one. */
static int hex_byte(const char *s, uint8_t *out) {
  int hi = hex_value(s[0]);
  int lo = hex_value(s[1]);
  if (hi < 0 || lo < 0)
    return -1;
  *out = (uint8_t)(hi << 4 | lo);
  return 0;
}

/* 1 when the n bytes at p are all zero; n is a multiple of 8 (the ids'
 * 8 and 16 bytes), read as words. */
static int all_zero(const unsigned char *p, size_t n) {
  uint64_t any = 0;
  for (size_t i = 0; i < n; i += sizeof any) {
    uint64_t w;
    memcpy(&w, p + i, sizeof w);
    any |= w;
  }
  return any == 0;
}

/*
 * n random bytes, never all zero, as 2n hex digits and a NUL into buf. The
 * W3C spec makes an all-zero trace-id or parent-id invalid, so such a draw
 * (one in 2^64 at worst) is thrown away and drawn again rather than patched,
 * which would bias the distribution.
 */
static int random_hex_id(char *buf, size_t size, size_t n) {
  unsigned char raw[TRACE_ID_BYTES];
  if (buf == NULL || size < 2 * n + 1)
    return -ENOSPC;
  do {
    int rc = trail__random_kernel(raw, n);
    if (rc < 0)
      return rc;
  } while (all_zero(raw, n));
  hex_encode(raw, n, buf);
  return 0;
}

/*
 * 16 random bytes as a version 4 UUID, lowercase, 36 characters and a NUL
 * (RFC 9562, section 5.4: the version 0100 in the high bits of byte 6, the
 * variant 10 in the high bits of byte 8; the other 122 bits random).
 */
static void uuid_v4_format(const unsigned char raw[UUID_BYTES], char *out) {
  uuid_t u;
  memcpy(u, raw, UUID_BYTES);
  u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
  u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
  uuid_unparse_lower(u, out);
}

/*
 * The W3C id rule: exactly want lowercase hex digits, at least one of them
 * not '0'. Used both for traceparent parts and for ids set by the caller on
 * a context, so that every id trail writes would also parse back.
 */
int trail__hex_id_valid(const char *s, size_t len, size_t want) {
  int nonzero = 0;
  if (s == NULL || len != want || want == 0)
    return 0;
  for (size_t i = 0; i < len; i++) {
    if (hex_value(s[i]) < 0)
      return 0;
    nonzero |= s[i] != '0';
  }
  return nonzero;
}

/*
 * Writes a new random (version 4) UUID, lowercase, 36 characters and a NUL,
 * into buf. Returns 0, -ENOSPC (buf untouched) when size < 37, or -errno
 * when the kernel gives no randomness. Thread-safe and fork-safe: the 16
 * bytes come from the kernel's random pool, one getrandom(2) per UUID
 * (libuuid's uuid_generate_random() makes six system calls for one). The
 * request id is the one id a person copies out of a log line into a search box,
 * so it keeps the form everyone recognises.
 */
TRAIL_API int trail_request_id_new(char *buf, size_t size) {
  unsigned char raw[UUID_BYTES];
  if (buf == NULL || size < TRAIL_UUID_LEN + 1)
    return -ENOSPC;
  int rc = trail__random_kernel(raw, sizeof raw);
  if (rc < 0)
    return rc;
  uuid_v4_format(raw, buf);
  return 0;
}

/*
 * A new request's three ids from one draw of the thread's random pool (a
 * getrandom(2) every hundredth request): a UUID v4 into request_id (37 bytes),
 * a trace id into trace_id (33) and a span id into span_id (17). A draw whose
 * trace or span bytes are all zero is drawn again whole. 0 or -errno, the
 * buffers untouched on failure. Thread-safe and fork-safe, not
 * async-signal-safe (the pool; and libuuid formats the UUID).
 */
int trail__ids_new(char *request_id, char *trace_id, char *span_id) {
  unsigned char raw[UUID_BYTES + TRACE_ID_BYTES + SPAN_ID_BYTES];
  const unsigned char *trace = raw + UUID_BYTES;
  const unsigned char *span = trace + TRACE_ID_BYTES;
  do {
    int rc = trail__random_pooled(raw, sizeof raw);
    if (rc < 0)
      return rc;
  } while (all_zero(trace, TRACE_ID_BYTES) || all_zero(span, SPAN_ID_BYTES));
  uuid_v4_format(raw, request_id);
  hex_encode(trace, TRACE_ID_BYTES, trace_id);
  hex_encode(span, SPAN_ID_BYTES, span_id);
  return 0;
}

/*
 * Writes a new W3C trace-id, 16 random bytes as 32 lowercase hex digits and
 * a NUL, never all zero, into buf. Returns 0, -ENOSPC (buf untouched) when
 * size < 33, or -errno when the kernel gives no randomness. Thread-safe,
 * fork-safe and async-signal-safe: every call asks the kernel (getrandom).
 */
TRAIL_API int trail_trace_id_new(char *buf, size_t size) {
  return random_hex_id(buf, size, TRACE_ID_BYTES);
}

/*
 * Writes a new W3C span id (parent-id), 8 random bytes as 16 lowercase hex
 * digits and a NUL, never all zero, into buf. Returns 0, -ENOSPC (buf
 * untouched) when size < 17, or -errno. Same safety as trail_trace_id_new().
 */
TRAIL_API int trail_span_id_new(char *buf, size_t size) {
  return random_hex_id(buf, size, SPAN_ID_BYTES);
}

/*
 * Checks a request id taken from outside (an X-Request-ID header): 0 when
 * the len bytes at id are 1 to TRAIL_REQUEST_ID_MAX characters of
 * [A-Za-z0-9._:-], else TRAIL_EINVAL_ID. len is the whole length: a NUL byte
 * inside is an invalid character, not the end. The set is narrow on purpose:
 * it holds every UUID, ULID and common vendor id, and keeps quotes,
 * backslashes, spaces, CR/LF and non-ASCII (log and header injection) out of
 * ids that are echoed into lines, responses and outgoing requests.
 */
TRAIL_API int trail_request_id_check(const char *id, size_t len) {
  if (id == NULL || len == 0 || len > TRAIL_REQUEST_ID_MAX)
    return TRAIL_EINVAL_ID;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)id[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
             c == '-';
    if (!ok)
      return TRAIL_EINVAL_ID;
  }
  return 0;
}

/*
 * Parses a traceparent header value, by W3C Trace Context Level 2
 * (Candidate Recommendation Draft, 28 March 2024; the same rules as the
 * Level 1 Recommendation of 23 November 2021), section numbers of its text:
 *
 * - 3.2.2: value = version "-" version-format, every part lowercase hex
 *   (HEXDIGLC: uppercase is invalid);
 * - 3.2.2.1: version is 2 hex digits, and "ff" is invalid;
 * - 3.2.2.2: version 00 is trace-id "-" parent-id "-" trace-flags, so
 *   exactly 55 characters: anything after them is invalid for 00;
 * - 3.2.2.3, 3.2.2.4: trace-id (32) and parent-id (16) must not be all zero;
 * - 3.2.2.5: trace-flags is 2 hex digits; the byte is returned whole, the
 *   caller decides which bits it knows (trail_ctx_set_traceparent() keeps
 *   sampled and random only);
 * - 3.2.4 (Versioning of traceparent): a higher version is read the way it
 *   tells a version-00 reader to: at least 55 characters, the trace-id, the
 *   parent-id and the flags each followed by a dash, the flags also by the
 *   end; whatever follows that dash is not looked at.
 *
 * Spaces and tabs around the value are HTTP optional white space (RFC 9110
 * section 5.5) and are ignored. Returns 0 and fills *out, or
 * TRAIL_EINVAL_TRACEPARENT and leaves *out untouched. len is the whole
 * length; a NUL byte anywhere in it is invalid. Thread-safe and
 * async-signal-safe.
 */
TRAIL_API int trail_traceparent_parse(const char *value, size_t len,
                                      trail_traceparent *out) {
  uint8_t version, flags;
  if (value != NULL && len == TRAIL_NTS)
    len = strlen(value);
  if (value == NULL || out == NULL || memchr(value, '\0', len) != NULL)
    return TRAIL_EINVAL_TRACEPARENT;
  while (len > 0 && (value[0] == ' ' || value[0] == '\t')) {
    value++;
    len--;
  }
  while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
    len--;

  if (len < TRAIL_TRACEPARENT_LEN)
    return TRAIL_EINVAL_TRACEPARENT;
  if (hex_byte(value, &version) < 0 || version == 0xff)
    return TRAIL_EINVAL_TRACEPARENT;
  if (value[TP_TRACE_AT - 1] != '-' || value[TP_PARENT_AT - 1] != '-' ||
      value[TP_FLAGS_AT - 1] != '-')
    return TRAIL_EINVAL_TRACEPARENT;
  if (!trail__hex_id_valid(value + TP_TRACE_AT, TRAIL_TRACE_ID_LEN,
                           TRAIL_TRACE_ID_LEN) ||
      !trail__hex_id_valid(value + TP_PARENT_AT, TRAIL_SPAN_ID_LEN,
                           TRAIL_SPAN_ID_LEN) ||
      hex_byte(value + TP_FLAGS_AT, &flags) < 0)
    return TRAIL_EINVAL_TRACEPARENT;
  if (version == 0
          ? len != TRAIL_TRACEPARENT_LEN
          : len > TRAIL_TRACEPARENT_LEN && value[TRAIL_TRACEPARENT_LEN] != '-')
    return TRAIL_EINVAL_TRACEPARENT;

  out->version = version;
  out->flags = flags;
  memcpy(out->trace_id, value + TP_TRACE_AT, TRAIL_TRACE_ID_LEN);
  out->trace_id[TRAIL_TRACE_ID_LEN] = '\0';
  memcpy(out->parent_id, value + TP_PARENT_AT, TRAIL_SPAN_ID_LEN);
  out->parent_id[TRAIL_SPAN_ID_LEN] = '\0';
  return 0;
}

/*
 * Writes tp as a version-00 traceparent, "00-<trace_id>-<parent_id>-<flags>"
 * (55 characters, W3C Trace Context, section 3.2.2.2) and a NUL, into buf.
 * Returns 55; TRAIL_EINVAL_ID when tp's trace_id or parent_id is not a valid
 * W3C id (checked first); or -ENOSPC when size < 56. buf is untouched on
 * failure. tp->version is not used: version 00 is the only format this library
 * knows how to write, and section 3.2.4 asks a forwarder to send the highest
 * version it knows. Thread-safe and async-signal-safe.
 */
TRAIL_API int trail_traceparent_format(const trail_traceparent *tp, char *buf,
                                       size_t size) {
  char *p = buf;
  if (tp == NULL ||
      !trail__hex_id_valid(tp->trace_id,
                           strnlen(tp->trace_id, sizeof tp->trace_id),
                           TRAIL_TRACE_ID_LEN) ||
      !trail__hex_id_valid(tp->parent_id,
                           strnlen(tp->parent_id, sizeof tp->parent_id),
                           TRAIL_SPAN_ID_LEN))
    return TRAIL_EINVAL_ID;
  if (buf == NULL || size < TRAIL_TRACEPARENT_LEN + 1)
    return -ENOSPC;
  *p++ = '0';
  *p++ = '0';
  *p++ = '-';
  memcpy(p, tp->trace_id, TRAIL_TRACE_ID_LEN);
  p += TRAIL_TRACE_ID_LEN;
  *p++ = '-';
  memcpy(p, tp->parent_id, TRAIL_SPAN_ID_LEN);
  p += TRAIL_SPAN_ID_LEN;
  *p++ = '-';
  hex_encode(&tp->flags, 1, p);
  return TRAIL_TRACEPARENT_LEN;
}

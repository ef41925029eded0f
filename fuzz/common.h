/*
 * What the fuzz targets share: a reader that turns the fuzzer's bytes into
 * numbers and slices, an arena for the NUL-terminated copies trail's calls
 * want, a capture sink, an independent reference for trail's string rules
 * (UTF-8 with maximal-subpart replacement, JSON escaping), and the check
 * every written line must pass.
 *
 * The references are written from the specification (docs/log-format.md,
 * Unicode chapter 3, RFC 8259), not from lib/: a target that compares lib/
 * with them finds the places where the two disagree.
 *
 * Every check that fails prints what it saw on stderr and calls abort(),
 * which libFuzzer reports as a crash and the replay program as a failure.
 */
#ifndef TRAIL_FUZZ_COMMON_H
#define TRAIL_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "trail.h"

/* The entry point every target defines (libFuzzer's name). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- failing ----------------------------------------------------------- */

/* Prints "fuzz check failed at FILE:LINE: ..." and aborts. */
void fz_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
#define FZ_FAIL(...) fz_fail(__FILE__, __LINE__, __VA_ARGS__)
#define FZ_CHECK(cond, ...)                                                    \
  do {                                                                         \
    if (!(cond))                                                               \
      fz_fail(__FILE__, __LINE__, "(" #cond ") " __VA_ARGS__);                 \
  } while (0)

/* ---- reading the input ------------------------------------------------- */

typedef struct fz_in {
  const uint8_t *p;
  size_t n;
} fz_in;

/* Numbers from the front of the input, little-endian; 0 bits once empty. */
uint8_t fz_u8(fz_in *in);
uint16_t fz_u16(fz_in *in);
uint32_t fz_u32(fz_in *in);
uint64_t fz_u64(fz_in *in);
/* A slice of at most max bytes whose length is the next byte (or two). */
size_t fz_slice8(fz_in *in, const uint8_t **out);
size_t fz_slice16(fz_in *in, size_t max, const uint8_t **out);
/* Everything that is left. */
size_t fz_rest(fz_in *in, const uint8_t **out);

/* ---- an arena for the copies of one input ------------------------------ */

/* A NUL-terminated copy of n bytes, freed by fz_arena_free(). */
char *fz_strndup(const uint8_t *p, size_t n);
/* Frees every copy made since the last call. */
void fz_arena_free(void);

/* ---- capturing lines --------------------------------------------------- */

#define FZ_MAX_LINES 32

typedef struct fz_line {
  char *text; /* the line as written, "\n" included, NUL added */
  size_t len;
  trail_level level;
} fz_line;

/* The lines written since fz_capture_reset(). */
extern fz_line fz_lines[FZ_MAX_LINES];
extern size_t fz_nlines;

/*
 * Makes trail write to the capture sink only, at every level, with service
 * "fuzz" and the environment's TRAIL_* variables removed. Call it once.
 */
void fz_capture_install(void);
void fz_capture_reset(void);

/* ---- the reference string rules ---------------------------------------- */

/*
 * The UTF-8 character at p (n > 0 bytes): returns its length when the bytes
 * start a well-formed character, else 0 with *bad set to the length of the
 * maximal ill-formed subpart (Unicode 15, table 3-7 and section 3.9).
 */
size_t fz_utf8_char(const uint8_t *p, size_t n, size_t *bad);
/*
 * The text a reader gets back: invalid UTF-8 replaced by U+FFFD, one per
 * maximal subpart. out needs 3 * n bytes; returns the length written.
 */
size_t fz_utf8_fix(const uint8_t *p, size_t n, char *out);
/*
 * The JSON string trail writes for p[0..n), quotes included, when it has
 * room bytes: -1 when room < 2, else the length of the longest output made
 * of whole units (a byte of plain ASCII, an escape, a character, a U+FFFD)
 * that fits, with *cut set when a unit was left out. out needs 6 * n + 2
 * bytes.
 */
long fz_json_string(const uint8_t *p, size_t n, size_t room, char *out,
                    int *cut);

/* 1 when a (alen bytes) starts with b (blen bytes). */
int fz_has_prefix(const char *a, size_t alen, const char *b, size_t blen);

/* ---- the line contract ------------------------------------------------- */

/* What fz_check_line found, for the target's own checks. */
typedef struct fz_parsed {
  json_t *root;      /* the line's object; the caller json_decref()s it */
  size_t first_free; /* index of the first key after the reserved ones */
  size_t nkeys;
  int truncated; /* the line says "truncated":true */
} fz_parsed;

/*
 * Checks one line against docs/log-format.md: a single "\n" at the end and
 * no raw control character, DEL, C1 control, U+2028 or U+2029 before it; at
 * most max_line bytes; one JSON object (jansson, duplicate keys rejected);
 * timestamp, level, logger, message, service first, then the context keys
 * in their order, caller, the fields (no reserved key among them) and
 * "truncated":true last when present; the fixed keys' values of the right
 * form. Aborts on any violation.
 */
void fz_check_line(const char *line, size_t len, size_t max_line,
                   fz_parsed *out);

/* Index of key in the object's iteration order, or -1. */
long fz_key_index(json_t *obj, const char *key);
/* The i-th key and value in iteration order. */
const char *fz_key_at(json_t *obj, size_t i, size_t *klen, json_t **value);

/* ---- jansson values ---------------------------------------------------- */

/*
 * A jansson value from the input, up to 40 levels deep. Strings are made
 * without jansson's UTF-8 check (trail's replacement is under test); object
 * keys are valid UTF-8 without NUL bytes, as jansson requires of keys.
 */
json_t *fz_build_json(fz_in *in, int depth);
/* 1 when the value of key k[0..n) is redacted by the default list. */
int fz_redacted(const char *k, size_t n);
/* v is a string holding the reference reading of p[0..n). */
int fz_string_is(json_t *v, const uint8_t *p, size_t n);
/* v is a number equal to x (integer or real). */
int fz_number_is(json_t *v, double x);
/*
 * got is orig as trail writes it and jansson reads it back: members in
 * order, strings by the reference rules, numbers by value, containers at
 * depth 32 replaced by the string "[max depth]", the values of sensitive
 * keys by "[REDACTED]".
 */
int fz_json_same(json_t *orig, json_t *got, int depth);

#endif /* TRAIL_FUZZ_COMMON_H */

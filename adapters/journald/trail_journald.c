/*
 * The journald sink: parses each finished line (jansson) and sends its keys
 * as journal fields with sd_journal_sendv(). The line is parsed rather than
 * re-encoded so that the journal gets exactly what the other sinks got,
 * redaction and truncation included.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "trail/journald.h"

#define MAX_FIELDS 128

static uint64_t errors;

TRAIL_API uint64_t trail_journald_errors(void) {
  return __atomic_load_n(&errors, __ATOMIC_RELAXED);
}

TRAIL_API int trail_journald_priority(trail_level level) {
  switch (level) {
  case TRAIL_LEVEL_FATAL:
    return 2; /* crit */
  case TRAIL_LEVEL_ERROR:
    return 3; /* err */
  case TRAIL_LEVEL_WARN:
    return 4; /* warning */
  case TRAIL_LEVEL_INFO:
    return 6; /* info */
  default:
    return 7; /* debug */
  }
}

/*
 * Journal field names are [A-Z0-9_], at most 64 bytes, and may not start
 * with '_' (trusted fields) or a digit; trail's keys are mapped onto that
 * one way, so a query can be written from the key alone.
 */
TRAIL_API size_t trail_journald_field_name(const char *key, size_t len,
                                           char *out) {
  size_t o = 0;
  if (len == 0 || key[0] == '_' || (key[0] >= '0' && key[0] <= '9'))
    out[o++] = 'F';
  for (size_t i = 0; i < len && o < 64; i++) {
    unsigned char c = (unsigned char)key[i];
    if (c >= 'a' && c <= 'z')
      c = (unsigned char)(c - 'a' + 'A');
    else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
      c = '_';
    out[o++] = (char)c;
  }
  out[o] = '\0';
  return o;
}

/* "NAME=value" in a malloc'd buffer, or NULL. */
static char *field(const char *name, const char *value, size_t vlen,
                   size_t *len) {
  size_t n = strlen(name);
  char *f = malloc(n + 1 + vlen);
  if (f == NULL)
    return NULL;
  memcpy(f, name, n);
  f[n] = '=';
  memcpy(f + n + 1, value, vlen);
  *len = n + 1 + vlen;
  return f;
}

static void sink(void *user, trail_level level, const char *line, size_t len) {
  (void)user;
  json_error_t e;
  json_t *j = json_loadb(line, len, JSON_ALLOW_NUL, &e);
  if (j == NULL) /* an integer above INT64_MAX: read as a real instead */
    j = json_loadb(line, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
  if (j == NULL) {
    __atomic_fetch_add(&errors, 1, __ATOMIC_RELAXED);
    return;
  }
  struct iovec iov[MAX_FIELDS + 3];
  char *bufs[MAX_FIELDS + 3];
  int n = 0;
  char prio[16];
  int plen = snprintf(prio, sizeof prio, "PRIORITY=%d",
                      trail_journald_priority(level));
  iov[n].iov_base = prio;
  iov[n++].iov_len = (size_t)plen;
  const char *key;
  json_t *v;
  json_object_foreach(j, key, v) {
    if (n == MAX_FIELDS)
      break;
    char name[72];
    trail_journald_field_name(key, strlen(key), name);
    const char *text;
    size_t tlen;
    char *dumped = NULL;
    if (json_is_string(v)) {
      text = json_string_value(v);
      tlen = json_string_length(v);
    } else {
      dumped = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
      text = dumped ? dumped : "";
      tlen = strlen(text);
    }
    size_t flen;
    char *f = field(name, text, tlen, &flen);
    free(dumped);
    if (f == NULL)
      continue;
    bufs[n] = f;
    iov[n].iov_base = f;
    iov[n++].iov_len = flen;
    if (strcmp(key, "service") == 0) {
      f = field("SYSLOG_IDENTIFIER", text, tlen, &flen);
      if (f != NULL) {
        bufs[n] = f;
        iov[n].iov_base = f;
        iov[n++].iov_len = flen;
      }
    }
  }
  json_decref(j);
  if (sd_journal_sendv(iov, n) < 0)
    __atomic_fetch_add(&errors, 1, __ATOMIC_RELAXED);
  for (int i = 1; i < n; i++)
    free(bufs[i]);
}

/*
 * Adds the sink. It allocates per line (parsing and the journal's own
 * protocol): the journal is a slower path than a file, for hosts that
 * want it, and the hot path of the other sinks is unchanged.
 */
TRAIL_API int trail_journald_sink_add(trail_level min) {
  return trail_sink_add_callback(sink, NULL, min);
}

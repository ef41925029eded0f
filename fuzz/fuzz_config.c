/*
 * Fuzz target: configuration from text, the TRAIL_LEVEL grammar and the
 * TRAIL_* environment variables.
 *
 * Part one hands arbitrary text to trail__level_spec_parse() and compares
 * the result, rule by rule, with an independent parser of the grammar of
 * docs/configuration.md written here; a rejection must fill the error
 * detail. Part two sets some of the TRAIL_* variables to values from the
 * input (TRAIL_OUTPUT only to paths in a private scratch directory, never
 * to a path the input spells) and runs trail_config_from_env() with stderr
 * sent to /dev/null. Then every accepted value must be in force, every
 * rejected one must have left its setting alone, and the number of
 * rejections returned must be the reference's. trail_shutdown() returns to
 * the defaults after each input.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "internal.h"

/* ---- the TRAIL_LEVEL reference ---------------------------------------- */

static const char *const level_names[] = {"trace", "debug", "info", "warn",
                                          "error", "fatal", "off"};

/* A level name, any case; "warning" for warn. -1 when none. */
static int level_of(const char *s, size_t n) {
  for (int i = 0; i < 7; i++)
    if (strlen(level_names[i]) == n && strncasecmp(s, level_names[i], n) == 0)
      return i;
  if (n == 7 && strncasecmp(s, "warning", 7) == 0)
    return TRAIL_LEVEL_WARN;
  return -1;
}

/* C-locale isspace(), spelled out. */
static int space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
         c == '\r';
}

static void trim(const char **s, size_t *n) {
  while (*n > 0 && space(**s)) {
    (*s)++;
    (*n)--;
  }
  while (*n > 0 && space((*s)[*n - 1]))
    (*n)--;
}

/* A logger name: 1..128 ASCII letters, digits, '.', '_' or '-'. */
static int name_ok(const char *s, size_t n) {
  if (n < 1 || n > 128)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

/*
 * value = item *("," item); item = empty / LEVEL / NAME "=" LEVEL, with
 * white space around each part ignored; at least one item not empty; the
 * last LEVEL item gives the default (info when none); a NAME given twice
 * keeps its place and takes the later level; at most 32 names.
 */
static int ref_spec(const char *spec, trail__level_spec *out) {
  memset(out, 0, sizeof *out);
  out->deflt = TRAIL_LEVEL_INFO;
  int seen = 0;
  const char *p = spec;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    const char *item = p;
    trim(&item, &n);
    if (n > 0) {
      seen = 1;
      const char *eq = memchr(item, '=', n);
      if (eq == NULL) {
        int lv = level_of(item, n);
        if (lv < 0)
          return -1;
        out->deflt = (trail_level)lv;
      } else {
        const char *name = item, *lvs = eq + 1;
        size_t nl = (size_t)(eq - item), ll = n - nl - 1;
        trim(&name, &nl);
        trim(&lvs, &ll);
        int lv = level_of(lvs, ll);
        if (!name_ok(name, nl) || lv < 0)
          return -1;
        size_t i = 0;
        while (i < out->nrules && !(out->rules[i].len == nl &&
                                    memcmp(out->rules[i].name, name, nl) == 0))
          i++;
        if (i == out->nrules) {
          if (out->nrules == 32)
            return -1;
          out->nrules++;
        }
        memcpy(out->rules[i].name, name, nl);
        out->rules[i].name[nl] = '\0';
        out->rules[i].len = nl;
        out->rules[i].level = (trail_level)lv;
      }
    }
    if (comma == NULL)
      break;
    p = comma + 1;
  }
  return seen ? 0 : -1;
}

/* Part one: the parser against the reference, and the error detail. */
static void check_spec(const char *text) {
  trail__level_spec got, want;
  trail_config_error err;
  memset(&err, 0x5a, sizeof err);
  int rc = trail__level_spec_parse(text, &got, &err, "fuzz");
  int ref = ref_spec(text, &want);
  FZ_CHECK((rc == 0) == (ref == 0),
           "parse returned %d, reference %d for \"%s\"", rc, ref, text);
  if (rc != 0) {
    FZ_CHECK(rc == TRAIL_EINVAL_SPEC || rc == TRAIL_EINVAL_LEVEL ||
                 rc == TRAIL_EINVAL_NAME,
             "error code %d", rc);
    FZ_CHECK(err.code == rc, "err.code %d for %d", err.code, rc);
    FZ_CHECK(memchr(err.text, '\0', sizeof err.text) != NULL && err.text[0],
             "err.text empty or not terminated");
    FZ_CHECK(strcmp(err.source, "fuzz") == 0, "err.source not the caller's");
    return;
  }
  FZ_CHECK(got.deflt == want.deflt, "default %d, want %d", got.deflt,
           want.deflt);
  FZ_CHECK(got.nrules == want.nrules, "%zu rules, want %zu", got.nrules,
           want.nrules);
  for (size_t i = 0; i < got.nrules; i++)
    FZ_CHECK(got.rules[i].len == want.rules[i].len &&
                 strcmp(got.rules[i].name, want.rules[i].name) == 0 &&
                 got.rules[i].level == want.rules[i].level,
             "rule %zu differs", i);
}

/* ---- the other variables ----------------------------------------------- */

/* 1, true, yes, on / 0, false, no, off, any case. -1 otherwise. */
static int ref_bool(const char *v) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(v, yes[i]) == 0)
      return 1;
    if (strcasecmp(v, no[i]) == 0)
      return 0;
  }
  return -1;
}

/*
 * Decimal digits with an optional k/K (1024) or m/M (1048576) suffix and
 * nothing else, at most 2^31. Returns 0 and *out, or -1.
 */
static int ref_size(const char *v, uint64_t *out) {
  uint64_t n = 0;
  size_t i = 0;
  if (!(v[0] >= '0' && v[0] <= '9'))
    return -1;
  for (; v[i] >= '0' && v[i] <= '9'; i++) {
    if (n > (UINT64_MAX - 9) / 10)
      return -1;
    n = n * 10 + (uint64_t)(v[i] - '0');
  }
  uint64_t mul = 1;
  if (v[i] == 'k' || v[i] == 'K')
    mul = 1024, i++;
  else if (v[i] == 'm' || v[i] == 'M')
    mul = 1024 * 1024, i++;
  if (v[i] != '\0' || n > (UINT64_C(1) << 31) / mul)
    return -1;
  *out = n * mul;
  return 0;
}

static char scratch[64];

/* Removes the scratch directory at exit (what the targets can leave in it). */
static void remove_scratch(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/out.log", scratch);
  unlink(path);
  rmdir(scratch);
}

/* The private directory TRAIL_OUTPUT may point into. */
static void make_scratch(void) {
  if (scratch[0])
    return;
  const char *tmp = getenv("TMPDIR");
  snprintf(scratch, sizeof scratch, "%s/trail-fuzz-config-XXXXXX",
           tmp && tmp[0] && strlen(tmp) < 32 ? tmp : "/tmp");
  FZ_CHECK(mkdtemp(scratch) != NULL, "mkdtemp failed");
  atexit(remove_scratch);
}

/*
 * TRAIL_OUTPUT values: the input picks one of these, never spells a path.
 * *ok says whether trail_output_set() must take it.
 */
static const char *pick_output(uint8_t sel, int *ok, char *buf, size_t size) {
  switch (sel % 6) {
  case 0:
    *ok = 1;
    return "stdout";
  case 1:
    *ok = 1;
    return "stderr";
  case 2:
    *ok = 0;
    return "";
  case 3:
    *ok = 1;
    snprintf(buf, size, "%s/out.log", scratch);
    return buf;
  case 4:
    *ok = 0;
    snprintf(buf, size, "%s/no/such/dir.log", scratch);
    return buf;
  default:
    *ok = 0;
    return scratch; /* a directory */
  }
}

static const char *const watched[] = {"http", "db", "db.pool", "a.b", "x"};
#define NWATCHED (sizeof watched / sizeof watched[0])

typedef struct settings {
  char service[TRAIL__NAME_MAX + 1];
  trail_level root, named[NWATCHED];
  int caller;
  size_t max_line;
} settings;

static void snapshot(settings *s) {
  snprintf(s->service, sizeof s->service, "%s", trail_service());
  s->root = trail_logger_level(NULL);
  for (size_t i = 0; i < NWATCHED; i++)
    s->named[i] = trail_logger_level(trail_logger_get(watched[i]));
  s->caller = __atomic_load_n(&trail__caller_on, __ATOMIC_RELAXED);
  s->max_line = trail_max_line();
}

/* Runs f with stderr on /dev/null: a bad variable is reported there. */
static int quietly(int (*f)(void)) {
  fflush(stderr);
  int saved = dup(2);
  int null = open("/dev/null", O_WRONLY);
  FZ_CHECK(saved >= 0 && null >= 0, "cannot redirect stderr");
  dup2(null, 2);
  close(null);
  int r = f();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  return r;
}

enum {
  V_SERVICE,
  V_LEVEL,
  V_OUTPUT,
  V_CALLER,
  V_MAX_LINE,
  V_ASYNC,
  V_OVERFLOW,
  V_QUEUE,
  V_STOP_WAIT,
  V_SAMPLING,
  V_REDACT,
  NVARS
};
static const char *const var_names[NVARS] = {
    "TRAIL_SERVICE",        "TRAIL_LEVEL",       "TRAIL_OUTPUT",
    "TRAIL_CALLER",         "TRAIL_MAX_LINE",    "TRAIL_ASYNC",
    "TRAIL_ASYNC_OVERFLOW", "TRAIL_ASYNC_QUEUE", "TRAIL_ASYNC_STOP_WAIT",
    "TRAIL_SAMPLING",       "TRAIL_REDACT"};

/* A decimal number of at most UINT32_MAX, digits only; -1 otherwise. */
static int u32_text(const char *s, size_t n, uint32_t *out) {
  uint64_t v = 0;
  if (n == 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
    if (v > UINT32_MAX)
      return -1;
  }
  *out = (uint32_t)v;
  return 0;
}

/* TRAIL_SAMPLING: FIRST or FIRST,THEREAFTER (include/trail.h). */
static int ref_sampling(const char *v) {
  uint32_t a, b;
  const char *comma = strchr(v, ',');
  if (comma == NULL)
    return u32_text(v, strlen(v), &a);
  if (u32_text(v, (size_t)(comma - v), &a) != 0)
    return -1;
  return u32_text(comma + 1, strlen(comma + 1), &b);
}

/* The default list of docs/configuration.md, which "+KEYS" adds to. */
static const char *const default_keys[] = {
    "password", "passwd",        "secret", "token",
    "api_key",  "authorization", "cookie", "set-cookie"};

/*
 * TRAIL_REDACT: comma-separated keys, white space around each ignored,
 * empty items skipped; a leading '+' (after white space) puts the default
 * keys first; at most 32 keys in all of 1..63 printable ASCII bytes
 * without space, quote or backslash. Fills keys (lowercased); returns
 * their number, or -1.
 */
static int ref_redact(const char *list, char keys[32][64]) {
  int n = 0;
  const char *start = list;
  while (space(*start))
    start++;
  if (*start == '+') {
    list = start + 1;
    for (; n < 8; n++)
      snprintf(keys[n], 64, "%s", default_keys[n]);
  }
  for (const char *p = list;;) {
    const char *comma = strchr(p, ',');
    size_t k = comma ? (size_t)(comma - p) : strlen(p);
    const char *key = p;
    trim(&key, &k);
    if (k > 0) {
      if (k > 63 || n == 32)
        return -1;
      for (size_t i = 0; i < k; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
          return -1;
        keys[n][i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
      }
      keys[n][k] = '\0';
      n++;
    }
    if (comma == NULL)
      break;
    p = comma + 1;
  }
  return n;
}

/*
 * Part two. Sets the variables the input picks, applies them, and checks
 * each against its reference; the async ones only for the writer running
 * and for bounds on the count, since the queue's smallest size depends on
 * the writer's record header.
 */
static void check_env(fz_in *in) {
  const char *val[NVARS] = {NULL};
  char outbuf[128];
  int out_ok = 0;
  uint16_t mask = fz_u16(in);
  for (int i = 0; i < NVARS; i++) {
    if (!(mask & (1u << i)))
      continue;
    const uint8_t *s;
    size_t n = fz_slice16(in, 4096, &s);
    if (i == V_OUTPUT)
      val[i] = pick_output(n ? s[0] : 0, &out_ok, outbuf, sizeof outbuf);
    else
      val[i] = fz_strndup(s, n); /* the environment ends a value at NUL */
    setenv(var_names[i], val[i], 1);
  }

  settings before, after;
  snapshot(&before);
  int bad = quietly(trail_config_from_env);
  snapshot(&after);

  int lo = 0, hi = 0; /* the number of rejections the reference allows */
  if (val[V_SERVICE]) {
    if (trail__name_valid(val[V_SERVICE], strlen(val[V_SERVICE])))
      FZ_CHECK(strcmp(after.service, val[V_SERVICE]) == 0, "service not set");
    else {
      FZ_CHECK(strcmp(after.service, before.service) == 0,
               "bad service changed it");
      lo++, hi++;
    }
  }
  if (val[V_LEVEL]) {
    trail__level_spec want;
    if (ref_spec(val[V_LEVEL], &want) == 0) {
      FZ_CHECK(after.root == trail__level_spec_lookup(&want, "root", 4),
               "root level %d not applied", after.root);
      for (size_t i = 0; i < NWATCHED; i++)
        FZ_CHECK(after.named[i] == trail__level_spec_lookup(&want, watched[i],
                                                            strlen(watched[i])),
                 "level of %s not applied", watched[i]);
    } else {
      FZ_CHECK(after.root == before.root, "bad TRAIL_LEVEL changed root");
      for (size_t i = 0; i < NWATCHED; i++)
        FZ_CHECK(after.named[i] == before.named[i],
                 "bad TRAIL_LEVEL changed %s", watched[i]);
      lo++, hi++;
    }
  }
  if (val[V_OUTPUT] && !out_ok)
    lo++, hi++;
  if (val[V_CALLER]) {
    int b = ref_bool(val[V_CALLER]);
    FZ_CHECK(after.caller == (b < 0 ? before.caller : b), "caller %d",
             after.caller);
    if (b < 0)
      lo++, hi++;
  }
  if (val[V_MAX_LINE]) {
    uint64_t n;
    int ok = ref_size(val[V_MAX_LINE], &n) == 0 && n >= 2048 &&
             n <= 16u * 1024 * 1024;
    FZ_CHECK(after.max_line == (ok ? (size_t)n : before.max_line),
             "max line %zu for \"%s\"", after.max_line, val[V_MAX_LINE]);
    if (!ok)
      lo++, hi++;
  }
  if (val[V_ASYNC]) {
    int b = ref_bool(val[V_ASYNC]);
    if (b < 0)
      lo++, hi++;
    FZ_CHECK(trail_async_running() == (b == 1), "writer running: %d for \"%s\"",
             trail_async_running(), val[V_ASYNC]);
    if (b == 1) {
      const char *ov = val[V_OVERFLOW];
      if (ov && strcasecmp(ov, "drop") != 0 && strcasecmp(ov, "block") != 0)
        lo++, hi++;
      if (val[V_QUEUE]) {
        uint64_t n;
        if (ref_size(val[V_QUEUE], &n) != 0 || n == 0)
          lo++, hi++;
        else if (n < 4 * after.max_line || n > (UINT64_C(1) << 30))
          lo++, hi++; /* too small for 4 lines, or too big: the default */
        else
          hi++; /* near the smallest size: either */
      }
      uint32_t ms;
      const char *sw = val[V_STOP_WAIT];
      if (sw && strcasecmp(sw, "forever") != 0 &&
          (u32_text(sw, strlen(sw), &ms) != 0 || ms == 0 || ms > 3600000))
        lo++, hi++;
    }
  }
  if (val[V_SAMPLING] && ref_sampling(val[V_SAMPLING]) != 0)
    lo++, hi++;
  if (val[V_REDACT]) {
    char keys[32][64];
    int nk = ref_redact(val[V_REDACT], keys);
    if (nk < 0) {
      lo++, hi++;
    } else {
      /* each key redacts in any case; a key just beside them does not */
      for (int i = 0; i < nk; i++) {
        size_t kl = strlen(keys[i]);
        char upper[64];
        for (size_t j = 0; j <= kl; j++)
          upper[j] =
              (char)(keys[i][j] >= 'a' && keys[i][j] <= 'z' ? keys[i][j] - 32
                                                            : keys[i][j]);
        FZ_CHECK(trail__redacted(keys[i], kl) && trail__redacted(upper, kl),
                 "key %s of TRAIL_REDACT not redacted", keys[i]);
      }
      int listed = 0;
      for (int i = 0; i < nk; i++)
        listed |= strcmp(keys[i], "zz-not-listed") == 0;
      FZ_CHECK(listed || !trail__redacted("zz-not-listed", 13),
               "an unlisted key is redacted");
    }
  }
  FZ_CHECK(bad >= lo && bad <= hi, "%d rejections, reference %d..%d", bad, lo,
           hi);

  trail_shutdown();
  for (int i = 0; i < NVARS; i++)
    unsetenv(var_names[i]);
}

/*
 * First part: the input up to its first NUL byte as a TRAIL_LEVEL value.
 * Second part: the rest decides the environment.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  make_scratch();
  const uint8_t *nul = memchr(data, '\0', size);
  size_t n = nul ? (size_t)(nul - data) : size;
  check_spec(fz_strndup(data, n));
  fz_in in = {data + n, size - n};
  if (in.n > 0)
    fz_u8(&in); /* the NUL */
  check_env(&in);
  fz_arena_free();
  return 0;
}

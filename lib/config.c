/*
 * Setup and configuration: trail_init, the TRAIL_* environment variables and
 * the C calls that do the same.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "internal.h"

int trail__caller_on;

TRAIL_API int trail_service_set(const char *service) {
  if (service == NULL || !trail__name_valid(service, strlen(service)))
    return TRAIL_EINVAL_NAME;
  trail__config_lock();
  trail__conf *c = trail__conf_copy_locked();
  if (c != NULL) {
    trail__conf_set_service(c, service, strlen(service));
    trail__conf_publish_locked(c);
  }
  trail__config_unlock();
  return c ? 0 : -ENOMEM;
}

/* The service name in force; valid until the next change of it. */
TRAIL_API const char *trail_service(void) { return trail__conf_get()->service; }

TRAIL_API int trail_levels_set(const char *spec, trail_config_error *err) {
  trail__level_spec parsed;
  int rc = trail__level_spec_parse(spec, &parsed, err, "trail_levels_set");
  if (rc != 0)
    return rc;
  trail__config_lock();
  trail__loggers_apply_spec_locked(&parsed);
  trail__config_unlock();
  return 0;
}

/* What an output may be, for the messages about a rejected one. */
#define OUTPUT_ACCEPTED "accepted: stdout, stderr, - or a path"

/*
 * The descriptor an output names: 1 for "stdout" or "-", 2 for "stderr",
 * in any case; 0 for a path. "./stdout" is a path.
 */
static int output_std_fd(const char *spec) {
  if (strcasecmp(spec, "stdout") == 0 || strcmp(spec, "-") == 0)
    return 1;
  if (strcasecmp(spec, "stderr") == 0)
    return 2;
  return 0;
}

/*
 * Replaces every sink by one: stdout, stderr or a file path. The new sink
 * is opened before anything is replaced, so a path that cannot be opened
 * leaves the output as it was.
 */
TRAIL_API int trail_output_set(const char *spec, trail_config_error *err) {
  if (spec == NULL || spec[0] == '\0') {
    trail__config_error(err, TRAIL_EINVAL_SPEC, "trail_output_set",
                        "empty output (" OUTPUT_ACCEPTED ")");
    return TRAIL_EINVAL_SPEC;
  }
  trail__sink *s = NULL;
  int rc = 0;
  int fd = output_std_fd(spec);
  if (fd != 0)
    s = trail__sink_new_fd(fd, TRAIL_LEVEL_TRACE);
  else
    rc = trail__sink_open_file(spec, TRAIL_LEVEL_TRACE, &s);
  if (rc == 0 && s == NULL)
    rc = -ENOMEM;
  if (rc != 0) {
    trail__config_error(err, rc, "trail_output_set", "cannot open \"%s\": %s",
                        spec, trail_strerror(rc));
    return rc;
  }
  rc = trail__sinks_replace(s);
  if (rc < 0)
    trail__config_error(err, rc, "trail_output_set", "%s", trail_strerror(rc));
  return rc < 0 ? rc : 0;
}

TRAIL_API void trail_caller_set(bool on) {
  __atomic_store_n(&trail__caller_on, on ? 1 : 0, __ATOMIC_RELAXED);
}

/* ---- the environment --------------------------------------------------- */

/* What every rejected boolean variable says it accepts. */
#define NOT_A_BOOLEAN                                                          \
  "not a boolean (accepted: 1, 0, true, false, yes, no, on, off)"

/* The variables that tune the writer TRAIL_ASYNC starts, and its default. */
#define ASYNC_OVERFLOW_VAR "TRAIL_ASYNC_OVERFLOW"
#define ASYNC_QUEUE_VAR "TRAIL_ASYNC_QUEUE"
#define ASYNC_QUEUE_DEFAULT "2m"
#define ASYNC_STOP_WAIT_VAR "TRAIL_ASYNC_STOP_WAIT"
#define ASYNC_STOP_WAIT_MAX_MS 3600000 /* an hour */
#define STR_(x) #x
#define STR(x) STR_(x)

/*
 * A bad variable must be seen by whoever starts the service, and must not
 * stop it: one line on stderr naming the variable, the value, what was
 * wrong and what is used instead.
 */
static void env_complain(const char *var, const char *value, const char *what,
                         const char *using) {
  fprintf(stderr, "trail: %s=\"%.200s\": %s; using %s\n", var, value, what,
          using);
}

/* What the output is now, for the message about a rejected TRAIL_OUTPUT. */
static const char *current_output(void) {
  const trail__conf *c = trail__conf_get();
  if (c->nsinks == 1 && c->sinks[0]->kind == TRAIL__SINK_FD)
    return c->sinks[0]->fd == 1   ? "stdout"
           : c->sinks[0]->fd == 2 ? "stderr"
                                  : "the current output";
  if (c->nsinks == 1 && c->sinks[0]->kind == TRAIL__SINK_FILE)
    return c->sinks[0]->path;
  return "the current sinks";
}

static int parse_bool(const char *v, int *out) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcasecmp(v, yes[i]) == 0) {
      *out = 1;
      return 0;
    }
    if (strcasecmp(v, no[i]) == 0) {
      *out = 0;
      return 0;
    }
  }
  return -1;
}

/* Digits with an optional k, m or g (base 1024); at least 1. */
int trail__parse_bytes(const char *v, const char **end, uint64_t *out) {
  char *e;
  if (v[0] < '0' || v[0] > '9')
    return -1;
  errno = 0;
  unsigned long long n = strtoull(v, &e, 10);
  if (errno != 0)
    return -1;
  unsigned shift = 0;
  switch (*e) {
  case 'k':
  case 'K':
    shift = 10;
    break;
  case 'm':
  case 'M':
    shift = 20;
    break;
  case 'g':
  case 'G':
    shift = 30;
    break;
  default:
    break;
  }
  if (shift != 0)
    e++;
  if (n == 0 || n > (UINT64_MAX >> shift))
    return -1;
  *out = (uint64_t)n << shift;
  *end = e;
  return 0;
}

/* Bytes, or with a k/K (KiB) or m/M (MiB) suffix. */
static int parse_size(const char *v, size_t *out) {
  char *end;
  errno = 0;
  if (v[0] < '0' || v[0] > '9')
    return -1;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno != 0)
    return -1;
  unsigned long long mul = 1;
  if (*end == 'k' || *end == 'K')
    mul = 1024;
  else if (*end == 'm' || *end == 'M')
    mul = 1024ULL * 1024;
  if (mul != 1)
    end++;
  if (__builtin_mul_overflow(n, mul, &n))
    return -1;
  if (*end != '\0' || n > (1ull << 31))
    return -1;
  *out = (size_t)n;
  return 0;
}

/* TRAIL_ASYNC_STOP_WAIT: milliseconds, 1 to an hour, or "forever". */
static int parse_stop_wait(const char *v, int *ms) {
  if (strcasecmp(v, "forever") == 0) {
    *ms = TRAIL_STOP_WAIT_FOREVER;
    return 0;
  }
  char *end;
  errno = 0;
  if (v[0] < '0' || v[0] > '9')
    return -1;
  unsigned long n = strtoul(v, &end, 10);
  if (errno != 0 || *end != '\0' || n == 0 || n > ASYNC_STOP_WAIT_MAX_MS)
    return -1;
  *ms = (int)n;
  return 0;
}

/*
 * FIRST or FIRST,THEREAFTER, each a decimal that fits in 32 bits. Each must
 * start with a digit: strtoul would also take leading white space and a
 * sign, and turn "-1" into a huge count.
 */
static int parse_sampling(const char *v, uint32_t *first, uint32_t *after) {
  unsigned long f = 0, a = 0;
  char *end = (char *)v;
  int ok = v[0] >= '0' && v[0] <= '9';
  errno = 0;
  if (ok)
    f = strtoul(v, &end, 10);
  if (ok && *end == ',') {
    ok = end[1] >= '0' && end[1] <= '9';
    if (ok)
      a = strtoul(end + 1, &end, 10);
  }
  if (!ok || errno != 0 || *end != '\0' || f > UINT32_MAX || a > UINT32_MAX)
    return -1;
  *first = (uint32_t)f;
  *after = (uint32_t)a;
  return 0;
}

/*
 * Each env_* function below applies one variable's value, reports a bad one
 * with env_complain() and returns the number of variables it rejected.
 */

/* TRAIL_SERVICE: the service name; a bad one keeps the current name. */
static int env_service(const char *var, const char *v) {
  if (trail_service_set(v) == 0)
    return 0;
  char using[160];
  snprintf(using, sizeof using, "\"%s\"", trail_service());
  env_complain(var, v, "not a valid service name (" TRAIL__NAME_RULE ")",
               using);
  return 1;
}

/* TRAIL_LEVEL: the level spec; a bad one changes no logger's level. */
static int env_level(const char *var, const char *v) {
  trail__level_spec spec;
  trail_config_error err;
  if (trail__level_spec_parse(v, &spec, &err, var) != 0) {
    char using[32];
    snprintf(using, sizeof using, "\"%s\"",
             trail_level_name(trail_logger_level(NULL)));
    env_complain(var, v, err.text, using);
    return 1;
  }
  trail__config_lock();
  trail__loggers_apply_spec_locked(&spec);
  trail__config_unlock();
  return 0;
}

/* TRAIL_OUTPUT: stdout, stderr, - or a path; a bad one keeps the sinks. */
static int env_output(const char *var, const char *v) {
  trail_config_error err;
  if (trail_output_set(v, &err) == 0)
    return 0;
  char what[400];
  snprintf(what, sizeof what, "%s (" OUTPUT_ACCEPTED ")",
           v[0] ? err.text : "empty value");
  env_complain(var, v, what, current_output());
  return 1;
}

/* TRAIL_CALLER: whether lines carry "caller":"file.c:42". */
static int env_caller(const char *var, const char *v) {
  int on;
  if (parse_bool(v, &on) != 0) {
    env_complain(var, v, NOT_A_BOOLEAN,
                 __atomic_load_n(&trail__caller_on, __ATOMIC_RELAXED) ? "1"
                                                                      : "0");
    return 1;
  }
  trail_caller_set(on);
  return 0;
}

/* TRAIL_MAX_LINE: the line maximum; a bad one keeps the current one. */
static int env_max_line(const char *var, const char *v) {
  size_t n;
  if (parse_size(v, &n) == 0 && trail_max_line_set(n) == 0)
    return 0;
  char using[32];
  snprintf(using, sizeof using, "%zu", trail_max_line());
  env_complain(var, v,
               "not a size from 2048 to 16M (bytes, or with suffix k or m)",
               using);
  return 1;
}

/* TRAIL_SAMPLING: FIRST[,THEREAFTER] events per second and message. */
static int env_sampling(const char *var, const char *v) {
  uint32_t first, after;
  if (parse_sampling(v, &first, &after) != 0) {
    env_complain(var, v,
                 "not FIRST or FIRST,THEREAFTER (events per second and "
                 "message: e.g. 100,100; 0 turns sampling off)",
                 "the current sampling");
    return 1;
  }
  trail_sampling_set(first, after);
  return 0;
}

/*
 * A list without the leading '+' replaces the default list: one line says
 * which default keys are no longer redacted and how to add instead. Not an
 * error: the list is applied and not counted as rejected.
 */
static void redact_replaced_notice(const char *var, const char *v) {
  char dropped[TRAIL__REDACT_TEXT];
  if (trail__redact_defaults_dropped(trail__conf_get(), dropped,
                                     sizeof dropped) == 0)
    return;
  const char *keys = v + strspn(v, " \t,"); /* the first key, if any */
  fprintf(stderr,
          "trail: %s=\"%.200s\" replaces the default list (no longer "
          "redacted: %s)",
          var, v, dropped);
  if (*keys != '\0')
    fprintf(stderr, "; use %s=%c%.200s to add to it", var, TRAIL__REDACT_ADD,
            v);
  fputc('\n', stderr);
}

/* TRAIL_REDACT: the sensitive keys; a bad list keeps the current keys. */
static int env_redact(const char *var, const char *v) {
  trail_config_error err;
  if (trail_redact_set(v, &err) != 0) {
    env_complain(var, v, err.text, "the current keys");
    return 1;
  }
  if (!trail__redact_list_adds(v))
    redact_replaced_notice(var, v);
  return 0;
}

/* TRAIL_FIELDS: the process fields; a bad value keeps the current ones. */
static int env_fields(const char *var, const char *v) {
  trail_config_error err;
  if (trail__fields_parse(v, &err, var) == 0)
    return 0;
  env_complain(var, v, err.text, "the current fields");
  return 1;
}

/*
 * TRAIL_ROTATE: SIZE,KEEP for the file TRAIL_OUTPUT names; a bad value, or
 * an output that is not a file, leaves the file unrotated.
 */
static int env_rotate(const char *var, const char *v) {
  uint64_t max;
  unsigned keep;
  int rc = trail__rotate_parse(v, &max, &keep);
  if (rc == 0)
    rc = trail__rotate_output(max, keep);
  if (rc == 0)
    return 0;
  env_complain(var, v,
               rc == -1 ? "not SIZE,KEEP (SIZE at least 1 byte, with suffix "
                          "k, m or g; KEEP from 0 to 1000: e.g. 100m,5)"
               : rc == -EINVAL ? "TRAIL_OUTPUT names no file to rotate"
                               : trail_strerror(rc),
               "no rotation");
  return 1;
}

/*
 * TRAIL_BUFFER: LEVEL,SIZE[,POOL], what every request of the middleware
 * buffers; a bad value leaves buffering as it was.
 */
static int env_buffer(const char *var, const char *v) {
  trail_level level;
  size_t bytes, pool;
  if (trail__buffer_parse(v, &level, &bytes, &pool) == 0) {
    trail__buffer_set_defaults(level, bytes, pool);
    return 0;
  }
  env_complain(var, v,
               "not LEVEL,SIZE[,POOL] (a level from trace to fatal; SIZE "
               "from 1k to 64m; POOL at least SIZE: e.g. debug,64k,16m)",
               "no request buffering");
  return 1;
}

/*
 * The writer's options from TRAIL_ASYNC_OVERFLOW (block, drop),
 * TRAIL_ASYNC_QUEUE (bytes, k or m) and TRAIL_ASYNC_STOP_WAIT (ms, forever)
 * into o; a bad one is reported and its default left in o. Returns the
 * number of variables rejected.
 */
static int async_options_from_env(trail_async_options *o) {
  int bad = 0;
  const char *v;
  if ((v = getenv(ASYNC_OVERFLOW_VAR)) != NULL) {
    if (strcasecmp(v, "drop") == 0)
      o->overflow = TRAIL_OVERFLOW_DROP;
    else if (strcasecmp(v, "block") != 0) {
      env_complain(ASYNC_OVERFLOW_VAR, v,
                   "unknown policy (accepted: block, drop)", "block");
      bad++;
    }
  }
  if ((v = getenv(ASYNC_QUEUE_VAR)) != NULL) {
    size_t n;
    if (parse_size(v, &n) != 0 || n == 0) {
      env_complain(ASYNC_QUEUE_VAR, v,
                   "not a size (bytes, or with suffix k or m)",
                   ASYNC_QUEUE_DEFAULT);
      bad++;
    } else {
      o->queue_size = n;
    }
  }
  if ((v = getenv(ASYNC_STOP_WAIT_VAR)) != NULL &&
      parse_stop_wait(v, &o->stop_wait_ms) != 0) {
    env_complain(ASYNC_STOP_WAIT_VAR, v,
                 "not milliseconds from 1 to " STR(
                     ASYNC_STOP_WAIT_MAX_MS) ", nor forever",
                 STR(TRAIL_STOP_WAIT_DEFAULT_MS));
    bad++;
  }
  return bad;
}

/*
 * Starts the writer with o. A queue size the writer refuses is reported and
 * the default tried instead: a wrong size should not also cost the
 * asynchronous writes. A writer that cannot start leaves the writes
 * synchronous. Returns the number of problems reported.
 */
static int async_start_from_env(const char *var, trail_async_options *o) {
  int bad = 0;
  int rc = trail_async_start(o);
  if (rc == TRAIL_ERANGE && o->queue_size != 0) {
    env_complain(ASYNC_QUEUE_VAR, getenv(ASYNC_QUEUE_VAR),
                 "too small for 4 lines of the maximum length, or above 1024m",
                 ASYNC_QUEUE_DEFAULT);
    bad++;
    o->queue_size = 0;
    rc = trail_async_start(o);
  }
  if (rc != 0 && rc != -EALREADY) {
    fprintf(stderr,
            "trail: %s=1: cannot start the writer: %s; "
            "using synchronous writes\n",
            var, trail_strerror(rc));
    bad++;
  }
  return bad;
}

/*
 * TRAIL_ASYNC=1 starts the writer with TRAIL_ASYNC_OVERFLOW,
 * TRAIL_ASYNC_QUEUE and TRAIL_ASYNC_STOP_WAIT; a bad one is reported and
 * its default used.
 */
static int env_async(const char *var, const char *v) {
  int on = 0;
  if (parse_bool(v, &on) != 0) {
    env_complain(var, v, NOT_A_BOOLEAN, "synchronous writes");
    return 1;
  }
  if (!on)
    return 0;
  trail_async_options o = {.queue_size = 0, .overflow = TRAIL_OVERFLOW_BLOCK};
  int bad = async_options_from_env(&o);
  return bad + async_start_from_env(var, &o);
}

/*
 * The TRAIL_* variables, in the order they are applied: every variable the
 * library and its adapters read, and the only list of them, which is also
 * what an unknown name is checked against. A variable without an apply
 * function is read by another's (TRAIL_ASYNC's options). TRAIL_FIELDS comes
 * after TRAIL_REDACT, whose list its values are checked against. TRAIL_ASYNC
 * comes last because the writer it starts checks its queue and sizes its
 * buffers against the line maximum, which TRAIL_MAX_LINE may have changed.
 * TRAIL_ROTATE, which rotates the file of TRAIL_OUTPUT, may follow it: the
 * writer takes the new sink with its next batch.
 */
static const struct env_var {
  const char *name;
  int (*apply)(const char *var, const char *value);
} env_vars[] = {
    {"TRAIL_SERVICE", env_service},   {"TRAIL_LEVEL", env_level},
    {"TRAIL_OUTPUT", env_output},     {"TRAIL_CALLER", env_caller},
    {"TRAIL_MAX_LINE", env_max_line}, {"TRAIL_SAMPLING", env_sampling},
    {"TRAIL_REDACT", env_redact},     {"TRAIL_FIELDS", env_fields},
    {"TRAIL_ASYNC", env_async},       {ASYNC_OVERFLOW_VAR, NULL},
    {ASYNC_QUEUE_VAR, NULL},          {ASYNC_STOP_WAIT_VAR, NULL},
    {"TRAIL_ROTATE", env_rotate},     {"TRAIL_BUFFER", env_buffer},
};
#define NENV_VARS (sizeof env_vars / sizeof env_vars[0])

/* ---- unknown variables ------------------------------------------------- */

/* The prefix of the library's variables, matched in any case. */
#define ENV_PREFIX "TRAIL_"
/* Names this project's own test suite sets for the programs it runs: never
 * reported (docs/configuration.md, "Unknown variables"). */
#define TEST_PREFIX "TRAIL_TEST_"
/* How far (in edits) a name may be from a known one to be suggested. */
#define NEAR_MAX 2
/* Names longer than this are never near a known one. */
#define NEAR_NAME_MAX 64

/*
 * The Levenshtein distance of a[0..na) and b[0..nb), letters compared
 * without case (a lowercase trail_level is a mistake too), or NEAR_MAX + 1
 * when it is larger than NEAR_MAX.
 */
static size_t edit_distance(const char *a, size_t na, const char *b,
                            size_t nb) {
  if (na > NEAR_NAME_MAX || nb > NEAR_NAME_MAX ||
      (na > nb ? na - nb : nb - na) > NEAR_MAX)
    return NEAR_MAX + 1;
  size_t row[NEAR_NAME_MAX + 1];
  for (size_t j = 0; j <= nb; j++)
    row[j] = j;
  for (size_t i = 1; i <= na; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= nb; j++) {
      size_t up = row[j];
      size_t sub = diag + (strncasecmp(a + i - 1, b + j - 1, 1) != 0);
      size_t del = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
      row[j] = sub < del ? sub : del;
      diag = up;
    }
  }
  return row[nb] > NEAR_MAX ? NEAR_MAX + 1 : row[nb];
}

/* The known variable nearest to name[0..n), or NULL when none is near. */
static const char *nearest_known(const char *name, size_t n) {
  const char *best = NULL;
  size_t best_d = NEAR_MAX + 1;
  for (size_t i = 0; i < NENV_VARS; i++) {
    const char *k = env_vars[i].name;
    size_t d = edit_distance(name, n, k, strlen(k));
    if (d < best_d) {
      best = k;
      best_d = d;
    }
  }
  return best;
}

static int known_var(const char *name, size_t n) {
  for (size_t i = 0; i < NENV_VARS; i++)
    if (strlen(env_vars[i].name) == n && memcmp(env_vars[i].name, name, n) == 0)
      return 1;
  return 0;
}

/*
 * One line on stderr for each variable of env ("NAME=value" strings, NULL
 * ended) whose name starts with TRAIL_, in any case, and that the library
 * does not read, naming the nearest known variable when one is near.
 */
void trail__env_check_names(char *const *env) {
  for (; env != NULL && *env != NULL; env++) {
    const char *e = *env;
    size_t n = strcspn(e, "=");
    if (n < sizeof ENV_PREFIX - 1 ||
        strncasecmp(e, ENV_PREFIX, sizeof ENV_PREFIX - 1) != 0 ||
        strncmp(e, TEST_PREFIX, sizeof TEST_PREFIX - 1) == 0 || known_var(e, n))
      continue;
    const char *near = nearest_known(e, n);
    if (near != NULL)
      fprintf(stderr, "trail: unknown variable %.*s, did you mean %s?\n",
              (int)(n > TRAIL__NAME_MAX ? TRAIL__NAME_MAX : n), e, near);
    else
      fprintf(stderr, "trail: unknown variable %.*s\n",
              (int)(n > TRAIL__NAME_MAX ? TRAIL__NAME_MAX : n), e);
  }
}

/* The environment's names are checked once per process, at the first read. */
static int names_checked;

/*
 * Applies every TRAIL_* variable that is set. Returns the number of
 * variables that were rejected (each reported on stderr), 0 when all were
 * good or unset. Unknown TRAIL_* names are reported, once per process, and
 * not counted.
 */
TRAIL_API int trail_config_from_env(void) {
  if (!__atomic_exchange_n(&names_checked, 1, __ATOMIC_RELAXED))
    trail__env_check_names(environ);
  int bad = 0;
  for (size_t i = 0; i < NENV_VARS; i++) {
    const char *v = getenv(env_vars[i].name);
    if (v != NULL && env_vars[i].apply != NULL)
      bad += env_vars[i].apply(env_vars[i].name, v);
  }
  return bad;
}

/*
 * Names the service and applies the environment. An invalid service
 * argument is an error for the caller (a programming mistake); an invalid
 * environment variable is the operator's, reported on stderr and skipped.
 */
TRAIL_API int trail_init(const char *service) {
  int rc = 0;
  if (service != NULL)
    rc = trail_service_set(service);
  trail_config_from_env();
  return rc;
}

TRAIL_API int trail_flush(void) {
  trail__sample_report_all();
  return trail__async_flush();
}

/*
 * Back to the state before any configuration: sinks trail opened are
 * closed, stdout is the output, levels and settings are the defaults. Named
 * loggers stay valid. No other thread may log during this call.
 */
TRAIL_API void trail_shutdown(void) {
  trail__sample_report_all();
  trail_sampling_set(0, 0);
  trail_async_stop();
  trail__config_lock();
  trail__samplers_free_retired_locked();
  trail__config_unlock();
  trail__config_lock();
  trail__conf_reset_locked();
  trail__buffer_reset_locked();
  trail__level_spec deflt = {.deflt = TRAIL_LEVEL_INFO};
  trail__loggers_apply_spec_locked(&deflt);
  trail__config_unlock();
  trail_caller_set(false);
  trail_max_line_set(TRAIL__MAX_LINE_DEFAULT);
}

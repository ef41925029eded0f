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

/*
 * Replaces every sink by one: "stdout", "stderr" or a file path. The new
 * sink is opened before anything is replaced, so a path that cannot be
 * opened leaves the output as it was.
 */
TRAIL_API int trail_output_set(const char *spec, trail_config_error *err) {
  if (spec == NULL || spec[0] == '\0') {
    trail__config_error(err, TRAIL_EINVAL_SPEC, "trail_output_set",
                        "empty output (accepted: stdout, stderr or a path)");
    return TRAIL_EINVAL_SPEC;
  }
  trail__sink *s = NULL;
  int rc = 0;
  if (strcmp(spec, "stdout") == 0)
    s = trail__sink_new_fd(1, TRAIL_LEVEL_TRACE);
  else if (strcmp(spec, "stderr") == 0)
    s = trail__sink_new_fd(2, TRAIL_LEVEL_TRACE);
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
  for (size_t i = 0; i < 4; i++) {
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

/*
 * TRAIL_ASYNC=1 starts the writer with TRAIL_ASYNC_OVERFLOW (block, drop)
 * and TRAIL_ASYNC_QUEUE (bytes, k or m); a bad one is reported and its
 * default used. Returns the number of variables rejected.
 */
static int async_from_env(void) {
  int bad = 0;
  const char *v = getenv("TRAIL_ASYNC");
  int on = 0;
  if (v == NULL)
    return 0;
  if (parse_bool(v, &on) != 0) {
    env_complain("TRAIL_ASYNC", v,
                 "not a boolean (accepted: 1, 0, true, false, yes, no, on, "
                 "off)",
                 "synchronous writes");
    return 1;
  }
  if (!on)
    return 0;
  trail_async_options o = {.queue_size = 0, .overflow = TRAIL_OVERFLOW_BLOCK};
  if ((v = getenv("TRAIL_ASYNC_OVERFLOW")) != NULL) {
    if (strcasecmp(v, "drop") == 0)
      o.overflow = TRAIL_OVERFLOW_DROP;
    else if (strcasecmp(v, "block") != 0) {
      env_complain("TRAIL_ASYNC_OVERFLOW", v,
                   "unknown policy (accepted: block, drop)", "block");
      bad++;
    }
  }
  if ((v = getenv("TRAIL_ASYNC_QUEUE")) != NULL) {
    size_t n;
    if (parse_size(v, &n) != 0 || n == 0) {
      env_complain("TRAIL_ASYNC_QUEUE", v,
                   "not a size (bytes, or with suffix k or m)", "2m");
      bad++;
    } else {
      o.queue_size = n;
    }
  }
  int rc = trail_async_start(&o);
  if (rc == TRAIL_ERANGE && o.queue_size != 0) {
    env_complain("TRAIL_ASYNC_QUEUE", getenv("TRAIL_ASYNC_QUEUE"),
                 "too small for 4 lines of the maximum length, or above 1024m",
                 "2m");
    bad++;
    o.queue_size = 0;
    rc = trail_async_start(&o);
  }
  if (rc != 0 && rc != -EALREADY) {
    fprintf(stderr,
            "trail: TRAIL_ASYNC=1: cannot start the writer: %s; "
            "using synchronous writes\n",
            trail_strerror(rc));
    bad++;
  }
  return bad;
}

/*
 * Applies every TRAIL_* variable that is set. Returns the number of
 * variables that were rejected (each reported on stderr), 0 when all were
 * good or unset.
 */
TRAIL_API int trail_config_from_env(void) {
  int bad = 0;
  const char *v;
  trail_config_error err;

  if ((v = getenv("TRAIL_SERVICE")) != NULL) {
    if (trail_service_set(v) != 0) {
      char using[160];
      snprintf(using, sizeof using, "\"%s\"", trail_service());
      env_complain("TRAIL_SERVICE", v,
                   "not a valid service name (1 to 128 printable ASCII "
                   "characters, no space, quote, backslash, comma or '=')",
                   using);
      bad++;
    }
  }
  if ((v = getenv("TRAIL_LEVEL")) != NULL) {
    trail__level_spec spec;
    if (trail__level_spec_parse(v, &spec, &err, "TRAIL_LEVEL") != 0) {
      char using[32];
      snprintf(using, sizeof using, "\"%s\"",
               trail_level_name(trail_logger_level(NULL)));
      env_complain("TRAIL_LEVEL", v, err.text, using);
      bad++;
    } else {
      trail__config_lock();
      trail__loggers_apply_spec_locked(&spec);
      trail__config_unlock();
    }
  }
  if ((v = getenv("TRAIL_OUTPUT")) != NULL) {
    if (trail_output_set(v, &err) != 0) {
      char what[400];
      snprintf(what, sizeof what, "%s (accepted: stdout, stderr or a path)",
               v[0] ? err.text : "empty value");
      env_complain("TRAIL_OUTPUT", v, what, current_output());
      bad++;
    }
  }
  if ((v = getenv("TRAIL_CALLER")) != NULL) {
    int on;
    if (parse_bool(v, &on) != 0) {
      env_complain("TRAIL_CALLER", v,
                   "not a boolean (accepted: 1, 0, true, false, yes, no, on, "
                   "off)",
                   __atomic_load_n(&trail__caller_on, __ATOMIC_RELAXED) ? "1"
                                                                        : "0");
      bad++;
    } else {
      trail_caller_set(on);
    }
  }
  if ((v = getenv("TRAIL_MAX_LINE")) != NULL) {
    size_t n;
    if (parse_size(v, &n) != 0 || trail_max_line_set(n) != 0) {
      char using[32];
      snprintf(using, sizeof using, "%zu", trail_max_line());
      env_complain("TRAIL_MAX_LINE", v,
                   "not a size from 2048 to 16M (bytes, or with suffix k or "
                   "m)",
                   using);
      bad++;
    }
  }
  if ((v = getenv("TRAIL_SAMPLING")) != NULL) {
    unsigned long first = 0, after = 0;
    char *end = (char *)v;
    int ok = v[0] >= '0' && v[0] <= '9';
    errno = 0;
    if (ok)
      first = strtoul(v, &end, 10);
    if (ok && *end == ',') {
      ok = end[1] >= '0' && end[1] <= '9';
      if (ok)
        after = strtoul(end + 1, &end, 10);
    }
    if (!ok || errno != 0 || *end != '\0' || first > UINT32_MAX ||
        after > UINT32_MAX) {
      env_complain("TRAIL_SAMPLING", v,
                   "not FIRST or FIRST,THEREAFTER (events per second and "
                   "message: e.g. 100,100; 0 turns sampling off)",
                   "the current sampling");
      bad++;
    } else {
      trail_sampling_set((uint32_t)first, (uint32_t)after);
    }
  }
  if ((v = getenv("TRAIL_REDACT")) != NULL) {
    if (trail_redact_set(v, &err) != 0) {
      env_complain("TRAIL_REDACT", v, err.text, "the current keys");
      bad++;
    }
  }
  bad += async_from_env();
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
  trail__level_spec deflt = {.deflt = TRAIL_LEVEL_INFO};
  trail__loggers_apply_spec_locked(&deflt);
  trail__config_unlock();
  trail_caller_set(false);
  trail_max_line_set(TRAIL__MAX_LINE_DEFAULT);
}

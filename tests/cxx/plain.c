/*
 * Every logging macro and every field type of trail.h, in one program that
 * is both C and C++: tests/check_cxx.sh builds it as C with the C compiler
 * and as C++ with g++ and clang++, and compares their lines field by field
 * (only "timestamp" differs). The ids are fixed so that the lines are the
 * same from run to run; "caller" is on, so that __FILE__ and __LINE__ are
 * compared too.
 *
 * Exits 1 when an argument of a disabled level was evaluated, or a setup
 * call failed. The last line says how many lines came before it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <trail.h>

#ifdef __cplusplus
#include <string>
#endif

static int evaluated; /* arguments of disabled levels that ran */

static int touch(void) { return ++evaluated; }

static int setup(trail_logger *lg) {
  if (lg == NULL || trail_service_set("check-cxx") != 0 ||
      trail_output_set("stdout", NULL) != 0)
    return -1;
  trail_caller_set(true);
  return trail_logger_set_level(lg, TRAIL_LEVEL_TRACE);
}

static void log_levels(trail_logger *lg) {
  trail_trace(lg, "trace line");
  trail_debug(lg, "debug line", TRAIL_INT("n", 1));
  trail_info(lg, "info line", TRAIL_INT("n", 2));
  trail_warn(lg, "warn line", TRAIL_INT("n", 3), TRAIL_ERRNO(ENOENT));
  trail_warn(lg, TRAIL_MSGF("order %d failed", 42),
             TRAIL_STRF("sku", "%s-%04d", "eu", 7));
  trail_error(lg, "error line", TRAIL_INT("n", 4));
  trail_fatal(lg, "fatal line", TRAIL_INT("n", 5));
  trail_info(lg, "100% data, not a %s format");
}

static void log_formats(trail_logger *lg) {
  trail_tracef(lg, "trace %d", 1);
  trail_debugf(lg, "debug %s", "two");
  trail_infof(lg, "info %u", 3u);
  trail_warnf(lg, "warn %.1f", 4.5);
  trail_errorf(lg, "error %c", 'x');
  trail_fatalf(lg, "fatal %ld", -6L);
}

static void log_fields(trail_logger *lg) {
  static const char nul_bytes[] = {'a', '\0', 'b'};
  json_t *obj = json_pack("{s:i, s:[s, b]}", "id", 42, "tags", "x", 1);
  const trail_field made = TRAIL_BOOL("made_before", 0);
  trail_info(lg, "every kind", TRAIL_STR("str", "text \"quoted\"\n"),
             TRAIL_STR("null_str", NULL),
             TRAIL_STRN("strn", nul_bytes, sizeof nul_bytes),
             TRAIL_STRN("strn_nts", "whole", TRAIL_NTS),
             TRAIL_INT("int", INT64_MIN), TRAIL_INT("small", -7),
             TRAIL_UINT("uint", UINT64_MAX), TRAIL_DOUBLE("double", 0.1),
             TRAIL_DOUBLE("whole_double", 3), TRAIL_BOOL("yes", 1),
             TRAIL_BOOL("no", 0), TRAIL_JSON("json", obj),
             TRAIL_JSON("json_null", NULL), made);
  json_decref(obj);
}

static int log_ctx(trail_logger *lg) {
  trail_ctx ctx;
  trail_ctx_clear(&ctx);
  if (trail_ctx_set_request_id(&ctx, "req-cxx-1") != 0 ||
      trail_ctx_set_user_id(&ctx, "user-4711") != 0 ||
      trail_ctx_set_trace_id(&ctx, "4bf92f3577b34da6a3ce929d0e0e4736") != 0 ||
      trail_ctx_set_span_id(&ctx, "00f067aa0ba902b7") != 0 ||
      trail_ctx_bind(&ctx, TRAIL_STR("tenant", "acme"), TRAIL_INT("shard", 7)))
    return -1;
  trail_ctx *prev = trail_ctx_enter(&ctx);
  trail_info(lg, "inside the context", TRAIL_STR("step", "entered"));
  trail_infof(lg, "inside the context, %s", "formatted");
  trail_ctx_leave(prev);
  trail_ctx_trace(&ctx, lg, "ctx trace");
  trail_ctx_debug(&ctx, lg, "ctx debug", TRAIL_INT("n", 1));
  trail_ctx_info(&ctx, lg, "ctx info", TRAIL_INT("n", 2));
  trail_ctx_warn(&ctx, lg, "ctx warn", TRAIL_INT("n", 3));
  trail_ctx_error(&ctx, lg, "ctx error", TRAIL_INT("n", 4));
  trail_ctx_fatal(&ctx, lg, "ctx fatal", TRAIL_INT("n", 5));
  return 0;
}

static int log_child(trail_logger *lg) {
  trail_logger *child = trail_logger_child(lg, TRAIL_STR("component", "child"),
                                           TRAIL_UINT("generation", 2));
  if (child == NULL)
    return -1;
  trail_info(child, "from the child", TRAIL_BOOL("bound_too", 1));
  trail_warnf(child, "from the child, %s", "formatted");
  trail_logger_free(child);
  return 0;
}

/* One call site (one "caller"), its arguments made by each language. */
static void log_language_line(trail_logger *lg, const char *who, size_t len,
                              int n) {
  trail_info(lg, "language", TRAIL_STR("who", who),
             TRAIL_STRN("who_n", who, len), TRAIL_INT("n", n));
}

#ifdef __cplusplus
static void log_language(trail_logger *lg) {
  const std::string who = "one source, two languages";
  auto emit = [&](int n) { log_language_line(lg, who.c_str(), who.size(), n); };
  emit(1);
}
#else
static void log_language(trail_logger *lg) {
  const char *who = "one source, two languages";
  log_language_line(lg, who, strlen(who), 1);
}
#endif

/* Below its logger's level: no argument may be evaluated. */
static int log_disabled(void) {
  trail_logger *quiet = trail_logger_get("check.quiet");
  trail_ctx ctx;
  trail_ctx_clear(&ctx);
  if (trail_logger_set_level(quiet, TRAIL_LEVEL_WARN) != 0)
    return -1;
  trail_trace(quiet, "skipped", TRAIL_INT("n", touch()));
  trail_debug(quiet, "skipped", TRAIL_STR("s", touch() ? "a" : "b"));
  trail_info(quiet, "skipped", TRAIL_DOUBLE("d", touch()));
  trail_infof(quiet, "skipped %d", touch());
  trail_ctx_info(&ctx, quiet, "skipped", TRAIL_BOOL("b", touch()));
  if (evaluated != 0) {
    fprintf(stderr, "plain: %d arguments of disabled levels ran\n", evaluated);
    return -1;
  }
  trail_warn(quiet, "kept", TRAIL_INT("evaluated", touch()));
  return evaluated == 1 ? 0 : -1;
}

static uint64_t lines_written(void) {
  trail_counters c;
  uint64_t n = 0;
  trail_counters_get(&c);
  for (int i = 0; i < TRAIL_LEVEL_COUNT; i++)
    n += c.events[i];
  return n;
}

int main(void) {
  trail_logger *lg = trail_logger_get("check.cxx");
  if (setup(lg) != 0)
    return 1;
  log_levels(lg);
  log_formats(lg);
  log_fields(lg);
  if (log_ctx(lg) != 0 || log_child(lg) != 0)
    return 1;
  log_language(lg);
  if (log_disabled() != 0)
    return 1;
  trail_info(NULL, "done", TRAIL_UINT("lines", lines_written()));
  trail_shutdown();
  return 0;
}

/*
 * TRAIL_MIN_LEVEL from C or C++: built with -DTRAIL_MIN_LEVEL=TRAIL_LEVEL_INFO
 * by tests/check_cxx.sh, the trace and debug calls compile to nothing, so
 * their arguments never run even with the logger at trace; exits 0 only then
 * (and when the info call, which stays, did run its argument).
 */
#include <trail.h>

static int evaluated;

static int touch(void) { return ++evaluated; }

int main(void) {
  trail_logger *lg = trail_logger_get("check.min_level");
  trail_output_set("/dev/null", NULL);
  trail_logger_set_level(lg, TRAIL_LEVEL_TRACE);
  trail_trace(lg, "compiled out", TRAIL_INT("x", touch()));
  trail_debug(lg, "compiled out", TRAIL_STR("s", touch() ? "a" : "b"));
  trail_tracef(lg, "compiled out %d", touch());
  trail_ctx_debug(NULL, lg, "compiled out", TRAIL_BOOL("b", touch()));
  trail_info(lg, "kept", TRAIL_INT("x", touch()));
  trail_shutdown();
  return evaluated == 1 ? 0 : 1;
}

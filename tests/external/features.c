/*
 * A program outside the tree that uses, through the installed <trail.h>
 * only, what users asked for most: a formatted message and string field with
 * fields (TRAIL_MSGF, TRAIL_STRF), TRAIL_ERRNO, trail_now_ns() and
 * TRAIL_DURATION_MS, process fields (trail_fields_set), request-scoped
 * buffering (trail_ctx_buffer, _flush, _end), rotation by size
 * (trail_sink_add_file_rotating) and reopening on a signal
 * (trail_reopen_on_signal). Its stdout lines are checked by check_lines.py
 * (kind "features"); the rotated files it checks itself, in the directory
 * $TRAIL_TEST_FEATURES_DIR.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <trail.h>

/* Lines in path that are whole (end in "}\n"); -1 when it cannot be read. */
static int whole_lines(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    size_t len = strlen(line);
    if (len < 2 || strcmp(line + len - 2, "}\n") != 0) {
      fclose(f);
      return -1;
    }
    n++;
  }
  fclose(f);
  return n;
}

/* 30 lines into dir/app.log rotated at 1 KiB, 1000 kept: all whole. */
static int rotation(const char *dir) {
  char path[4096], old[4200];
  snprintf(path, sizeof path, "%s/app.log", dir);
  trail_logger *lg = trail_logger_get("rotated");
  trail_logger_set_level(lg, TRAIL_LEVEL_INFO);
  if (trail_sink_add_file_rotating(path, TRAIL_LEVEL_INFO, 1024, 1000) < 0 ||
      trail_reopen_on_signal(SIGHUP) != 0)
    return 1;
  for (int i = 0; i < 30; i++)
    trail_info(lg, "rotated line", TRAIL_INT("i", i));
  int total = 0;
  for (int k = 0; k <= 1000; k++) {
    if (k > 0)
      snprintf(old, sizeof old, "%s.%d", path, k);
    int n = whole_lines(k > 0 ? old : path);
    if (n < 0)
      break;
    total += n;
  }
  raise(SIGHUP); /* reopens before the next line: the file is there */
  return total == 30 ? 0 : 1;
}

int main(void) {
  const char *dir = getenv("TRAIL_TEST_FEATURES_DIR");
  if (dir == NULL || trail_init("external-features") != 0)
    return 1;
  trail_field pf[] = {TRAIL_STR("version", "1.4.2")};
  if (trail_fields_set(pf, 1) != 0)
    return 1;
  trail_logger *lg = trail_logger_get("orders");
  int64_t start = trail_now_ns();
  trail_warn(lg, TRAIL_MSGF("order %d failed", 7), TRAIL_STR("reason", "card"),
             TRAIL_STRF("who", "%s-%d", "user", 3), TRAIL_ERRNO(ENOENT),
             TRAIL_DURATION_MS("took_ms", start));

  trail_ctx ok, failed;
  trail_ctx_init(&ok);
  trail_ctx_init(&failed);
  if (trail_ctx_buffer(&ok, TRAIL_LEVEL_DEBUG, 4096) != 0 ||
      trail_ctx_buffer(&failed, TRAIL_LEVEL_DEBUG, 4096) != 0)
    return 1;
  trail_ctx *prev = trail_ctx_enter(&ok);
  trail_debug(lg, "kept, then dropped");
  trail_ctx_enter(&failed);
  trail_debug(lg, "kept, then written", TRAIL_INT("step", 1));
  trail_error(lg, "request failed");
  trail_ctx_leave(prev);
  trail_ctx_buffer_end(&ok);
  trail_ctx_buffer_end(&failed);
  int rc = rotation(dir);
  trail_shutdown();
  return rc;
}

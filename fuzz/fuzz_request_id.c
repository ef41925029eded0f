/*
 * Fuzz target: the X-Request-ID check, trail_request_id_check(), and the
 * context setter built on it.
 *
 * The whole input is the id. Checks:
 *
 * - trail_request_id_check(id, len) accepts exactly 1 to 128 bytes of
 *   [A-Za-z0-9._:-], by a reference written here; a NUL byte inside is an
 *   invalid character, not the end;
 * - trail_ctx_set_request_id() takes the id as a C string (up to its first
 *   NUL) by the same rule, keeps it exactly when valid, and leaves the
 *   context as it was otherwise;
 * - a context holding the id writes it into a line as the request_id
 *   value, unchanged, through the capture sink.
 */
#include <string.h>

#include "common.h"

/* The id rule of include/trail.h, character by character. */
static int reference(const uint8_t *p, size_t n) {
  if (n < 1 || n > TRAIL_REQUEST_ID_MAX)
    return -1;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
          c == '-'))
      return -1;
  }
  return 0;
}

static int initialized;

/*
 * One id: the check on the raw bytes, then the setter on the C string, then
 * one line logged under the context when the setter took it.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!initialized) {
    fz_capture_install();
    initialized = 1;
  }
  int rc = trail_request_id_check((const char *)data, size);
  int ref = reference(data, size);
  FZ_CHECK(rc == 0 ? ref == 0 : (ref != 0 && rc == TRAIL_EINVAL_ID),
           "check returned %d, reference %d", rc, ref);

  const char *id = fz_strndup(data, size);
  size_t n = strlen(id);
  trail_ctx ctx, before;
  trail_ctx_init(&ctx);
  memcpy(&before, &ctx, sizeof ctx);
  int src = trail_ctx_set_request_id(&ctx, id);
  int sref = reference((const uint8_t *)id, n);
  FZ_CHECK((src == 0) == (sref == 0), "set returned %d, reference %d", src,
           sref);
  if (src != 0) {
    FZ_CHECK(memcmp(&ctx, &before, sizeof ctx) == 0,
             "a rejected id changed the context");
  } else {
    FZ_CHECK(strcmp(trail_ctx_request_id(&ctx), id) == 0,
             "the context holds another id");
    trail_ctx_log(&ctx, NULL, TRAIL_LEVEL_INFO, "id", NULL, 0);
    FZ_CHECK(fz_nlines == 1, "%zu lines", fz_nlines);
    fz_parsed p;
    fz_check_line(fz_lines[0].text, fz_lines[0].len, trail_max_line(), &p);
    json_t *v = json_object_get(p.root, "request_id");
    FZ_CHECK(v != NULL && strcmp(json_string_value(v), id) == 0,
             "the line's request_id is not the id");
    json_decref(p.root);
  }
  fz_capture_reset();
  fz_arena_free();
  return 0;
}

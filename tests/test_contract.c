/*
 * The contract's keys are spelt once (lib/contract.h). This test holds that
 * list to the JSON Schema users validate against (same keys, same order),
 * to the reserved-key rule (every one reserved), and to what a real line
 * carries (the keys of a full line, in the list's order).
 */
#define _GNU_SOURCE
#include "contract.h"
#include "internal.h"
#include "support.h"

#define NAME(key) key,
static const char *const keys[] = {TRAIL__CONTRACT_KEYS(NAME)};
#define NKEYS (sizeof keys / sizeof keys[0])

static void test_schema_has_the_keys_in_order(void **state) {
  (void)state;
  char path[512];
  snprintf(path, sizeof path, "%s/docs/log-line.schema.json",
           getenv("TRAIL_TEST_SOURCE_DIR"));
  json_error_t e;
  json_t *schema = json_load_file(path, JSON_PRESERVE_ORDER, &e);
  assert_non_null(schema);
  json_t *props = json_object_get(schema, "properties");
  const char *k;
  json_t *v;
  size_t i = 0;
  json_object_foreach(props, k, v) {
    if (i < NKEYS)
      assert_string_equal(k, keys[i]);
    i++;
  }
  assert_true(i >= NKEYS);
  json_decref(schema);
}

static void test_every_key_is_reserved(void **state) {
  (void)state;
  for (size_t i = 0; i < NKEYS; i++)
    assert_true(trail__key_reserved(keys[i], strlen(keys[i])));
  assert_false(trail__key_reserved("levels", 6));
  assert_false(trail__key_reserved("trace", 5));
}

static void test_a_full_line_in_list_order(void **state) {
  (void)state;
  trail_init("contract");
  cap_start(TRAIL_LEVEL_TRACE);
  assert_int_equal(trail_max_line_set(2048), 0);
  trail_caller_set(true);
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  static const char tp[] =
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  assert_int_equal(trail_ctx_set_traceparent(&ctx, tp, TRAIL__LIT_LEN(tp)), 0);
  trail_ctx_set_request_id(&ctx, "req-1");
  trail_ctx_set_user_id(&ctx, "user-1");
  /* kept back below the level, then written: marked buffered */
  assert_int_equal(trail_levels_set("info", NULL), 0);
  assert_int_equal(trail_ctx_buffer(&ctx, TRAIL_LEVEL_DEBUG, 8192), 0);
  trail_ctx *prev = trail_ctx_enter(&ctx);
  char big[4096];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  trail_debug(NULL, big); /* cut: truncated ends the line */
  trail_ctx_leave(prev);
  trail_ctx_buffer_flush(&ctx);
  trail_ctx_buffer_end(&ctx);
  assert_int_equal(cap_count(), 1);
  json_t *j = cap_json(0);
  json_decref(j);
  /* The keys in the order the text has them. */
  const char *p = cap_text(0);
  size_t at = 0;
  for (size_t i = 0; i < NKEYS; i++) {
    char want[32];
    snprintf(want, sizeof want, "\"%s\":", keys[i]);
    const char *hit = strstr(p + at, want);
    assert_non_null(hit);
    at = (size_t)(hit - p) + strlen(want);
  }
  cap_stop();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_schema_has_the_keys_in_order),
      cmocka_unit_test(test_every_key_is_reserved),
      cmocka_unit_test(test_a_full_line_in_list_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Redaction (lib/redact.c): values of sensitive keys written as
 * "[REDACTED]" in event fields, bound fields and json_t objects, matched
 * case-insensitively; the list configurable by API and environment.
 */
#include "support.h"

static int setup(void **state) {
  (void)state;
  trail_init("redact-test");
  cap_start(TRAIL_LEVEL_TRACE);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cap_stop();
  return 0;
}

/* The default list, any case, every field kind, renamed keys too. */
static void test_default_list(void **state) {
  (void)state;
  trail_info(NULL, "login", TRAIL_STR("user", "alice"),
             TRAIL_STR("password", "hunter2"), TRAIL_STR("Token", "abc"),
             TRAIL_INT("API_KEY", 1234), TRAIL_STR("Authorization", "Bearer x"),
             TRAIL_STR("cookie", "s=1"), TRAIL_STR("Set-Cookie", "s=2"),
             TRAIL_STR("secret", "s"), TRAIL_STR("passwd", "p"),
             TRAIL_STR("password", "again"), TRAIL_STR("passwords", "kept"));
  json_t *j = cap_json(0);
  assert_str_field(j, "user", "alice");
  const char *red[] = {"password",      "Token",  "API_KEY",
                       "Authorization", "cookie", "Set-Cookie",
                       "secret",        "passwd", "_password"};
  for (size_t i = 0; i < sizeof red / sizeof red[0]; i++)
    assert_str_field(j, red[i], "[REDACTED]");
  assert_str_field(j, "passwords", "kept");
  assert_null(strstr(cap_text_after_time(0), "hunter2"));
  assert_null(strstr(cap_text_after_time(0), "1234"));
  json_decref(j);
}

/* Bound to a logger or a context: redacted when bound. */
static void test_bound_fields(void **state) {
  (void)state;
  trail_logger *lg = trail_logger_child(NULL, TRAIL_STR("api_key", "k1"),
                                        TRAIL_STR("region", "eu"));
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  trail_ctx_bind(&ctx, TRAIL_STR("TOKEN", "t1"), TRAIL_STR("tenant", "acme"));
  trail_ctx *prev = trail_ctx_enter(&ctx);
  trail_info(lg, "m");
  trail_ctx_leave(prev);
  json_t *j = cap_json(0);
  assert_str_field(j, "api_key", "[REDACTED]");
  assert_str_field(j, "TOKEN", "[REDACTED]");
  assert_str_field(j, "region", "eu");
  assert_str_field(j, "tenant", "acme");
  json_decref(j);
  trail_logger_free(lg);
}

/* Inside json_t values, at any depth. */
static void test_json_values(void **state) {
  (void)state;
  json_t *body = json_pack("{s:s,s:{s:s,s:[{s:s}]},s:s}", "user", "bob", "auth",
                           "Password", "pw", "list", "token", "t", "note",
                           "password in a value is not a key");
  trail_info(NULL, "body", TRAIL_JSON("body", body));
  json_t *j = cap_json(0);
  json_t *b = json_object_get(j, "body");
  assert_string_equal(json_string_value(json_object_get(b, "user")), "bob");
  json_t *auth = json_object_get(b, "auth");
  assert_string_equal(json_string_value(json_object_get(auth, "Password")),
                      "[REDACTED]");
  json_t *item = json_array_get(json_object_get(auth, "list"), 0);
  assert_string_equal(json_string_value(json_object_get(item, "token")),
                      "[REDACTED]");
  assert_string_equal(json_string_value(json_object_get(b, "note")),
                      "password in a value is not a key");
  json_decref(j);
  json_decref(body);
}

/* A list of one's own; none; a bad list changes nothing. */
static void test_configured_lists(void **state) {
  (void)state;
  trail_config_error err;
  assert_int_equal(trail_redact_set(" ssn , card_number ", &err), 0);
  trail_info(NULL, "m", TRAIL_STR("SSN", "1"), TRAIL_STR("password", "p"),
             TRAIL_STR("card_number", "4111"));
  json_t *j = cap_json(0);
  assert_str_field(j, "SSN", "[REDACTED]");
  assert_str_field(j, "card_number", "[REDACTED]");
  assert_str_field(j, "password", "p");
  json_decref(j);

  assert_int_equal(trail_redact_set("bad key", &err), TRAIL_EINVAL_SPEC);
  assert_non_null(strstr(err.text, "bad key"));
  assert_int_equal(trail_redact_set("", &err), 0);
  trail_info(NULL, "m", TRAIL_STR("password", "p"));
  j = cap_json(1);
  assert_str_field(j, "password", "p");
  json_decref(j);

  assert_int_equal(trail_redact_set(NULL, &err), 0); /* the default again */
  setenv("TRAIL_REDACT", "pin", 1);
  assert_int_equal(trail_config_from_env(), 0);
  unsetenv("TRAIL_REDACT");
  trail_info(NULL, "m", TRAIL_STR("PIN", "1234"), TRAIL_STR("token", "t"));
  j = cap_json(2);
  assert_str_field(j, "PIN", "[REDACTED]");
  assert_str_field(j, "token", "t");
  json_decref(j);
}

/* The newest line, once the writer (if any) has written it. */
static json_t *last_line(void) {
  if (trail_async_running())
    assert_int_equal(trail_flush(), 0);
  assert_true(cap_count() > 0);
  return cap_json(cap_count() - 1);
}

/* The value a line gives key, as JSON text (to compare values whole). */
static char *value_text(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  assert_non_null(v);
  return json_dumps(v, JSON_ENCODE_ANY);
}

/*
 * A list that starts with '+' is the default list and its own keys; "+" is
 * the default list; a bad key after the '+' rejects the whole list.
 */
static void test_added_lists(void **state) {
  (void)state;
  trail_config_error err;
  assert_int_equal(trail_redact_set(" + ssn , PIN", &err), 0);
  trail_info(NULL, "m", TRAIL_STR("ssn", "1"), TRAIL_STR("pin", "2"),
             TRAIL_STR("token", "t"), TRAIL_STR("Set-Cookie", "c"),
             TRAIL_STR("+ssn", "3"), TRAIL_STR("user", "u"));
  json_t *j = cap_json(0);
  assert_str_field(j, "ssn", "[REDACTED]");
  assert_str_field(j, "pin", "[REDACTED]");
  assert_str_field(j, "token", "[REDACTED]");
  assert_str_field(j, "Set-Cookie", "[REDACTED]");
  assert_str_field(j, "+ssn", "3");
  assert_str_field(j, "user", "u");
  json_decref(j);

  assert_int_equal(trail_redact_set("+", &err), 0);
  trail_info(NULL, "m", TRAIL_STR("ssn", "1"), TRAIL_STR("password", "p"));
  j = cap_json(1);
  assert_str_field(j, "ssn", "1");
  assert_str_field(j, "password", "[REDACTED]");
  json_decref(j);

  assert_int_equal(trail_redact_set("+card,bad key", &err), TRAIL_EINVAL_SPEC);
  assert_non_null(strstr(err.text, "\"bad key\""));
  trail_info(NULL, "m", TRAIL_STR("card", "4111"), TRAIL_STR("secret", "s"));
  j = cap_json(2);
  assert_str_field(j, "card", "4111");
  assert_str_field(j, "secret", "[REDACTED]");
  json_decref(j);
  assert_int_equal(cap_count(), 3);
}

/* Bound in clear, then made sensitive: written as an event field would be. */
static void check_later_list(void) {
  trail_config_error err;
  assert_int_equal(trail_redact_set(NULL, &err), 0);
  trail_logger *parent = trail_logger_child(NULL, TRAIL_STR("card", "4111"),
                                            TRAIL_STR("region", "eu"));
  trail_logger *child = trail_logger_child(parent, TRAIL_STR("tier", "gold"));
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  trail_ctx_bind(&ctx, TRAIL_STR("card", "5500"), TRAIL_STR("tenant", "acme"));
  trail_info(child, "before");
  json_t *j = last_line();
  assert_str_field(j, "card", "4111");
  json_decref(j);
  trail_ctx_log(&ctx, NULL, TRAIL_LEVEL_INFO, "before", NULL, 0);
  j = last_line();
  assert_str_field(j, "card", "5500");
  json_decref(j);

  assert_int_equal(trail_redact_set("password,card", &err), 0);
  trail_info(NULL, "event", TRAIL_STR("card", "4111"));
  j = last_line();
  char *want = value_text(j, "card");
  json_decref(j);
  trail_logger *later = trail_logger_child(parent, TRAIL_STR("x", "y"));
  trail_logger *lgs[] = {parent, child, later};
  for (size_t i = 0; i < 3; i++) {
    trail_info(lgs[i], "after");
    j = last_line();
    char *got = value_text(j, "card");
    assert_string_equal(got, want);
    free(got);
    assert_str_field(j, "region", "eu");
    assert_null(strstr(cap_text_after_time(cap_count() - 1), "4111"));
    json_decref(j);
  }
  trail_ctx_log(&ctx, NULL, TRAIL_LEVEL_INFO, "after", NULL, 0);
  j = last_line();
  char *got = value_text(j, "card");
  assert_string_equal(got, want);
  free(got);
  assert_str_field(j, "tenant", "acme");
  json_decref(j);
  /* Binding more re-encodes the context under the list in force. */
  assert_int_equal(trail_ctx_bind(&ctx, TRAIL_STR("more", "1")), 0);
  assert_int_equal(trail_redact_set("", &err), 0);
  trail_ctx_log(&ctx, later, TRAIL_LEVEL_INFO, "list removed", NULL, 0);
  j = last_line();
  /* Encoded while sensitive: the value was never stored, it stays out. */
  assert_str_field(j, "card", "[REDACTED]");
  assert_str_field(j, "_card", "[REDACTED]");
  assert_str_field(j, "more", "1");
  json_decref(j);
  free(want);
  trail_logger_free(later);
  trail_logger_free(child);
  trail_logger_free(parent);
  assert_int_equal(trail_redact_set(NULL, &err), 0);
}

static void test_list_changed_after_binding(void **state) {
  (void)state;
  check_later_list();
}

/* The same with the writer thread encoding the lines. */
static void test_list_changed_after_binding_async(void **state) {
  (void)state;
  assert_int_equal(trail_async_start(NULL), 0);
  check_later_list();
  assert_int_equal(trail_async_stop(), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_default_list, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bound_fields, setup, teardown),
      cmocka_unit_test_setup_teardown(test_json_values, setup, teardown),
      cmocka_unit_test_setup_teardown(test_configured_lists, setup, teardown),
      cmocka_unit_test_setup_teardown(test_added_lists, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list_changed_after_binding, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_list_changed_after_binding_async,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

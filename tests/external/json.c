/*
 * A program outside the tree that logs a jansson value with TRAIL_JSON():
 * it calls jansson itself, and links with `pkg-config --libs trail` alone
 * (trail.pc requires jansson) or with trail::trail alone (which carries
 * jansson). check_install and check_package build it both ways and check
 * the one line it writes to stdout.
 */
#include <jansson.h>
#include <trail.h>

int main(void) {
  if (trail_init("external-json") != 0)
    return 1;
  json_t *v = json_pack("{s:i, s:[b, n]}", "a", 1, "b", 1);
  if (v == NULL)
    return 1;
  trail_info(NULL, "json", TRAIL_JSON("j", v));
  json_decref(v);
  trail_shutdown();
  return 0;
}

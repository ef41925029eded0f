/*
 * A program outside the tree: it sees only the installed <trail.h> and links
 * the installed library, the way a user's service does. check_install builds
 * it through pkg-config (shared and static) and through find_package(trail),
 * runs it, and checks the one line it writes to stdout.
 */
#include <trail.h>

int main(void) {
  if (trail_init("external-app") != 0)
    return 1;
  trail_info(NULL, "hello", TRAIL_STR("k", "v"), TRAIL_INT("n", 42));
  trail_shutdown();
  return 0;
}

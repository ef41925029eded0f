#!/usr/bin/env bash
# trail in a plugin: a shared object that links libtrail, loaded with
# dlopen() by a program that does not (a Python extension, a server module):
# - the plugin loads: libtrail's static TLS block is small enough for the
#   room glibc keeps for libraries loaded later (it was not, at 4 KiB);
# - the plugin starts the async writer and logs from the main thread and
#   from a thread of the program's; the program closes the plugin, then
#   that thread exits (running libtrail's thread-exit destructors) and the
#   program exits (running its atexit drain): libtrail is never unloaded
#   (-z nodelete), so nothing runs unmapped code, and the file holds every
#   line, each whole;
# - the same plugin linked with the static library loads and logs too.
#
# ctest: check_dlopen BUILD_DIR SOURCE_DIR, TRAIL_C_COMPILER,
# TRAIL_SHARED_LIB, TRAIL_STATIC_LIB and TRAIL_SANITIZE in the environment.
set -euo pipefail

build="$(cd "${1:?usage: check_dlopen.sh BUILD_DIR SOURCE_DIR}" && pwd)"
src="$(cd "${2:?usage: check_dlopen.sh BUILD_DIR SOURCE_DIR}" && pwd)"
cc="${TRAIL_C_COMPILER:-cc}"
shared="${TRAIL_SHARED_LIB:-$build/libtrail.so}"
static="${TRAIL_STATIC_LIB:-$build/libtrail.a}"
work="$build/check_dlopen"
rm -rf "$work"
mkdir -p "$work"
san=(${TRAIL_SANITIZE:+-fsanitize=$TRAIL_SANITIZE})
flags=(-std=c11 -Wall -Wextra -Werror -I"$src/include" "${san[@]}")
lines=100

cat >"$work/plugin.c" <<'C'
#include <trail.h>
int plugin_setup(const char *path) {
  trail_init("plugin");
  if (trail_output_set(path, NULL) != 0)
    return -1;
  return trail_async_start(NULL);
}
void plugin_log(const char *what, int i) {
  trail_info(NULL, what, TRAIL_INT("i", i));
}
C

cat >"$work/host.c" <<'C'
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void (*plugin_log)(const char *, int);
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int logged, released;

/* Logs through the plugin, then outlives it: its thread-exit destructors
 * (libtrail's) run after the dlclose. */
static void *host_thread(void *arg) {
  (void)arg;
  plugin_log("from a host thread", 0);
  pthread_mutex_lock(&m);
  logged = 1;
  pthread_cond_broadcast(&cv);
  while (!released)
    pthread_cond_wait(&cv, &m);
  pthread_mutex_unlock(&m);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 5)
    return 2;
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  int (*setup)(const char *) = (int (*)(const char *))dlsym(h, "plugin_setup");
  plugin_log = (void (*)(const char *, int))dlsym(h, "plugin_log");
  if (setup == NULL || plugin_log == NULL || setup(argv[2]) != 0)
    return 1;
  int n = atoi(argv[3]), closing = atoi(argv[4]);
  pthread_t t;
  if (pthread_create(&t, NULL, host_thread, NULL) != 0)
    return 1;
  pthread_mutex_lock(&m);
  while (!logged)
    pthread_cond_wait(&cv, &m);
  pthread_mutex_unlock(&m);
  for (int i = 1; i < n; i++)
    plugin_log("from the main thread", i);
  if (closing && dlclose(h) != 0)
    return 1;
  pthread_mutex_lock(&m);
  released = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&m);
  pthread_join(t, NULL);
  return 0; /* libtrail's atexit handler drains the queue */
}
C

# Every line parses, lines 0 .. n-1 each once, from the plugin's service.
check_log() { # FILE WHAT
  python3 - "$1" "$lines" "$2" <<'PY'
import json, sys
path, n, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(path, "rb").read()
if data and not data.endswith(b"\n"):
    sys.exit(f"check_dlopen: {what}: the last line is cut")
seen = []
for raw in data.splitlines():
    line = json.loads(raw)
    if line.get("service") != "plugin":
        sys.exit(f"check_dlopen: {what}: a line of another service: {raw!r}")
    seen.append(line["i"])
if sorted(seen) != list(range(n)):
    sys.exit(f"check_dlopen: {what}: {len(seen)} lines, not 0 .. {n - 1} once each")
PY
}

"$cc" "${flags[@]}" -fPIC -shared "$work/plugin.c" -o "$work/libplugin.so" \
  "$shared" -Wl,-rpath,"$(dirname "$shared")"
"$cc" "${flags[@]}" "$work/host.c" -o "$work/host" -ldl -pthread
if ! "$work/host" "$work/libplugin.so" "$work/shared.log" "$lines" 1 \
  2>"$work/host.err"; then
  cat "$work/host.err"
  echo "check_dlopen: the plugin linking libtrail.so failed to load, log or close"
  exit 1
fi
check_log "$work/shared.log" "libtrail.so, closed"

# The static library: its objects are position-independent, and a plugin
# built with them must be linked -z nodelete itself to be closed safely.
"$cc" "${flags[@]}" -fPIC -shared "$work/plugin.c" -o "$work/libplugin_a.so" \
  -Wl,-z,nodelete "$static" $(pkg-config --libs jansson uuid) -pthread
if ! "$work/host" "$work/libplugin_a.so" "$work/static.log" "$lines" 1 \
  2>"$work/host.err"; then
  cat "$work/host.err"
  echo "check_dlopen: the plugin linking libtrail.a failed to load, log or close"
  exit 1
fi
check_log "$work/static.log" "libtrail.a, closed"
echo "check_dlopen: a plugin linking libtrail (shared or static) loads, logs and closes"

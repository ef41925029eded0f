/*
 * Test support for tests that work with files: a private temporary
 * directory per test, paths inside it, reading a whole file, and sending
 * stdout or stderr to a file for a while. Header-only, like support.h.
 */
#ifndef TRAIL_TEST_FILES_H
#define TRAIL_TEST_FILES_H

#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];

/* Removes dir and everything below it (made writable first). */
static inline void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      char p[PATH_MAX];
      if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
        continue;
      struct stat st;
      if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
        chmod(p, 0700);
        remove_tree(p);
      } else {
        unlink(p);
      }
    }
    closedir(d);
  }
  rmdir(dir);
}

/* Makes a fresh tmpdir, /tmp/trail-<name>-XXXXXX. */
static inline void tmpdir_make(const char *name) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/trail-%s-XXXXXX", name);
  assert_non_null(mkdtemp(tmpdir));
}

/* tmpdir/name into out. */
static inline void tmp_path(char *out, size_t size, const char *name) {
  int n = snprintf(out, size, "%s/%s", tmpdir, name);
  assert_true(n > 0 && (size_t)n < size);
}

/* Every byte a descriptor gives until end of file, NUL-terminated, in a
 * malloc'd buffer; *len its size (len may be NULL). */
static inline char *read_all_fd(int fd, size_t *len) {
  size_t size = 4096, n = 0;
  char *buf = malloc(size);
  assert_non_null(buf);
  for (;;) {
    if (n + 1 == size) {
      size *= 2;
      buf = realloc(buf, size);
      assert_non_null(buf);
    }
    ssize_t r = read(fd, buf + n, size - n - 1);
    if (r < 0 && errno == EINTR)
      continue;
    assert_true(r >= 0);
    if (r == 0)
      break;
    n += (size_t)r;
  }
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

/* The whole file, as read_all_fd(). */
static inline char *read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail_msg("cannot open %s: %s", path, strerror(errno));
  char *buf = read_all_fd(fd, len);
  close(fd);
  return buf;
}

/* Sends descriptor target (1 or 2) to path until redirect_end(). */
typedef struct redirect {
  int target;
  int saved;
} redirect;

static inline redirect redirect_begin(int target, const char *path) {
  fflush(stdout);
  fflush(stderr);
  redirect r = {target, dup(target)};
  assert_true(r.saved >= 0);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(dup2(fd, target), target);
  close(fd);
  return r;
}

static inline void redirect_end(redirect r) {
  fflush(stdout);
  fflush(stderr);
  dup2(r.saved, r.target);
  close(r.saved);
}

#endif /* TRAIL_TEST_FILES_H */

/*
 * Replays fuzz inputs without libFuzzer: a plain main() that hands every
 * file of the directories (or the files) named on the command line to the
 * target's LLVMFuzzerTestOneInput(), one after another in one process, as
 * libFuzzer does. Linked with each target in the normal build, so that the
 * committed corpus runs on every test run with any compiler; a check that
 * fails inside the target aborts, and the test fails.
 *
 *   fuzz_replay_line fuzz/corpus/line [more dirs or files]
 *
 * Exits 0 when every input ran, 1 when a path cannot be read or a
 * directory holds no input (a corpus that went missing must not pass).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"

/* libFuzzer's optional one-time hook; most targets do not define it. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/*
 * Reads a whole file into an exact-size heap block (so that a target that
 * reads past the input's end is caught by AddressSanitizer, as under
 * libFuzzer) and runs it. Returns 0, or -1 when the file cannot be read.
 */
static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return -1;
  }
  size_t cap = 4096, n = 0;
  unsigned char *buf = malloc(cap);
  for (;;) {
    if (buf == NULL) {
      fclose(f);
      fprintf(stderr, "%s: out of memory\n", path);
      return -1;
    }
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap)
      break;
    cap *= 2;
    buf = realloc(buf, cap);
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    fprintf(stderr, "%s: read error\n", path);
    free(buf);
    return -1;
  }
  unsigned char *exact = malloc(n ? n : 1);
  if (exact == NULL) {
    free(buf);
    return -1;
  }
  memcpy(exact, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

static int compare(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Runs every regular file of dir in name order (a stable order makes a
 * failure reproducible). Returns the number run, or -1 on an error.
 */
static long run_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    perror(dir);
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      char **grown = realloc(names, cap * sizeof *names);
      if (grown == NULL)
        break;
      names = grown;
    }
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    names[n] = malloc(len);
    if (names[n] == NULL)
      break;
    snprintf(names[n], len, "%s/%s", dir, e->d_name);
    n++;
  }
  closedir(d);
  if (n > 0)
    qsort(names, n, sizeof *names, compare);
  long ran = 0;
  int failed = 0;
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
      if (run_file(names[i]) == 0)
        ran++;
      else
        failed = 1;
    }
    free(names[i]);
  }
  free(names);
  return failed ? -1 : ran;
}

/*
 * Each argument is a directory (every file in it) or a file. Prints one
 * line per argument with the number of inputs replayed.
 */
int main(int argc, char **argv) {
  int status = 0;
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
    return 2;
  }
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize(&argc, &argv);
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      status = 1;
      continue;
    }
    long ran;
    if (S_ISDIR(st.st_mode))
      ran = run_dir(argv[i]);
    else
      ran = run_file(argv[i]) == 0 ? 1 : -1;
    if (ran <= 0) {
      fprintf(stderr, "%s: %s\n", argv[i],
              ran == 0 ? "no input to replay" : "could not replay");
      status = 1;
    } else {
      printf("%s: %ld inputs replayed\n", argv[i], ran);
    }
  }
  return status;
}

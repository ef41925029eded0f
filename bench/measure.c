/*
 * Runs one program and reports what it cost, for bench/run.py:
 *
 *   bench_measure RESULT_FILE PROGRAM [ARGS ...]
 *
 * writes "wall_ns user_ns sys_ns maxrss_kib exit_status" to RESULT_FILE:
 * wall time from fork to reaped exit (CLOCK_MONOTONIC), the CPU time and
 * peak resident set of the program (wait4), and its exit status (128 + the
 * signal number when a signal ended it). The program's stdin, stdout and
 * stderr are this process's.
 *
 * Why not /usr/bin/time: its wall clock has 10 ms resolution. Why not the
 * runner itself: Linux carries a process's peak RSS across exec, and a
 * child spawned by a large process (Python) starts with that process's
 * peak. This launcher is small, so its child's peak is the program's own.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t tv_ns(struct timeval tv) {
  return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_measure RESULT_FILE PROGRAM [ARGS ...]\n");
    return 2;
  }
  FILE *out = fopen(argv[1], "we");
  if (out == NULL) {
    fprintf(stderr, "bench_measure: %s: %s\n", argv[1], strerror(errno));
    return 2;
  }

  uint64_t t0 = now_ns();
  pid_t pid = fork();
  if (pid < 0) {
    perror("bench_measure: fork");
    return 2;
  }
  if (pid == 0) {
    execv(argv[2], argv + 2);
    fprintf(stderr, "bench_measure: %s: %s\n", argv[2], strerror(errno));
    _exit(127);
  }
  int status;
  struct rusage ru;
  pid_t got;
  do
    got = wait4(pid, &status, 0, &ru);
  while (got < 0 && errno == EINTR);
  uint64_t t1 = now_ns();
  if (got < 0) {
    perror("bench_measure: wait4");
    return 2;
  }

  int code = WIFEXITED(status)     ? WEXITSTATUS(status)
             : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                   : 255;
  fprintf(out, "%llu %llu %llu %ld %d\n", (unsigned long long)(t1 - t0),
          (unsigned long long)tv_ns(ru.ru_utime),
          (unsigned long long)tv_ns(ru.ru_stime), ru.ru_maxrss, code);
  if (fclose(out) != 0) {
    perror("bench_measure: write");
    return 2;
  }
  return 0;
}

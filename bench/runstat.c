/* runstat REPORT -- COMMAND [ARG]...: runs COMMAND, waits for it with wait4 and writes
 * "EXIT MAXRSS_KIB WALL_S USER_S SYS_S" to the file REPORT; exits with COMMAND's status.
 *
 * Why not measure from Python directly: Linux carries a process's RSS high-water mark
 * across fork and exec (exec_mmap folds the old mm's hiwater_rss into the signal
 * struct), so a command started by a large Python process reports at least that
 * process's peak RSS as its own ru_maxrss. Started from this ~1 MiB program instead,
 * ru_maxrss is the command's own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: runstat REPORT -- COMMAND [ARG]...\n");
        return 125;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("runstat: fork");
        return 125;
    }
    if (pid == 0) {
        execvp(argv[3], argv + 3);
        fprintf(stderr, "runstat: %s: %s\n", argv[3], strerror(errno));
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("runstat: wait4");
            return 125;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror("runstat: report");
        return 125;
    }
    fprintf(f, "%d %ld %.6f %.6f %.6f\n", code, ru.ru_maxrss,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
            (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    fclose(f);
    return code;
}

/* Run a command and report its own CPU time and peak RSS on a file descriptor the benchmark chose.
 *
 * Why not wait4 on the command from the benchmark itself: the kernel starts a child's ru_maxrss at the RSS of the
 * process that forked it (the exec'd-away mm counts), so every child of a 200 MB Python benchmark "peaks" at
 * 200 MB at least. This launcher is a few hundred KiB, so what it reports is the command's own peak.
 * The command keeps the launcher's stdin, stdout and stderr; the report descriptor is closed in it.
 *
 * usage: rusage_exec REPORT_FD COMMAND [ARG...]
 * writes to REPORT_FD: user_us sys_us maxrss_kib status   (status: exit code, or -signal)
 * exits 0 once the report is written (the command's status is in the report), non-zero when it could not run it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s REPORT_FD COMMAND [ARG...]\n", argv[0]);
		return 2;
	}
	int report = atoi(argv[1]);
	pid_t pid = fork();
	if (pid < 0)
		return 3;
	if (pid == 0) {
		close(report);
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	int status;
	struct rusage usage;
	if (wait4(pid, &status, 0, &usage) < 0)
		return 4;
	dprintf(report, "%ld %ld %ld %d\n", usage.ru_utime.tv_sec * 1000000L + usage.ru_utime.tv_usec,
		usage.ru_stime.tv_sec * 1000000L + usage.ru_stime.tv_usec, usage.ru_maxrss,
		WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status));
	return 0;
}

/* Run a command with stdout/stderr to /dev/null; print its own CPU time and peak RSS.
 *
 * Why not os.posix_spawn + wait4 from the benchmark: the kernel starts a child's ru_maxrss at the RSS of the
 * process that forked it (the exec'd-away mm counts), so every child of a 20 MB Python benchmark "peaks" at
 * 20 MB at least. This launcher is a few hundred KiB, so what it reports is the command's own peak.
 *
 * usage: rusage_exec COMMAND [ARG...]
 * prints: user_us sys_us maxrss_kib status   (status: exit code, or -signal)
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s COMMAND [ARG...]\n", argv[0]);
		return 2;
	}
	pid_t pid = fork();
	if (pid < 0)
		return 3;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execvp(argv[1], argv + 1);
		_exit(127);
	}
	int status;
	struct rusage usage;
	if (wait4(pid, &status, 0, &usage) < 0)
		return 4;
	printf("%ld %ld %ld %d\n", usage.ru_utime.tv_sec * 1000000L + usage.ru_utime.tv_usec,
	       usage.ru_stime.tv_sec * 1000000L + usage.ru_stime.tv_usec, usage.ru_maxrss,
	       WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status));
	return 0;
}

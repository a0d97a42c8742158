// tracer: the least a ptrace supervisor that follows every process can
// do, to measure sandlock's spawn-heavy rows against. It forks the
// workload, seizes it with the options sandlock's tracer uses (EXITKILL,
// TRACEFORK, TRACEVFORK, TRACECLONE: every descendant attached, all killed
// if the tracer dies) and resumes every stop at once from one thread,
// re-delivering signals, until the last tracee is gone; it exits with the
// workload's status. No seccomp, no Landlock, no limits: what is left is
// the kernel's stops and the wake-ups of the tracer they cost.
//
//   gcc -O2 -o tracer tracer.c && ./tracer /bin/sh -c 'for i in $(seq 200); do /bin/true; done'
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc < 2) return fprintf(stderr, "usage: tracer PROGRAM [ARG...]\n"), 2;
	pid_t root = fork();
	if (root < 0) return perror("fork"), 1;
	if (root == 0) {
		// Wait, stopped, to be seized before the program runs.
		raise(SIGSTOP);
		execvp(argv[1], argv + 1);
		perror("execvp");
		_exit(127);
	}
	int st;
	if (waitpid(root, &st, WUNTRACED) < 0 || !WIFSTOPPED(st)) return perror("waitpid"), 1;
	long opts = PTRACE_O_EXITKILL | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE;
	if (ptrace(PTRACE_SEIZE, root, 0, opts)) return perror("PTRACE_SEIZE"), 1;
	kill(root, SIGCONT);
	int status = 1;
	for (;;) {
		pid_t pid = waitpid(-1, &st, __WALL);
		if (pid < 0) {
			if (errno == EINTR) continue;
			break; // ECHILD: every tracee is gone
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			if (pid == root) status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			continue;
		}
		if (!WIFSTOPPED(st)) continue;
		int sig = WSTOPSIG(st), event = st >> 16;
		if (event == PTRACE_EVENT_STOP) {
			// A new tracee's first stop, or a group-stop: resume the first,
			// hold the second as ptrace(2) prescribes for seized tracees.
			if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
				ptrace(PTRACE_LISTEN, pid, 0, 0);
			else
				ptrace(PTRACE_CONT, pid, 0, 0);
		} else if (event) {
			ptrace(PTRACE_CONT, pid, 0, 0); // fork, vfork, clone events
		} else {
			ptrace(PTRACE_CONT, pid, 0, sig); // signal-delivery stop
		}
	}
	return status;
}

// floor: the least a seccomp user-notification supervisor can do, to
// measure sandlock's notified syscalls against. It forks a child that
// installs a filter notifying getppid (and allowing everything else),
// passes the listener back over a socketpair (SCM_RIGHTS) and execs the
// workload; the parent, one thread, sets SYNC_WAKE_UP and answers every
// notification CONTINUE with a blocking RECV and SEND, until the listener
// hangs up, then reaps the child and exits with its status.
//
//   gcc -O2 -o floor floor.c && ./floor /usr/bin/python3 loop.py
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1
#endif
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif

static int child(int sock, char **argv) {
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof f / sizeof f[0], f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return perror("prctl"), 127;
	int fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (fd < 0) return perror("seccomp"), 127;
	char cbuf[CMSG_SPACE(sizeof fd)] = {0};
	char byte = 0;
	struct iovec iov = {&byte, 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof fd);
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	if (sendmsg(sock, &m, 0) != 1) return perror("sendmsg"), 127;
	close(fd);
	close(sock);
	execv(argv[0], argv);
	return perror("execv"), 127;
}

int main(int argc, char **argv) {
	int sv[2];
	if (argc < 2) return fprintf(stderr, "usage: floor PROGRAM [ARG...]\n"), 2;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) return perror("socketpair"), 1;
	pid_t pid = fork();
	if (pid < 0) return perror("fork"), 1;
	if (pid == 0) _exit(child(sv[1], argv + 1));
	close(sv[1]);
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	char byte;
	struct iovec iov = {&byte, 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	int fd = -1;
	if (recvmsg(sv[0], &m, MSG_CMSG_CLOEXEC) == 1 && CMSG_FIRSTHDR(&m))
		memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
	close(sv[0]);
	if (fd >= 0) {
		if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP))
			perror("SECCOMP_IOCTL_NOTIF_SET_FLAGS");
		struct seccomp_notif req;
		struct seccomp_notif_resp resp;
		for (;;) {
			memset(&req, 0, sizeof req);
			if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req)) {
				// ENOENT: the task died before it was read, or (since 6.6)
				// the last task using the filter is gone: POLLHUP says which.
				struct pollfd p = {fd, POLLIN, 0};
				if (errno == EINTR || (errno == ENOENT && poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP)))
					continue;
				break;
			}
			resp = (struct seccomp_notif_resp){.id = req.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE};
			ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
		}
	}
	int st;
	if (waitpid(pid, &st, 0) < 0) return perror("waitpid"), 1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * ipc.c - typed messages between the master and its children over
 * SOCK_SEQPACKET socketpairs: one message per packet, so no framing and
 * no partial reads.  Everything is non-blocking and best effort; nothing
 * here is needed for correctness, only for promptness (IDLE wake-ups).
 */
#include <errno.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"

#define IPC_HDR_LEN offsetof(struct ipc_msg, data)

static int ipc_fd = -1;

void
ipc_child_set_fd(int fd)
{
	ipc_fd = fd;
}

int
ipc_child_fd(void)
{
	return ipc_fd;
}

int
ipc_send(int fd, enum ipc_type type, const void *data, size_t len)
{
	struct ipc_msg m;
	ssize_t n;

	if (fd < 0 || len > IPC_DATA_MAX)
		return -1;
	m.type = (uint32_t)type;
	m.len = (uint32_t)len;
	memcpy(m.data, data, len);
	do {
		n = send(fd, &m, IPC_HDR_LEN + len, MSG_DONTWAIT |
		    MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n == (ssize_t)(IPC_HDR_LEN + len) ? 0 : -1;
}

int
ipc_recv(int fd, struct ipc_msg *msg_r)
{
	ssize_t n;

	do {
		n = recv(fd, msg_r, sizeof(*msg_r), MSG_DONTWAIT | MSG_TRUNC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	if (n == 0)
		return -1;		/* peer closed */
	if ((size_t)n < IPC_HDR_LEN || (size_t)n > sizeof(*msg_r) ||
	    msg_r->len != (size_t)n - IPC_HDR_LEN)
		return -1;
	if (msg_r->type == IPC_MAILBOX_CHANGED &&
	    (msg_r->len == 0 || memchr(msg_r->data, '\0', msg_r->len) !=
	    msg_r->data + msg_r->len - 1))
		return -1;
	return 1;
}

void
ipc_notify_changed(const char *account)
{
	size_t len = strlen(account) + 1;

	if (ipc_fd >= 0 && len <= IPC_DATA_MAX &&
	    ipc_send(ipc_fd, IPC_MAILBOX_CHANGED, account, len) < 0)
		log_debug("ipc: change notice for %s dropped", account);
}

struct ipc_listener {
	struct event *ev;
	int fd;
	ipc_changed_fn *fn;
	void *ctx;
};

static void
ipc_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_listener *l = arg;
	struct ipc_msg m;
	int rc;

	while ((rc = ipc_recv(l->fd, &m)) == 1)
		if (m.type == IPC_MAILBOX_CHANGED)
			l->fn(m.data, l->ctx);
	if (rc < 0) {
		/* The master went away or sent garbage: stop listening;
		 * PR_SET_PDEATHSIG ends us soon if it is gone. */
		log_warnx("ipc: master channel closed");
		event_del(l->ev);
	}
}

struct ipc_listener *
ipc_listen(struct event_base *base, int fd, ipc_changed_fn *fn, void *ctx)
{
	struct ipc_listener *l = xmalloc(sizeof(*l));

	l->fd = fd;
	l->fn = fn;
	l->ctx = ctx;
	l->ev = event_new(base, fd, EV_READ | EV_PERSIST, ipc_on_read, l);
	if (l->ev == NULL)
		fatalx("event_new failed");
	event_add(l->ev, NULL);
	return l;
}

void
ipc_listener_free(struct ipc_listener **lp)
{
	struct ipc_listener *l = *lp;

	if (l == NULL)
		return;
	event_free(l->ev);
	free(l);
	*lp = NULL;
}

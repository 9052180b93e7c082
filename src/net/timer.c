/*
 * timer.c - one-shot timers for code outside src/net: a libevent event
 * with no fd behind a small API, so sessions and the queue runner need
 * no libevent header.  A 0 ms timer is made active at once instead of
 * going through the timeout heap, so it runs in the loop's current turn,
 * after the callbacks already due, as event_active() would.
 */
#include <event2/event.h>
#include <stdlib.h>

#include "net/net.h"

struct net_timer {
	struct event *ev;
	void (*fn)(void *arg);
	void *arg;
};

static void
net_timer_on_fire(evutil_socket_t fd, short what, void *arg)
{
	struct net_timer *t = arg;

	/* fn may add or free t: t is not touched after it */
	t->fn(t->arg);
}

struct net_timer *
net_timer_new(struct event_base *base, void (*fn)(void *arg), void *arg)
{
	struct net_timer *t = xmalloc(sizeof(*t));

	t->fn = fn;
	t->arg = arg;
	t->ev = evtimer_new(base, net_timer_on_fire, t);
	if (t->ev == NULL)
		fatalx("evtimer_new failed");
	return t;
}

void
net_timer_add(struct net_timer *t, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
	    .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

	/*
	 * Re-arming replaces, both ways, by libevent's rules: adding a
	 * timeout drops a pending activation, and an activated event leaves
	 * the timeout heap when it runs (non-persistent events are deleted
	 * before their callback).  test_timer.c checks both.
	 */
	if (ms == 0) {
		event_active(t->ev, EV_TIMEOUT, 0);
		return;
	}
	if (evtimer_add(t->ev, &tv) < 0)
		panic("evtimer_add failed");
}

void
net_timer_cancel(struct net_timer *t)
{
	if (event_del(t->ev) < 0)
		panic("event_del failed");
}

bool
net_timer_pending(const struct net_timer *t)
{
	/* EV_TIMEOUT: in the heap, or active (ms 0) and not yet run */
	return evtimer_pending(t->ev, NULL) != 0;
}

void
net_timer_free(struct net_timer **tp)
{
	struct net_timer *t = *tp;

	if (t == NULL)
		return;
	event_free(t->ev);
	free(t);
	*tp = NULL;
}

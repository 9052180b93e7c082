/*
 * test_timer.c - unit tests for timer.c: callbacks never from inside a
 * net_timer_*() call, once per add, re-arming replaces the time set
 * before (in both directions), cancel, a ticker re-arming itself, and
 * free from inside the callback or while armed (ASan checks the rest).
 */
#include <event2/event.h>
#include <stdlib.h>

#include "core/test.h"
#include "net/net.h"

struct test_timer_state {
	struct net_timer *t;
	int calls;
	int rearm;		/* re-add with rearm_ms this many times */
	unsigned rearm_ms;
	bool free_in_cb;
	bool pending_in_cb;
	uint64_t fired_at;
};

/* libevent times with the coarse monotonic clock (a few ms granular):
 * a timer may fire that much before time_mono_ms() says it is due. */
#define TEST_TIMER_SLACK 10

static struct event_base *test_timer_base;

static void
test_timer_cb(void *arg)
{
	struct test_timer_state *s = arg;

	s->calls++;
	s->fired_at = time_mono_ms();
	s->pending_in_cb = net_timer_pending(s->t);
	if (s->rearm > 0) {
		s->rearm--;
		net_timer_add(s->t, s->rearm_ms);
	}
	if (s->free_in_cb)
		net_timer_free(&s->t);
}

/* Runs the loop for msecs. */
static void
test_timer_run(unsigned msecs)
{
	struct timeval tv = { msecs / 1000, (msecs % 1000) * 1000 };

	if (event_base_loopexit(test_timer_base, &tv) < 0)
		panic("event_base_loopexit");
	if (event_base_dispatch(test_timer_base) < 0)
		panic("event_base_dispatch");
}

static void
test_timer_soon(void)
{
	struct test_timer_state s = { 0 };

	s.t = net_timer_new(test_timer_base, test_timer_cb, &s);
	TEST_TRUE(!net_timer_pending(s.t));
	net_timer_add(s.t, 0);
	net_timer_add(s.t, 0);
	TEST_INT(s.calls, 0);		/* never inside the call */
	TEST_TRUE(net_timer_pending(s.t));
	/* one loop turn runs it, once however often it was added */
	TEST_TRUE(event_base_loop(test_timer_base, EVLOOP_NONBLOCK) >= 0);
	TEST_INT(s.calls, 1);
	TEST_TRUE(!s.pending_in_cb);
	TEST_TRUE(!net_timer_pending(s.t));
	test_timer_run(50);
	TEST_INT(s.calls, 1);
	net_timer_free(&s.t);
	TEST_TRUE(s.t == NULL);
	net_timer_free(&s.t);		/* NULL is ignored */
}

static void
test_timer_delay(void)
{
	struct test_timer_state s = { 0 };
	uint64_t start;

	s.t = net_timer_new(test_timer_base, test_timer_cb, &s);
	start = time_mono_ms();
	net_timer_add(s.t, 100);
	TEST_TRUE(net_timer_pending(s.t));
	test_timer_run(40);
	TEST_INT(s.calls, 0);
	test_timer_run(300);
	TEST_INT(s.calls, 1);
	TEST_CHECK(s.fired_at - start + TEST_TIMER_SLACK >= 100,
	    "fired after %llu ms",
	    (unsigned long long)(s.fired_at - start));
	TEST_TRUE(!net_timer_pending(s.t));
	net_timer_free(&s.t);
}

/* A later add replaces the earlier one: soon then delayed, delayed then
 * soon, long then short. */
static void
test_timer_replace(void)
{
	struct test_timer_state s = { 0 };
	uint64_t start;

	s.t = net_timer_new(test_timer_base, test_timer_cb, &s);
	start = time_mono_ms();
	net_timer_add(s.t, 0);
	net_timer_add(s.t, 100);
	TEST_TRUE(event_base_loop(test_timer_base, EVLOOP_NONBLOCK) >= 0);
	TEST_INT(s.calls, 0);
	TEST_TRUE(net_timer_pending(s.t));
	test_timer_run(300);
	TEST_INT(s.calls, 1);
	TEST_CHECK(s.fired_at - start + TEST_TIMER_SLACK >= 100,
	    "fired after %llu ms",
	    (unsigned long long)(s.fired_at - start));

	net_timer_add(s.t, 100);
	net_timer_add(s.t, 0);
	TEST_TRUE(event_base_loop(test_timer_base, EVLOOP_NONBLOCK) >= 0);
	TEST_INT(s.calls, 2);
	TEST_TRUE(!net_timer_pending(s.t));
	test_timer_run(300);
	TEST_INT(s.calls, 2);		/* not again at 100 ms */

	start = time_mono_ms();
	net_timer_add(s.t, 5000);
	net_timer_add(s.t, 50);
	test_timer_run(300);
	TEST_INT(s.calls, 3);
	TEST_CHECK(s.fired_at - start < 1000, "fired after %llu ms",
	    (unsigned long long)(s.fired_at - start));
	TEST_TRUE(!net_timer_pending(s.t));
	net_timer_free(&s.t);
}

static void
test_timer_cancel(void)
{
	struct test_timer_state s = { 0 };

	s.t = net_timer_new(test_timer_base, test_timer_cb, &s);
	net_timer_cancel(s.t);		/* unarmed: nothing happens */
	net_timer_add(s.t, 0);
	net_timer_cancel(s.t);
	TEST_TRUE(!net_timer_pending(s.t));
	net_timer_add(s.t, 30);
	net_timer_cancel(s.t);
	TEST_TRUE(!net_timer_pending(s.t));
	test_timer_run(100);
	TEST_INT(s.calls, 0);
	/* usable again after a cancel */
	net_timer_add(s.t, 10);
	test_timer_run(100);
	TEST_INT(s.calls, 1);
	net_timer_free(&s.t);
}

/* The ticker pattern: fn re-arms first thing; soon (0) and delayed. */
static void
test_timer_rearm(void)
{
	struct test_timer_state s = { .rearm = 3, .rearm_ms = 0 };

	s.t = net_timer_new(test_timer_base, test_timer_cb, &s);
	net_timer_add(s.t, 0);
	test_timer_run(50);
	TEST_INT(s.calls, 4);
	TEST_TRUE(s.pending_in_cb == false);	/* the last one did not */
	s.rearm = 3;
	s.rearm_ms = 20;
	net_timer_add(s.t, 20);
	test_timer_run(400);
	TEST_INT(s.calls, 8);
	TEST_TRUE(!net_timer_pending(s.t));
	net_timer_free(&s.t);
}

/* Freed inside its callback, even right after re-arming; freed armed. */
static void
test_timer_free(void)
{
	struct test_timer_state a = { .free_in_cb = true };
	struct test_timer_state b = { .free_in_cb = true, .rearm = 1 };
	struct test_timer_state c = { 0 }, d = { 0 };

	a.t = net_timer_new(test_timer_base, test_timer_cb, &a);
	b.t = net_timer_new(test_timer_base, test_timer_cb, &b);
	c.t = net_timer_new(test_timer_base, test_timer_cb, &c);
	d.t = net_timer_new(test_timer_base, test_timer_cb, &d);
	net_timer_add(a.t, 0);
	net_timer_add(b.t, 10);
	net_timer_add(c.t, 0);
	net_timer_add(d.t, 10);
	net_timer_free(&c.t);
	net_timer_free(&d.t);
	test_timer_run(100);
	TEST_INT(a.calls, 1);
	TEST_TRUE(a.t == NULL);
	TEST_INT(b.calls, 1);
	TEST_TRUE(b.t == NULL);
	TEST_INT(c.calls, 0);
	TEST_INT(d.calls, 0);
}

/* One timer adding another for soon: it runs in the same loop turn,
 * after the first callback returned, as event_active() did. */
struct test_timer_chain {
	struct net_timer *first, *second;
	int order[2];
	int n;
};

static void
test_timer_chain_first(void *arg)
{
	struct test_timer_chain *ch = arg;

	net_timer_add(ch->second, 0);
	ch->order[ch->n++] = 1;
}

static void
test_timer_chain_second(void *arg)
{
	struct test_timer_chain *ch = arg;

	if (ch->n < 2)
		ch->order[ch->n++] = 2;
}

static void
test_timer_chain(void)
{
	struct test_timer_chain ch = { 0 };

	ch.first = net_timer_new(test_timer_base, test_timer_chain_first, &ch);
	ch.second = net_timer_new(test_timer_base, test_timer_chain_second,
	    &ch);
	net_timer_add(ch.first, 0);
	TEST_TRUE(event_base_loop(test_timer_base, EVLOOP_NONBLOCK) >= 0);
	TEST_INT(ch.n, 2);
	TEST_INT(ch.order[0], 1);
	TEST_INT(ch.order[1], 2);
	net_timer_free(&ch.first);
	net_timer_free(&ch.second);
}

int
main(void)
{
	test_timer_base = event_base_new();
	if (test_timer_base == NULL)
		panic("event_base_new");
	test_timer_soon();
	test_timer_delay();
	test_timer_replace();
	test_timer_cancel();
	test_timer_rearm();
	test_timer_free();
	test_timer_chain();
	event_base_free(test_timer_base);
	return test_done("timer");
}

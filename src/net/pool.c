/*
 * pool.c - a small thread pool.  Blocking work (password hashing, fsync,
 * SQLite) runs here; completions come back to the event loop through one
 * libevent event made active from the worker thread (libevent_pthreads).
 */
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdlib.h>

#include "net/net.h"

#define POOL_MAX_THREADS 16

struct pool_job {
	void (*work)(void *arg);
	void (*done)(void *arg);
	void *arg;
	struct pool_job *next;
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pool_job *todo, *todo_tail;
	struct pool_job *done, *done_tail;
	struct event *done_ev;
	pthread_t threads[POOL_MAX_THREADS];
	unsigned nthreads;
	bool stopping;
};

static void
pool_push(struct pool_job **head, struct pool_job **tail, struct pool_job *j)
{
	j->next = NULL;
	if (*tail != NULL)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

static void
pool_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct pool *p = arg;
	struct pool_job *list, *j;

	pthread_mutex_lock(&p->lock);
	list = p->done;
	p->done = p->done_tail = NULL;
	pthread_mutex_unlock(&p->lock);
	while ((j = list) != NULL) {
		list = j->next;
		j->done(j->arg);
		free(j);
	}
}

static void *
pool_thread(void *arg)
{
	struct pool *p = arg;
	struct pool_job *j;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->todo == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->todo == NULL)
			break;
		j = p->todo;
		p->todo = j->next;
		if (p->todo == NULL)
			p->todo_tail = NULL;
		pthread_mutex_unlock(&p->lock);
		j->work(j->arg);
		pthread_mutex_lock(&p->lock);
		pool_push(&p->done, &p->done_tail, j);
		event_active(p->done_ev, EV_READ, 0);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct pool *
pool_new(struct event_base *base, unsigned threads)
{
	struct pool *p = xmalloc(sizeof(*p));

	if (threads == 0 || threads > POOL_MAX_THREADS)
		threads = 2;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->done_ev = event_new(base, -1, 0, pool_on_done, p);
	if (p->done_ev == NULL)
		fatalx("event_new failed");
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, pool_thread, p) != 0)
			fatalx("pthread_create failed");
		p->nthreads++;
	}
	return p;
}

void
pool_free(struct pool **pp)
{
	struct pool *p = *pp;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pool_on_done(-1, 0, p);
	event_free(p->done_ev);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
	*pp = NULL;
}

void
pool_submit(struct pool *p, void (*work)(void *arg), void (*done)(void *arg),
    void *arg)
{
	struct pool_job *j = xmalloc(sizeof(*j));

	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&p->lock);
	pool_push(&p->todo, &p->todo_tail, j);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void
pool_complete(struct pool *p, void (*done)(void *arg), void *arg)
{
	struct pool_job *j = xmalloc(sizeof(*j));

	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&p->lock);
	pool_push(&p->done, &p->done_tail, j);
	event_active(p->done_ev, EV_READ, 0);
	pthread_mutex_unlock(&p->lock);
}

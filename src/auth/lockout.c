/*
 * lockout.c - failed-login counting per client address, shared by all
 * processes.  The master maps the table (MAP_SHARED | MAP_ANONYMOUS)
 * before forking, so every worker sees the same counts; a process-shared,
 * robust mutex guards it, so a worker dying mid-update cannot wedge the
 * others.
 *
 * The table has LOCKOUT_SLOTS fixed slots in sets of LOCKOUT_WAYS; an
 * address hashes (with a random per-table key, so nobody can aim at one
 * set) to a set, and a new address recycles the stalest slot of its set.
 * XXX: eviction is the oldest of a set, not of the whole table: it keeps
 * every operation at LOCKOUT_WAYS comparisons under the lock.
 * XXX: IPv6 clients are keyed by full address, as the spec asks; one /64
 * can still try many addresses.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "auth/auth.h"

#define LOCKOUT_SLOTS 4096
#define LOCKOUT_WAYS 16
#define LOCKOUT_SETS (LOCKOUT_SLOTS / LOCKOUT_WAYS)

struct lockout_slot {
	uint8_t addr[16];	/* IPv6, or IPv4 as v4-mapped IPv6 */
	bool used;
	unsigned failures;	/* within the window starting at first */
	time_t first;		/* first failure of the window */
	time_t last;		/* last touch, for recycling */
	time_t locked_until;	/* 0: not locked */
};

/* Lives entirely in the shared mapping: no pointers inside. */
struct lockout {
	pthread_mutex_t mu;
	unsigned failures;
	unsigned seconds;
	uint64_t key[2];	/* hash key */
	struct lockout_slot slots[LOCKOUT_SLOTS];
};

/* Client address as 16 bytes; false for non-IP families (not counted). */
static bool
lockout_key(const struct sockaddr *sa, uint8_t out[16])
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		memcpy(out, mapped, sizeof(mapped));
		memcpy(out + 12, &sin->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		memcpy(out, &sin6->sin6_addr, 16);
		return true;
	}
	return false;
}

static void
lockout_lock(struct lockout *lo)
{
	int rc = pthread_mutex_lock(&lo->mu);

	/* The holder died: its slot update may be half done, which only
	 * ever miscounts one address; carry on. */
	if (rc == EOWNERDEAD)
		rc = pthread_mutex_consistent(&lo->mu);
	if (rc != 0)
		panic("lockout mutex: %s", strerror(rc));
}

static void
lockout_unlock(struct lockout *lo)
{
	pthread_mutex_unlock(&lo->mu);
}

/* First slot of addr's set: keyed FNV-1a, then a 64-bit finalizer. */
static size_t
lockout_set(const struct lockout *lo, const uint8_t addr[16])
{
	uint64_t h = 0xcbf29ce484222325ULL ^ lo->key[0];

	for (size_t i = 0; i < 16; i++) {
		h ^= addr[i];
		h *= 0x100000001b3ULL;
	}
	h ^= lo->key[1];
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (size_t)(h % LOCKOUT_SETS) * LOCKOUT_WAYS;
}

static struct lockout_slot *
lockout_find(struct lockout *lo, const uint8_t addr[16])
{
	struct lockout_slot *set = &lo->slots[lockout_set(lo, addr)];

	for (size_t i = 0; i < LOCKOUT_WAYS; i++)
		if (set[i].used && memcmp(set[i].addr, addr, 16) == 0)
			return &set[i];
	return NULL;
}

/* A slot for a new address: a free one, else the least recently used. */
static struct lockout_slot *
lockout_claim(struct lockout *lo, const uint8_t addr[16])
{
	struct lockout_slot *set = &lo->slots[lockout_set(lo, addr)];
	struct lockout_slot *s = &set[0];

	for (size_t i = 0; i < LOCKOUT_WAYS; i++) {
		if (!set[i].used) {
			s = &set[i];
			break;
		}
		if (set[i].last < s->last)
			s = &set[i];
	}
	memset(s, 0, sizeof(*s));
	memcpy(s->addr, addr, 16);
	s->used = true;
	return s;
}

struct lockout *
lockout_create(unsigned failures, unsigned seconds)
{
	pthread_mutexattr_t attr;
	struct lockout *lo;
	int rc;

	lo = mmap(NULL, sizeof(*lo), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (lo == MAP_FAILED)
		fatal("lockout: mmap %zu bytes", sizeof(*lo));
	if (getrandom(lo->key, sizeof(lo->key), 0) != sizeof(lo->key))
		fatal("lockout: getrandom");
	if ((rc = pthread_mutexattr_init(&attr)) != 0 ||
	    (rc = pthread_mutexattr_setpshared(&attr,
	    PTHREAD_PROCESS_SHARED)) != 0 ||
	    (rc = pthread_mutexattr_setrobust(&attr,
	    PTHREAD_MUTEX_ROBUST)) != 0 ||
	    (rc = pthread_mutex_init(&lo->mu, &attr)) != 0)
		fatalx("lockout: mutex init: %s", strerror(rc));
	pthread_mutexattr_destroy(&attr);
	lo->failures = failures;
	lo->seconds = seconds;
	return lo;
}

void
lockout_destroy(struct lockout **lop)
{
	struct lockout *lo = *lop;

	if (lo == NULL)
		return;
	pthread_mutex_destroy(&lo->mu);
	munmap(lo, sizeof(*lo));
	*lop = NULL;
}

void
lockout_configure(struct lockout *lo, unsigned failures, unsigned seconds)
{
	lockout_lock(lo);
	lo->failures = failures;
	lo->seconds = seconds;
	lockout_unlock(lo);
}

bool
lockout_is_locked(struct lockout *lo, const struct sockaddr *sa,
    time_t now)
{
	struct lockout_slot *s;
	uint8_t addr[16];
	bool locked = false;

	if (!lockout_key(sa, addr))
		return false;
	lockout_lock(lo);
	if ((s = lockout_find(lo, addr)) != NULL)
		locked = s->locked_until > now;
	lockout_unlock(lo);
	return locked;
}

/*
 * A window opens at the first failure; `failures` failures before it
 * closes (`seconds` later) lock the address until `seconds` after the
 * last of them.  An expired window or lock starts counting afresh.
 */
unsigned
lockout_fail(struct lockout *lo, const struct sockaddr *sa, time_t now)
{
	struct lockout_slot *s;
	uint8_t addr[16];
	unsigned count;

	if (!lockout_key(sa, addr))
		return 0;
	lockout_lock(lo);
	if ((s = lockout_find(lo, addr)) == NULL)
		s = lockout_claim(lo, addr);
	if (s->locked_until != 0 && s->locked_until <= now) {
		s->failures = 0;
		s->locked_until = 0;
	}
	if (s->failures > 0 && s->locked_until == 0 &&
	    now - s->first >= (time_t)lo->seconds)
		s->failures = 0;
	if (s->failures == 0)
		s->first = now;
	if (s->failures < UINT_MAX)
		s->failures++;
	s->last = now;
	if (lo->failures > 0 && s->failures >= lo->failures)
		s->locked_until = now + (time_t)lo->seconds;
	count = s->failures;
	lockout_unlock(lo);
	return count;
}

void
lockout_success(struct lockout *lo, const struct sockaddr *sa)
{
	struct lockout_slot *s;
	uint8_t addr[16];

	if (!lockout_key(sa, addr))
		return;
	lockout_lock(lo);
	if ((s = lockout_find(lo, addr)) != NULL)
		memset(s, 0, sizeof(*s));
	lockout_unlock(lo);
}

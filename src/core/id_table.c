/*
 * id_table.c - items by 64-bit id: a fixed array of hash chains.  Ids are
 * handed out sequentially, so id modulo the bucket count spreads well.
 */
#include <stdlib.h>

#include "core/core.h"

#define ID_TABLE_BUCKETS 1024

struct id_node {
	uint64_t id;
	void *item;
	struct id_node *next;
};

struct id_table {
	struct id_node *buckets[ID_TABLE_BUCKETS];
	size_t count;
};

struct id_table *
id_table_new(void)
{
	return xmalloc(sizeof(struct id_table));
}

void
id_table_free(struct id_table **tp)
{
	if (*tp == NULL)
		return;
	xassert((*tp)->count == 0);
	x_free(tp);
}

void
id_table_add(struct id_table *t, uint64_t id, void *item)
{
	struct id_node *n = xmalloc(sizeof(*n));
	struct id_node **b = &t->buckets[id % ID_TABLE_BUCKETS];

	n->id = id;
	n->item = item;
	n->next = *b;
	*b = n;
	t->count++;
}

void *
id_table_get(const struct id_table *t, uint64_t id)
{
	const struct id_node *n = t->buckets[id % ID_TABLE_BUCKETS];

	while (n != NULL && n->id != id)
		n = n->next;
	return n != NULL ? n->item : NULL;
}

void
id_table_del(struct id_table *t, uint64_t id)
{
	struct id_node **pp = &t->buckets[id % ID_TABLE_BUCKETS], *n;

	while (*pp != NULL && (*pp)->id != id)
		pp = &(*pp)->next;
	if ((n = *pp) == NULL)
		return;
	*pp = n->next;
	free(n);
	t->count--;
}

size_t
id_table_count(const struct id_table *t)
{
	return t->count;
}

void *
id_table_any(const struct id_table *t)
{
	for (size_t i = 0; i < ID_TABLE_BUCKETS && t->count > 0; i++)
		if (t->buckets[i] != NULL)
			return t->buckets[i]->item;
	return NULL;
}

void
id_table_foreach(struct id_table *t, void (*fn)(void *item, void *ctx),
    void *ctx)
{
	for (size_t i = 0; i < ID_TABLE_BUCKETS; i++) {
		struct id_node *n = t->buckets[i], *next;
		for (; n != NULL; n = next) {
			next = n->next;		/* fn may delete n */
			fn(n->item, ctx);
		}
	}
}

/*
 * queue_int.h - a bounded multi-producer multi-consumer queue of pointers
 * (engine-internal), the joint between pipeline stages. push blocks while the
 * queue is full; pop blocks while it is empty and returns NULL once the
 * queue is closed and drained. Items may carry a weight (bytes, say): with a
 * weight limit set, push also blocks while the queued weight would pass it
 * (an item heavier than the limit still goes into an empty queue).
 */
#ifndef CAIRN_QUEUE_INT_H
#define CAIRN_QUEUE_INT_H

#include <pthread.h>
#include <stddef.h>

typedef struct cairn_queue {
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	void **items;
	size_t *weights;
	size_t cap, head, len;
	size_t weight, wmax; /* queued weight and its limit */
	int closed;
} cairn_queue;

void cairn_queue_init(cairn_queue *q, size_t cap);
void cairn_queue_destroy(cairn_queue *q);
/** Limit the weight of what is queued (default: no limit). */
void cairn_queue_set_weight_limit(cairn_queue *q, size_t wmax);
/** @return 0, or -EPIPE if the queue was closed (the item was not queued). */
int cairn_queue_push(cairn_queue *q, void *item);
/** push with a weight. */
int cairn_queue_push_w(cairn_queue *q, void *item, size_t weight);
/** Next item, or NULL when closed and empty. */
void *cairn_queue_pop(cairn_queue *q);
/** No more pushes; wakes every waiter. */
void cairn_queue_close(cairn_queue *q);

#endif

/*
 * check_queue.c - the pipeline's bounded queue: FIFO order, the count bound,
 * the weight bound (a producer waits until enough weight is popped; an item
 * heavier than the limit goes into an empty queue and holds the others back),
 * and close (wakes blocked producers and consumers, drains what was queued).
 */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "engine/queue_int.h"
#include "tests/support/check_main.h"

#define ITEM(n) ((void *)(uintptr_t)(n))

typedef struct pusher {
	cairn_queue *q;
	uintptr_t item;
	size_t weight;
	atomic_int done; /* 1 pushed, -1 refused */
	pthread_t th;
} pusher;

static void *push_main(void *arg)
{
	pusher *p = arg;
	int rc = cairn_queue_push_w(p->q, ITEM(p->item), p->weight);
	atomic_store(&p->done, rc == 0 ? 1 : -1);
	return NULL;
}

static void start_push(pusher *p, cairn_queue *q, uintptr_t item, size_t weight)
{
	p->q = q;
	p->item = item;
	p->weight = weight;
	atomic_store(&p->done, 0);
	ck_assert_int_eq(pthread_create(&p->th, NULL, push_main, p), 0);
}

/* 1 if the push finished within ~1 s (it is expected to), 0 if still blocked after 50 ms. */
static int finished(pusher *p, int expect)
{
	for (int i = 0; i < (expect ? 1000 : 50); i++) {
		if (atomic_load(&p->done))
			return 1;
		usleep(1000);
	}
	return atomic_load(&p->done) != 0;
}

START_TEST(fifo_and_count_bound)
{
	cairn_queue q;
	cairn_queue_init(&q, 4);
	for (uintptr_t i = 1; i <= 4; i++)
		ck_assert_int_eq(cairn_queue_push(&q, ITEM(i)), 0);
	pusher p;
	start_push(&p, &q, 5, 0);
	ck_assert_int_eq(finished(&p, 0), 0); /* full: the fifth waits */
	ck_assert_ptr_eq(cairn_queue_pop(&q), ITEM(1));
	ck_assert_ptr_eq(cairn_queue_pop(&q), ITEM(2)); /* half empty: the producer is woken */
	ck_assert_int_eq(finished(&p, 1), 1);
	pthread_join(p.th, NULL);
	for (uintptr_t i = 3; i <= 5; i++)
		ck_assert_ptr_eq(cairn_queue_pop(&q), ITEM(i));
	cairn_queue_destroy(&q);
}
END_TEST

START_TEST(weight_bound)
{
	cairn_queue q;
	cairn_queue_init(&q, 100);
	cairn_queue_set_weight_limit(&q, 100);
	ck_assert_int_eq(cairn_queue_push_w(&q, ITEM(1), 40), 0);
	ck_assert_int_eq(cairn_queue_push_w(&q, ITEM(2), 40), 0);
	pusher p;
	start_push(&p, &q, 3, 40); /* 120 > 100: waits */
	ck_assert_int_eq(finished(&p, 0), 0);
	ck_assert_ptr_eq(cairn_queue_pop(&q), ITEM(1)); /* 40 queued: room again */
	ck_assert_int_eq(finished(&p, 1), 1);
	pthread_join(p.th, NULL);
	ck_assert_ptr_eq(cairn_queue_pop(&q), ITEM(2));
	ck_assert_ptr_eq(cairn_queue_pop(&q), ITEM(3));

	/* heavier than the limit: goes into the empty queue, then holds the rest back */
	ck_assert_int_eq(cairn_queue_push_w(&q, ITEM(4), 500), 0);
	start_push(&p, &q, 5, 1);
	ck_assert_int_eq(finished(&p, 0), 0);
	ck_assert_ptr_eq(cairn_queue_pop(&q), ITEM(4));
	ck_assert_int_eq(finished(&p, 1), 1);
	pthread_join(p.th, NULL);
	ck_assert_ptr_eq(cairn_queue_pop(&q), ITEM(5));
	/* weightless items are bound by the count only */
	for (uintptr_t i = 0; i < 100; i++)
		ck_assert_int_eq(cairn_queue_push(&q, ITEM(i + 10)), 0);
	for (uintptr_t i = 0; i < 100; i++)
		ck_assert_ptr_eq(cairn_queue_pop(&q), ITEM(i + 10));
	cairn_queue_destroy(&q);
}
END_TEST

/* A queue limited to weight 10 holding item 1 (8), and item 2 (5) waiting to go in. */
static void held_by_weight(cairn_queue *q, pusher *p)
{
	cairn_queue_init(q, 8);
	cairn_queue_set_weight_limit(q, 10);
	ck_assert_int_eq(cairn_queue_push_w(q, ITEM(1), 8), 0);
	start_push(p, q, 2, 5);
	ck_assert_int_eq(finished(p, 0), 0);
}

START_TEST(close_wakes_and_drains)
{
	cairn_queue q;
	cairn_queue_init(&q, 1);
	ck_assert_int_eq(cairn_queue_push(&q, ITEM(7)), 0);
	pusher p;
	start_push(&p, &q, 8, 0);
	ck_assert_int_eq(finished(&p, 0), 0);
	cairn_queue_close(&q);
	ck_assert_int_eq(finished(&p, 1), 1);
	pthread_join(p.th, NULL);
	ck_assert_int_eq(atomic_load(&p.done), -1); /* refused, not queued */
	ck_assert_int_eq(cairn_queue_push(&q, ITEM(9)), -EPIPE);
	ck_assert_ptr_eq(cairn_queue_pop(&q), ITEM(7)); /* what was queued still comes out */
	ck_assert_ptr_null(cairn_queue_pop(&q));
	cairn_queue_destroy(&q);

	/* the same for a producer held back by the weight limit, not the count */
	held_by_weight(&q, &p);
	cairn_queue_close(&q);
	ck_assert_int_eq(finished(&p, 1), 1);
	pthread_join(p.th, NULL);
	ck_assert_int_eq(atomic_load(&p.done), -1);
	ck_assert_ptr_eq(cairn_queue_pop(&q), ITEM(1));
	ck_assert_ptr_null(cairn_queue_pop(&q));
	cairn_queue_destroy(&q);
}
END_TEST

/* Raising the weight limit lets a producer that waited for it in. */
START_TEST(raised_limit_wakes)
{
	cairn_queue q;
	pusher p;
	held_by_weight(&q, &p);
	cairn_queue_set_weight_limit(&q, 20);
	ck_assert_int_eq(finished(&p, 1), 1);
	pthread_join(p.th, NULL);
	ck_assert_int_eq(atomic_load(&p.done), 1);
	ck_assert_ptr_eq(cairn_queue_pop(&q), ITEM(1));
	ck_assert_ptr_eq(cairn_queue_pop(&q), ITEM(2));
	cairn_queue_destroy(&q);
}
END_TEST

static Suite *engine_queue_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *tc = tcase_create("queue");
	tcase_add_test(tc, fifo_and_count_bound);
	tcase_add_test(tc, weight_bound);
	tcase_add_test(tc, close_wakes_and_drains);
	tcase_add_test(tc, raised_limit_wakes);
	suite_add_tcase(s, tc);
	return s;
}

CAIRN_CHECK_MAIN(engine_queue_suite)

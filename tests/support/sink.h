/*
 * sink.h - test receivers: an HTTP or SMTP server on 127.0.0.1 in a thread,
 * one connection at a time, recording what it was sent; and a small HTTP
 * client. Shared by the notifier and daemon suites.
 */
#ifndef CAIRN_TEST_SINK_H
#define CAIRN_TEST_SINK_H

#include <pthread.h>

typedef struct tu_sink {
	int fd, port, smtp;
	int status;          /* HTTP status to answer (200) */
	int count;           /* requests or sessions served (under mu) */
	char last[1 << 16];  /* the last request or SMTP session (under mu) */
	char log[1 << 17];   /* all of them, appended (under mu) */
	pthread_t th;
	pthread_mutex_t mu;
} tu_sink;

/** Listen on a free loopback port; @p smtp: speak SMTP, else HTTP. */
tu_sink *tu_sink_start(int smtp);
void tu_sink_stop(tu_sink *sk);
/** 1 if @p text appears in anything the sink received so far. */
int tu_sink_has(tu_sink *sk, const char *text);
int tu_sink_count(tu_sink *sk);

/** @p method on @p url with bearer @p token (NULL: none); *body malloc'd (NUL-terminated). */
long tu_http(const char *method, const char *url, const char *token, char **body);

#endif

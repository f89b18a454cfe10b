/*
 * sink.c - see sink.h.
 */
#include "tests/support/sink.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/common.h"

static void say(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) < 0)
		return;
}

static int read_line(int fd, char *buf, size_t len)
{
	size_t k = 0;
	while (k + 1 < len) {
		char ch;
		if (read(fd, &ch, 1) != 1)
			return -1;
		buf[k++] = ch;
		if (ch == '\n')
			break;
	}
	buf[k] = 0;
	return (int)k;
}

/* Keep what was received; before an HTTP answer, so a client that has its answer finds it. */
static void record(tu_sink *sk, const char *buf, size_t k)
{
	pthread_mutex_lock(&sk->mu);
	memcpy(sk->last, buf, k + 1);
	if (strlen(sk->log) + k < sizeof(sk->log) - 1)
		strcat(sk->log, buf);
	sk->count++;
	pthread_mutex_unlock(&sk->mu);
}

/* Serve one SMTP session or HTTP request, received into @p buf (cap bytes). */
static void serve(tu_sink *sk, int c, char *buf, size_t cap)
{
	size_t k = 0;
	buf[0] = 0;
	if (sk->smtp) {
		char line[2048];
		int data = 0;
		say(c, "220 sink ESMTP\r\n");
		while (read_line(c, line, sizeof(line)) > 0) {
			if (k + strlen(line) < cap - 1)
				k += (size_t)sprintf(buf + k, "%s", line);
			if (data) {
				if (!strcmp(line, ".\r\n"))
					data = 0, say(c, "250 queued\r\n");
			} else if (!strncasecmp(line, "DATA", 4)) {
				data = 1, say(c, "354 go\r\n");
			} else if (!strncasecmp(line, "QUIT", 4)) {
				say(c, "221 bye\r\n");
				break;
			} else {
				say(c, "250 ok\r\n");
			}
		}
		buf[k] = 0;
		record(sk, buf, k);
		return;
	}
	ssize_t r;
	char *body;
	while (k + 1 < cap && (r = read(c, buf + k, cap - 1 - k)) > 0) {
		k += (size_t)r;
		buf[k] = 0;
		if ((body = strstr(buf, "\r\n\r\n"))) {
			char *cl = strcasestr(buf, "Content-Length:");
			size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0;
			if (k - (size_t)(body + 4 - buf) >= want)
				break;
		}
	}
	buf[k] = 0;
	record(sk, buf, k);
	char resp[128];
	snprintf(resp, sizeof(resp),
		 "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", sk->status);
	say(c, resp);
}

static void *sink_main(void *ud)
{
	tu_sink *sk = ud;
	char *buf = malloc(sizeof(sk->last));
	for (;;) {
		int c = accept(sk->fd, NULL, NULL);
		if (c < 0)
			break;
		serve(sk, c, buf, sizeof(sk->last));
		close(c);
	}
	free(buf);
	return NULL;
}

tu_sink *tu_sink_start(int smtp)
{
	tu_sink *sk = calloc(1, sizeof(*sk));
	ck_assert_ptr_nonnull(sk);
	sk->smtp = smtp;
	sk->status = 200;
	pthread_mutex_init(&sk->mu, NULL);
	sk->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(sk->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t al = sizeof(a);
	getsockname(sk->fd, (struct sockaddr *)&a, &al);
	sk->port = ntohs(a.sin_port);
	ck_assert_int_eq(listen(sk->fd, 16), 0);
	pthread_create(&sk->th, NULL, sink_main, sk);
	return sk;
}

void tu_sink_stop(tu_sink *sk)
{
	shutdown(sk->fd, SHUT_RDWR);
	close(sk->fd);
	pthread_join(sk->th, NULL);
	pthread_mutex_destroy(&sk->mu);
	free(sk);
}

int tu_sink_has(tu_sink *sk, const char *text)
{
	pthread_mutex_lock(&sk->mu);
	int yes = strstr(sk->log, text) != NULL;
	pthread_mutex_unlock(&sk->mu);
	return yes;
}

int tu_sink_count(tu_sink *sk)
{
	pthread_mutex_lock(&sk->mu);
	int n = sk->count;
	pthread_mutex_unlock(&sk->mu);
	return n;
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	cairn_buf_append(ud, p, size * n);
	return size * n;
}

long tu_http(const char *method, const char *url, const char *token, char **body)
{
	CURL *h = curl_easy_init();
	cairn_buf b = CAIRN_BUF_INIT;
	struct curl_slist *hdr = NULL;
	char auth[256];
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hdr = curl_slist_append(hdr, auth);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	if (!strcmp(method, "POST"))
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	long code = 0;
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	cairn_buf_put_u8(&b, 0);
	if (body)
		*body = (char *)b.data;
	else
		cairn_buf_free(&b);
	return code;
}

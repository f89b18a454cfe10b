/*
 * config_int.h - what config.c (repositories) shares with config_daemon.c
 * (cairnd's sections): the parse context and scalar helpers.
 */
#ifndef CAIRN_CONFIG_INT_H
#define CAIRN_CONFIG_INT_H

#include <libfyaml.h>

#include "sched/sched.h"

typedef struct cairn_cfg_ctx {
	const char *file;
	int rc;                 /* first error (sticky) */
} cairn_cfg_ctx;

/** The scalar at @p n, or NULL with an error naming @p path. */
const char *cairn_cfg__scalar(cairn_cfg_ctx *c, struct fy_node *n, const char *path);
/** A whole number 0..max, or 0 with an error. */
unsigned cairn_cfg__uint(cairn_cfg_ctx *c, struct fy_node *n, const char *path, unsigned max);

/** Parse cairnd's top-level section @p key (clients, daemon, notifiers, routes, defaults). */
void cairn_cfg__daemon_section(cairn_cfg_ctx *c, cairn_config *cfg, const char *key,
			       struct fy_node *v);
/** Defaults for unset values and cross-references (client -> repository, route -> notifier). */
void cairn_cfg__daemon_finish(cairn_cfg_ctx *c, cairn_config *cfg);
void cairn_cfg__daemon_free(cairn_config *cfg);

#endif

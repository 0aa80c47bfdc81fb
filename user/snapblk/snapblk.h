/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The snapblk tool's own declarations, shared by its files:
 *   snapblk.c   the command table, option parsing, create, remove, ls,
 *               events, the clone commands, version
 *   status.c    info and status (text, JSON, Prometheus), the device
 *               JSON object
 *   prefetch.c  record, prefetch, hydrate, and create's --prefetch and
 *               --hydrate
 * Everything here prints and exits on failure: it is the tool, not the
 * library (user/lib/).
 */
#ifndef SNAPBLK_CLI_H
#define SNAPBLK_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

#include "genl.h"
#include "trace.h"

/*
 * The options of this run that more than one file reads; set while the
 * command line is parsed (main() and parse_command_opts()), read-only
 * once the command runs.
 */
struct sb_cli_opts {
	bool json;		/* --json */
	bool prometheus;	/* status --prometheus */
	const char *output;	/* record --output FILE */
	bool stop;		/* prefetch --stop */
	bool wait;		/* --wait: until the prefetch has ended */
};

extern struct sb_cli_opts sb_cli_opts;

/* Connect to the module's family, or say why @what failed and exit 1. */
void sb_cli_connect(struct sb_nl *nl, const char *what);

/* Advice for an errno the module answered a command with, or NULL. */
const char *sb_cli_nl_hint(int err);

/*
 * Report a command the module refused: "what: kernel's message (errno
 * text)" when the module said why, else "what: errno text", then @hint
 * (or sb_cli_nl_hint()'s).  Exits 1.
 */
noreturn void sb_cli_nl_die(const struct sb_nl *nl, int err,
			    const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A name the module accepts: 1 to SNAPBLK_NAME_LEN - 1 bytes; else exit 2. */
void sb_cli_check_name_len(const char *name);

/* Device @name's status, or say why not (what: "cannot ...") and exit 1. */
void sb_cli_status_or_die(struct sb_nl *nl, const char *name,
			  struct sb_dev *dev, const char *what);

/*
 * A new memfd called @name holding the @len bytes at @buf, for the
 * module to read (the chunk table, a prefetch list); say what failed
 * writing @what and exit 1 otherwise.
 */
int sb_cli_memfd(const char *name, const void *buf, size_t len,
		 const char *what);

/*
 * Exit 1 unless the loaded module implements API version @api: "@what:
 * the loaded module (API N) has no @feature; that needs API @api".
 */
void sb_cli_require_api(struct sb_nl *nl, uint32_t api, const char *what,
			const char *feature);

/*
 * Every device, by index, in a new array *@devs (free() it); returns
 * how many.  Says why not (@what: "cannot ...") and exits 1 on failure.
 */
size_t sb_cli_list_devices(struct sb_nl *nl, const char *what,
			   struct sb_dev **devs);

/* One device as a JSON object, without a newline (status.c). */
void sb_cli_print_dev_json(const struct sb_dev *d);

/* Commands (argv: the positional arguments, argc of them). */
int sb_cli_info(int argc, char **argv);		/* status.c */
int sb_cli_status(int argc, char **argv);
int sb_cli_record(int argc, char **argv);	/* prefetch.c */
int sb_cli_prefetch(int argc, char **argv);
int sb_cli_hydrate(int argc, char **argv);

/*
 * create --prefetch FILE: read record file @path into @t, and check that
 * it fits the image (@image_id, @chunk_size, @chunks chunks) of @whose
 * ("this manifest's", "device vm1's"); say what is wrong and exit 1
 * otherwise.  Done before the device is created.
 */
void sb_cli_load_trace(const char *path, struct sb_trace *t,
		       const uint8_t *image_id, uint32_t chunk_size,
		       uint64_t chunks, const char *whose);

/*
 * SNAPBLK_CMD_PREFETCH on device @name of image @image_id (may point
 * into @dev): prefetch the chunks of @t (SB_PREFETCH_LIST), hydrate or
 * stop; the device as the module answered in @dev.  0 or the module's
 * negative errno (its message in @nl).
 */
int sb_cli_start_prefetch(struct sb_nl *nl, const char *name,
			  const uint8_t *image_id, enum sb_prefetch_mode mode,
			  const struct sb_trace *t, struct sb_dev *dev);

/*
 * --wait: poll device @name until its prefetch is no longer running;
 * its last status in @dev.  Exits 1 when the device went away.
 */
void sb_cli_wait_prefetch(struct sb_nl *nl, const char *name,
			  struct sb_dev *dev);

/* 0 if @dev's prefetch ended done, else say so and return EXIT_FAIL. */
int sb_cli_prefetch_outcome(const struct sb_dev *dev);

#endif

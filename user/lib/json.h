/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The JSON the tools print with --json: values are written straight to
 * stdout; only strings need care.
 */
#ifndef SNAPBLK_USER_JSON_H
#define SNAPBLK_USER_JSON_H

/* Write s to stdout as a JSON string literal, quotes included. */
void json_print_string(const char *s);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The JSON the tools print with --json: values are written straight to
 * stdout; only strings need care.
 */
#ifndef SNAPBLK_USER_JSON_H
#define SNAPBLK_USER_JSON_H

#include <stdio.h>

/*
 * Write s to f as a JSON string literal, quotes included, always valid
 * UTF-8 JSON: '"' and '\' escaped; control characters and DEL as
 * \u00XX; well-formed UTF-8 sequences as
 * they are; every byte that is not part of one (a file name in Latin-1,
 * a cut sequence, an overlong form, a surrogate) as \u00XX with XX the
 * byte's value.  Such an escape (\u0080 to \u00ff) therefore always
 * stands for a raw byte, never a character, since those characters are
 * written as UTF-8, not escaped.
 */
void sb_json_fprint_string(FILE *f, const char *s);

/* sb_json_fprint_string() to stdout. */
void json_print_string(const char *s);

#endif

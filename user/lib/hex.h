/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one hex encoder and decoder of the snapblk tools: content
 * addresses, image ids and keys are shown as lower-case hex.
 */
#ifndef SNAPBLK_USER_HEX_H
#define SNAPBLK_USER_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Lower-case hex of len bytes into out (2 * len + 1 bytes). */
void sb_hex(const uint8_t *buf, size_t len, char *out);

/* Value of hex digit @c (either case), or -1. */
int sb_hexval(int c);

/*
 * Decode exactly 2 * len hex digits of s into out: 0, or -EINVAL (a
 * character that is not a hex digit, or s of another length).
 */
int sb_unhex(const char *s, uint8_t *out, size_t len);

#endif

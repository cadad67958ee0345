/* SPDX-License-Identifier: Apache-2.0 */
/* sqlsplit.h: SQL text split into its statements (schema files run one statement a request). */
#ifndef EV_SQLSPLIT_H
#define EV_SQLSPLIT_H

/* Split SQL text into statements at ';' outside quotes ('...', "...", `...`) and comments
 * (from -- to the end of the line, and block comments), which are removed. fn gets each
 * non-empty statement, trimmed and NUL-terminated, and its number from 1; a non-zero return
 * stops the split and is returned. Returns 0, or -1 when a quote or comment is not closed
 * (or memory ran out). */
int ev_sql_split(const char *text, int (*fn)(void *arg, const char *stmt, int n), void *arg);

#endif

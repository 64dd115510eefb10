// SPDX-License-Identifier: GPL-2.0
/*
 * cohort-stub: the program popcorn.ko has a new task execute to get a
 * fresh address space when a migrated process arrives; the arriving state
 * replaces it before any of its instructions run. Started by hand, it
 * says so and fails.
 */
#include <stdio.h>

int main(void)
{
	fprintf(stderr,
		"cohort-stub: run by popcorn.ko for arriving processes; not to be run by hand\n");
	return 1;
}

/*
 * check_main.h - the main() of a Check test program. Each tests/<module>/
 * check_<topic>.c file ends with CAIRN_CHECK_MAIN(<module>_<topic>_suite) and
 * becomes one ctest named check_<topic>.
 */
#ifndef CAIRN_CHECK_MAIN_H
#define CAIRN_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

#define CAIRN_CHECK_MAIN(suite_fn)                                                                 \
	int main(void)                                                                             \
	{                                                                                          \
		SRunner *sr = srunner_create(suite_fn());                                          \
		srunner_run_all(sr, CK_NORMAL);                                                    \
		int failed = srunner_ntests_failed(sr);                                            \
		srunner_free(sr);                                                                  \
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;                                       \
	}

#endif

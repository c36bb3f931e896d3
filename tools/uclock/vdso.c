#include "cli.h"

int cmd_vdso(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return usage_error("vdso", "not implemented yet");
}

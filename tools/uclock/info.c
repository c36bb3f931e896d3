#include "cli.h"

int cmd_info(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return usage_error("info", "not implemented yet");
}

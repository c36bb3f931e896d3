#include "cli.h"

int cmd_verify(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return usage_error("verify", "not implemented yet");
}

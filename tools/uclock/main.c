/* uclock: how this machine's clock calls really run, and uclock checked
 * against the kernel.  main() only dispatches. */
#include <stdio.h>
#include <string.h>

#include <uclock.h>

#include "cli.h"

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"info", cmd_info, "the platform: kernel, clocksources, vDSO, CPU, TSC, NTP"},
	{"vdso", cmd_vdso, "the vDSO's symbols; --dump FILE writes its image"},
	{"bench", cmd_bench, "cost per call of every way to read time here"},
	{"check", cmd_check, "system calls each method really makes (ptrace)"},
	{"verify", cmd_verify, "uclock against the kernel: brackets, errno, warps"},
	{"watch", cmd_watch, "live offsets of uclock's clocks to the kernel's"},
	{"run", cmd_run, "run a program with uclock preloaded (--stats: count)"},
	{"bounds", cmd_bounds, "REALTIME as [earliest, latest], with its status"},
};

static int help(FILE *out, int status)
{
	fprintf(out, "usage: uclock [--json]\n"
		     "       uclock COMMAND [OPTIONS]\n"
		     "       uclock --version\n\n"
		     "With no command: a report of how clock calls run here;\n"
		     "with --json, as one JSON object.\n\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'uclock COMMAND --help' for a command's options; "
		     "--json for scripts.\n");
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
			return help(stdout, 0);
		if (argc == 2 && !strcmp(argv[1], "--version")) {
			printf("uclock %s\n", UCLOCK_VERSION_STRING);
			return 0;
		}
		return cmd_report(argc, argv);
	}
	if (!strcmp(argv[1], "help"))
		return help(stdout, 0);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	return usage_error(NULL, "unknown command '%s'", argv[1]);
}

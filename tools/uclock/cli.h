/*
 * The uclock command: shared declarations.  The CLI uses libuclock's public
 * API and its own diagnostic code only.
 */
#ifndef UCLOCK_CLI_H
#define UCLOCK_CLI_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Commands: argv[0] is the command's name; the result is the exit status
 * (0 success, 1 failure of what was checked, 2 bad usage). */
int cmd_report(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_vdso(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bounds(int argc, char **argv);

/* libuclock-preload.so for this uclock, or NULL. */
const char *preload_path(void);

/* Bad usage: "uclock CMD: message" and a hint, on stderr; returns 2. */
int usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* getopt_long's '?' or ':' (opterr 0, optstring starting with ':'), in
 * usage_error's form, naming the option as given; returns 2. */
int option_error(const char *cmd, int c, char **argv);
/* A command's options when they are --json and --help alone: -1 to go
 * on (*as_json set), else the status to exit with (help shown, or bad
 * usage said). */
int json_only_options(const char *cmd, int argc, char **argv, int (*usage)(void),
		      int *as_json);
/* Strict number parsing: the whole string, in range; 0 or -1. */
int parse_seconds(const char *s, double min, double max, double *out);
int parse_long(const char *s, long min, long max, long *out);

/* Past uclock's warm-up, as a program reading the clock steadily is: 50 ms
 * of reads at least, until calibrated, 250 ms at most.  What the commands
 * report is that steady state, not a first read's. */
void warm_up(void);
int64_t clock_ns(clockid_t clock);          /* libc clock_gettime */
int64_t timespec_ns(const struct timespec *ts);
int compare_i64(const void *a, const void *b);
/* n readings of uclock_gettime(id), each minus the middle of the C
 * library's readings of the same clock just before and after it; sorted. */
void uclock_offsets(clockid_t id, int64_t *err, int n);
int compare_double(const void *a, const void *b);

/* Progress of a long command, on stderr when it is a terminal (nothing
 * when piped): a bar, DONE from 0 to 1, and what is being done.  Drawn
 * again only when either changes; DONE 1 erases the line, so that what
 * the command prints next starts clean. */
void progress(double done, const char *what);

/*
 * A streaming JSON writer: nesting and commas are its business.  Each
 * document is one object on one line, and its first member is
 * "schema_version": JSON_SCHEMA_VERSION, so that a script can tell the
 * keys it knows from others.  The version goes up when a key is renamed,
 * removed or changes its meaning or unit; new keys leave it as it is.
 * man/uclock.1 (JSON OUTPUT) lists every key.
 */
#define JSON_SCHEMA_VERSION 1
struct json;
struct json *json_open(FILE *out);          /* opens the document */
void json_close(struct json *j);            /* closes it, ends the line, frees */
/* 'key' is NULL for array elements. */
void json_object(struct json *j, const char *key);
void json_array(struct json *j, const char *key);
void json_end(struct json *j);              /* closes the innermost */
void json_string(struct json *j, const char *key, const char *value);
void json_int(struct json *j, const char *key, long long value);
void json_uint(struct json *j, const char *key, unsigned long long value);
void json_double(struct json *j, const char *key, double value);
void json_bool(struct json *j, const char *key, int value);
void json_null(struct json *j, const char *key);
/* An address as the text views print it: "0x" and 16 hex digits. */
void json_address(struct json *j, const char *key, unsigned long long address);

/* The objects several commands write (json_objects.c). */
struct platform;
struct uclock_stat;
/* The member "platform": the machine as info shows it. */
void json_platform(struct json *j, const struct platform *p);
/* The member "uclock": the library's state from uclock_stat(). */
void json_uclock(struct json *j, const struct uclock_stat *st);
/* bounds.c: uclock_now_bounds() as one line, its status in words, and as
 * a JSON object (the same keys in every command). */
struct uclock_bounds;
void bounds_line(char *out, size_t size, const struct uclock_bounds *b);
const char *bounds_why(const struct uclock_bounds *b);
void json_bounds(struct json *j, const char *key, const struct uclock_bounds *b);

#endif

/* A streaming JSON writer, enough for the CLI's reports. */
#include <math.h>
#include <stdlib.h>

#include "cli.h"

#define DEPTH 16

struct json {
	FILE *out;
	int depth;
	int count[DEPTH];   /* members written at each level */
	char close[DEPTH];  /* '}' or ']' */
};

struct json *json_open(FILE *out)
{
	struct json *j = calloc(1, sizeof(*j));

	if (j)
		j->out = out;
	return j;
}

void json_close(struct json *j)
{
	fputc('\n', j->out);
	fflush(j->out);
	free(j);
}

static void quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

/* The separator and the key, if any, before a value. */
static void member(struct json *j, const char *key)
{
	if (j->depth > 0 && j->count[j->depth - 1]++ > 0)
		fputc(',', j->out);
	if (key) {
		quoted(j->out, key);
		fputc(':', j->out);
	}
}

static void open_level(struct json *j, const char *key, char open, char close)
{
	member(j, key);
	fputc(open, j->out);
	if (j->depth < DEPTH) {
		j->count[j->depth] = 0;
		j->close[j->depth] = close;
	}
	j->depth++;
}

void json_object(struct json *j, const char *key)
{
	open_level(j, key, '{', '}');
}

void json_array(struct json *j, const char *key)
{
	open_level(j, key, '[', ']');
}

void json_end(struct json *j)
{
	if (j->depth == 0)
		return;
	j->depth--;
	fputc(j->depth < DEPTH ? j->close[j->depth] : '}', j->out);
}

void json_string(struct json *j, const char *key, const char *value)
{
	member(j, key);
	if (value)
		quoted(j->out, value);
	else
		fputs("null", j->out);
}

void json_int(struct json *j, const char *key, long long value)
{
	member(j, key);
	fprintf(j->out, "%lld", value);
}

void json_uint(struct json *j, const char *key, unsigned long long value)
{
	member(j, key);
	fprintf(j->out, "%llu", value);
}

/* JSON has no NaN or infinity: those are null. */
void json_double(struct json *j, const char *key, double value)
{
	member(j, key);
	if (isfinite(value))
		fprintf(j->out, "%.6g", value);
	else
		fputs("null", j->out);
}

void json_bool(struct json *j, const char *key, int value)
{
	member(j, key);
	fputs(value ? "true" : "false", j->out);
}

void json_null(struct json *j, const char *key)
{
	member(j, key);
	fputs("null", j->out);
}

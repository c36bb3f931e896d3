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

	if (!j)
		return NULL;
	j->out = out;
	json_object(j, NULL);
	json_int(j, "schema_version", JSON_SCHEMA_VERSION);
	return j;
}

void json_close(struct json *j)
{
	while (j->depth > 0)
		json_end(j);
	fputc('\n', j->out);
	fflush(j->out);
	free(j);
}

/*
 * The length of the well-formed UTF-8 sequence s starts with, or 0 if it
 * starts none: a stray continuation byte, an overlong form (C0, C1, E0 80-9F,
 * F0 80-8F), a surrogate (ED A0-BF: U+D800-DFFF), a code point above U+10FFFF
 * (F4 90-BF, F5-FF), or a sequence cut short (by the string's end too).
 * The ranges are RFC 3629's table of well-formed sequences (section 4).
 */
static int utf8_length(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;  /* the second byte's range */
	int n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/*
 * A JSON string, valid UTF-8 whatever the bytes: strings can come from the
 * environment (UCLOCK_SOURCE, UCLOCK_PAGE, echoed in reasons) or files.
 * Well-formed sequences are copied.  Each byte that does not start one is
 * written as U+FFFD, the replacement character: JSON strings hold Unicode
 * characters, not bytes, so "\u00ff" would claim a different character,
 * and dropping the byte would hide that anything was there.  One U+FFFD per
 * byte, going on at the next byte, keeps this simple and never swallows a
 * good character after a bad byte.  Control characters are escaped, DEL
 * (U+007F) too: JSON allows it raw, but it is invisible on a terminal.
 */
static void quoted(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', out);
	while (*s) {
		unsigned char c = *s;
		int n = utf8_length(s);

		if (n == 0) {
			fputs("\\ufffd", out);
			s++;
			continue;
		}
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fwrite(s, 1, n, out);
		s += n;
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

void json_address(struct json *j, const char *key, unsigned long long address)
{
	member(j, key);
	fprintf(j->out, "\"0x%016llx\"", address);
}

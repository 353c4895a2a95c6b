/*-------------------------------------------------------------------------
 *
 * floatparse_test.c
 *	  Standalone agreement test for FloatParse() in src/floatparse.c: it
 *	  must do exactly what strtof() does.
 *
 * Build and run from the top of the tree with either
 *
 *	  make -C test/floatparse check
 *
 * or by hand
 *
 *	  cc -O2 -Wall -Wextra -Isrc -Itest/lib -o /tmp/floatparse_test \
 *		  test/floatparse/floatparse_test.c src/floatparse.c -lm \
 *		  && /tmp/floatparse_test
 *
 * Every input is parsed by strtof() and by FloatParse(), each with errno
 * set to 0 first, and the two must agree on the float's bits (so -0 and 0
 * differ), the end pointer and errno; FloatParse(s, NULL) must give the
 * same float and errno too.  When the fast path alone (FloatParseFast)
 * takes an input, its float and end pointer must be strtof()'s and
 * strtof() must have left errno alone.  The inputs, from a fixed seed:
 *
 *	- random finite floats (random bit patterns, components of unit
 *	  vectors, 0..255 and k/255) printed with %.9g, %.6g, %.17g, %g, %e,
 *	  %.3f and %a;
 *	- random digit strings: up to 40 digits, leading zeros, a '.' anywhere
 *	  or none, signs, exponents -60..60, trailing junk;
 *	- float midpoints (exact, their shortest decimals, and one unit up and
 *	  down in the last digit), where rounding through double is unsafe;
 *	- hand-written edge cases.
 *
 * It prints how many inputs of each kind took the fast path, the first
 * mismatches in full, the time per parse of FloatParse() and strtof() on
 * 1M "%.9g" unit-vector components (for information; nothing depends on
 * it), a final line "floatparse: N passed, N failed", and exits non-zero
 * if anything failed.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "floatparse.h"
#include "xorshift.h"

#define MAX_REPORTED	20
#define BUF_SIZE		512

static long passed = 0;
static long failed = 0;
static long fast_total = 0;
static long fallback_total = 0;

/* the current section's counts, printed by end_section() */
static const char *section_name;
static long section_inputs;
static long section_fast;

/* uniform in [0, n) */
static int
rand_int(int n)
{
	return (int) ((rand64() >> 33) % (uint64_t) n);
}

/* uniform in (0, 1] */
static double
rand_unit(void)
{
	return ((double) (rand64() >> 11) + 1.0) / 9007199254740992.0;
}

/* A component of a random 1536-dimension unit vector: N(0, 1/1536) */
static float
rand_component(void)
{
	/* one draw per statement: the order of operands is unspecified */
	double		u1 = rand_unit();
	double		u2 = rand_unit();
	double		g = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);

	return (float) (g / sqrt(1536.0));
}

static uint32_t
float_bits(float f)
{
	uint32_t	u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static void
start_section(const char *name)
{
	section_name = name;
	section_inputs = 0;
	section_fast = 0;
}

static void
end_section(void)
{
	printf("  %-28s %9ld inputs, %9ld fast path, %9ld fallback\n",
		   section_name, section_inputs, section_fast,
		   section_inputs - section_fast);
}

/* Print one input in full, escaping what is not printable */
static void
print_input(const char *s)
{
	putchar('"');
	for (; *s; s++)
	{
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f)
			printf("\\x%02x", (unsigned char) *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void
report(const char *what, const char *s, float want, const char *want_end,
	   int want_errno, float got, const char *got_end, int got_errno)
{
	if (failed > MAX_REPORTED)
		return;
	printf("FAIL %s: ", what);
	print_input(s);
	printf("\n  strtof: %.9g (0x%08x) end +%ld errno %d\n",
		   want, float_bits(want), (long) (want_end - s), want_errno);
	printf("  got:    %.9g (0x%08x) end +%ld errno %d\n",
		   got, float_bits(got), got_end ? (long) (got_end - s) : -1L, got_errno);
}

/* Compare FloatParse (and the fast path, when it applies) with strtof on s */
static void
check(const char *s)
{
	float		want,
				got,
				got_noend,
				fast;
	char	   *want_end,
			   *got_end,
			   *fast_end;
	int			want_errno,
				got_errno,
				noend_errno;
	int			ok = 1;

	errno = 0;
	want = strtof(s, &want_end);
	want_errno = errno;

	errno = 0;
	got = FloatParse(s, &got_end);
	got_errno = errno;
	if (float_bits(want) != float_bits(got) || want_end != got_end ||
		want_errno != got_errno)
	{
		ok = 0;
		report("FloatParse", s, want, want_end, want_errno,
			   got, got_end, got_errno);
	}

	errno = 0;
	got_noend = FloatParse(s, NULL);
	noend_errno = errno;
	if (float_bits(want) != float_bits(got_noend) || want_errno != noend_errno)
	{
		ok = 0;
		report("FloatParse(s, NULL)", s, want, want_end, want_errno,
			   got_noend, NULL, noend_errno);
	}

	section_inputs++;
	errno = 0;
	if (FloatParseFast(s, &fast_end, &fast))
	{
		fast_total++;
		section_fast++;
		if (float_bits(want) != float_bits(fast) || want_end != fast_end ||
			want_errno != 0 || errno != 0)
		{
			ok = 0;
			report("FloatParseFast", s, want, want_end, want_errno,
				   fast, fast_end, errno);
		}
	}
	else
		fallback_total++;

	if (ok)
		passed++;
	else
		failed++;
}

/* Check f printed in each of the formats */
static void
check_formats(float f)
{
	static const char *const formats[] = {
		"%.9g", "%.6g", "%.17g", "%g", "%e", "%.3f", "%a"
	};
	char		buf[BUF_SIZE];

	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
	{
		snprintf(buf, sizeof(buf), formats[i], (double) f);
		check(buf);
	}
}

static void
test_random_floats(void)
{
	start_section("random float bit patterns");
	for (int i = 0; i < 400000; i++)
	{
		uint32_t	u = (uint32_t) (rand64() >> 32);
		float		f;

		if ((u & 0x7f800000) == 0x7f800000)
			continue;			/* infinity or NaN */
		memcpy(&f, &u, sizeof(f));
		check_formats(f);
	}
	end_section();

	start_section("unit-vector components");
	for (int i = 0; i < 400000; i++)
		check_formats(rand_component());
	end_section();

	start_section("0..255 and k/255");
	for (int i = 0; i < 256; i++)
	{
		check_formats((float) i);
		check_formats((float) i / 255.0f);
		check_formats(-(float) i / 255.0f);
	}
	end_section();
}

/* A random decimal string, as a person or another program might write it */
static void
random_decimal(char *buf)
{
	char	   *p = buf;
	int			ndigits,
				dot,
				r,
				exponent;
	const char *format;

	r = rand_int(4);
	if (r == 0)
		*p++ = '-';
	else if (r == 1)
		*p++ = '+';
	for (int i = rand_int(4) == 0 ? rand_int(6) : 0; i > 0; i--)
		*p++ = '0';
	/* half of them short enough for the fast path */
	ndigits = 1 + (rand_int(2) ? rand_int(19) : rand_int(40));
	/* no '.', or one before, among or after the digits */
	dot = rand_int(4) == 0 ? -1 : rand_int(ndigits + 1);
	for (int i = 0; i < ndigits; i++)
	{
		if (i == dot)
			*p++ = '.';
		*p++ = (char) ('0' + rand_int(10));
	}
	if (dot == ndigits)
		*p++ = '.';
	if (rand_int(3) != 0)
	{
		*p++ = rand_int(2) ? 'e' : 'E';
		format = rand_int(3) == 0 ? "%+d" : (rand_int(5) == 0 ? "%03d" : "%d");
		exponent = rand_int(121) - 60;
		p += sprintf(p, format, exponent);
	}
	if (rand_int(4) == 0)
		*p++ = ",] xe.-"[rand_int(7)];
	*p = '\0';
}

static void
test_random_decimals(void)
{
	char		buf[BUF_SIZE];

	start_section("random digit strings");
	for (int i = 0; i < 1500000; i++)
	{
		random_decimal(buf);
		check(buf);
	}
	end_section();
}

/*
 * Add delta (+1 or -1) to the last digit of the decimal in s (before any
 * exponent), carrying or borrowing, into out.  Returns 0 if the result
 * would be negative (a mantissa of all zeros going down).
 */
static int
bump_last_digit(const char *s, int delta, char *out)
{
	size_t		len = strlen(s);
	size_t		mant_end = strcspn(s, "eE");
	size_t		first = strspn(s, "+-");
	long		i;

	memcpy(out, s, len + 1);
	for (i = (long) mant_end - 1; i >= (long) first; i--)
	{
		if (out[i] == '.')
			continue;
		if (delta > 0)
		{
			if (out[i] != '9')
			{
				out[i]++;
				return 1;
			}
			out[i] = '0';
		}
		else
		{
			if (out[i] != '0')
			{
				out[i]--;
				return 1;
			}
			out[i] = '9';
		}
	}
	if (delta < 0)
		return 0;
	/* carried out of the first digit: put a 1 in front */
	memmove(out + first + 1, out + first, len - first + 1);
	out[first] = '1';
	return 1;
}

/*
 * Check the midpoint m between two adjacent floats (a double): its exact
 * decimal, its shortest decimals, and the exact one a unit up and down in
 * the last digit.
 */
static void
check_midpoint(double m)
{
	char		exact[BUF_SIZE];
	char		buf[BUF_SIZE];

	/*
	 * Exactly: o * 2^k with o < 2^25 and k >= -170 has at most 127
	 * significant digits, and %g drops the trailing zeros.
	 */
	snprintf(exact, sizeof(exact), "%.160g", m);
	check(exact);
	if (bump_last_digit(exact, 1, buf))
		check(buf);
	if (bump_last_digit(exact, -1, buf))
		check(buf);

	/* the shortest decimal that reads back as m, in both notations */
	for (int prec = 1; prec <= 17; prec++)
	{
		snprintf(buf, sizeof(buf), "%.*g", prec, m);
		if (strtod(buf, NULL) == m)
		{
			check(buf);
			snprintf(buf, sizeof(buf), "%.*e", prec - 1, m);
			check(buf);
			snprintf(buf, sizeof(buf), "-%.*e", prec - 1, m);
			check(buf);
			break;
		}
	}
}

/*
 * A float midpoint: a random 25-bit odd significand times 2^k, k random in
 * [kmin, kmin + krange).
 */
static double
rand_midpoint(int kmin, int krange)
{
	uint64_t	significand = (UINT64_C(1) << 24) | (rand64() >> 40) | 1;

	return ldexp((double) significand, kmin + rand_int(krange));
}

static void
test_midpoints(void)
{
	start_section("float midpoints");

	/* anywhere, from subnormal midpoints to the overflow threshold */
	for (int i = 0; i < 100000; i++)
		check_midpoint(rand_midpoint(-170, 275));

	/* integers and short fractions, which the fast path reads exactly */
	for (int i = 0; i < 100000; i++)
		check_midpoint(rand_midpoint(-10, 40));

	/*
	 * Significands with factors of 5, whose midpoints have short decimals
	 * (29296875 * 2^10 is 3e10).
	 */
	for (int j = 1; j <= 10; j++)
	{
		uint64_t	pow5 = 1;

		for (int k = 0; k < j; k++)
			pow5 *= 5;
		for (uint64_t t = ((UINT64_C(1) << 24) / pow5) | 1;
			 t * pow5 < (UINT64_C(1) << 25) && t < ((UINT64_C(1) << 24) / pow5) + 2000;
			 t += 2)
		{
			if (t * pow5 < (UINT64_C(1) << 24))
				continue;
			for (int k = -12; k <= 40; k += 1 + rand_int(4))
				check_midpoint(ldexp((double) (t * pow5), k));
		}
	}

	/* the largest: between FLT_MAX and 2^128 (overflow), and near FLT_MIN */
	check_midpoint(ldexp((double) ((UINT64_C(1) << 25) - 1), 103));
	check_midpoint(ldexp((double) ((UINT64_C(1) << 25) - 3), 103));
	check_midpoint(ldexp((double) ((UINT64_C(1) << 24) + 1), -150));
	check_midpoint(ldexp((double) ((UINT64_C(1) << 24) - 1), -150));

	end_section();
}

static void
test_edge_cases(void)
{
	static const char *const cases[] = {
		/* from the brief */
		"0", "-0", "0.0", ".5", "5.", ".", "-", "+", "e5", "1e", "1e+",
		"1e-", "1.e3", "00001.5", "3.4028235e38", "3.4028236e38", "1e39",
		"1e-38", "1.17549435e-38", "1e-45", "1e-46", "inf", "nan", "0x1p3",
		"  1.5", "1.5abc", "1,2",
		/* signs, zeros and the decimal point */
		"", " ", "+0", "-0.0", "-.0", "+.5", "-.5e3", "-5.", "..5", "1..5",
		"1.2.3", "+-1", "-+1", "--1", "-.", "+.", ".e5", "-.e5",
		"0000000000000000000000000000000000000000000000000000000001",
		"0.0000000000000000000000000000000000000000000000000000000000",
		"-0e0", "0e99999", "-0e-99999", "0e999999999999999999999",
		"0.000000000000000000001e21", "0.0000000000000000000001e22",
		"100000000000000000000000e-23",
		/* exponents */
		"1e5", "1E5", "1e+05", "1e-05", "1e0", "1e-0", "1e+0", "1e00000000000000000001",
		"1e--5", "1e+-5", "1ee5", "1e5e5", "1e5.5", "1.5e", "1.5E+", "1.5e-x",
		"1e22", "1e23", "1e-22", "1e-23", "4e-38", "1e38", "3e38", "1e-37",
		"1e100000000000000000000", "1e-100000000000000000000",
		"1e2147483647", "1e2147483648", "1e-2147483648", "1e4294967296",
		/* significant digits and the 2^53 limit */
		"9007199254740992", "9007199254740993", "9007199254740994",
		"9999999999999999999", "99999999999999999999",
		"1000000000000000000", "10000000000000000000",
		"1.0000000000000000000000", "123456789012345678e-22",
		"0.1", "0.2", "0.3", "0.7", "1.1", "3.14159265", "2.71828183",
		"0.100000001", "0.0251839329", "-1.23456791e-05", "1.17549435e-37",
		/* ranges: denormals, FLT_MIN, FLT_MAX, overflow */
		"1.17549435082228750797e-38", "1.1754942e-38", "1.1754944e-38",
		"1.4e-45", "7e-46", "7.1e-46", "1e-39", "-1e-39", "2e-45",
		"3.40282346638528859811704183484516925440e+38",
		"3.40282356779733661637539395458142568448e+38",
		"3.40282356779733661637539395458142568447e+38",
		"340282356779733661637539395458142568448",
		"340282356779733661637539395458142568447",
		"-3.4028235e38", "-1e39", "1e400", "-1e400", "1e-400",
		/* not decimal */
		"-inf", "+inf", "INF", "infinity", "-Infinity", "infinit",
		"-nan", "NAN", "nan(123)", "nan(", "nanx",
		"0x", "0X", "0x1", "0X1P-3", "-0x1.8p1", "0xg", "0x.8", "0x1p",
		/* white space and what can follow a number */
		"\t1", "\n1", "1 ", "1\n", " -1", "- 1", "1 e5", "1e 5", "1]", "1,",
		"1.5]", "-0.5, 2", "1e5,", "1.x", "5.e", "5.e+",
		/* float midpoints and their neighbors */
		"16777217", "16777219", "16777216", "16777218", "33554434",
		"3e10", "30000000000", "3.0e10", "2.9999999999e10", "3.0000000001e10",
		"0.5000000298023223876953125", "0.50000002980232238769531",
		"0.50000002980232238769532", "1.000000059604644775390625",
		"1.00000005960464477539062", "1.00000005960464477539063",
		"1.00000006", "1.00000005", "8388609.5", "8388610.5", "4194304.25",
		"-16777217", "-3e10",
	};

	start_section("edge cases");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(cases[i]);
	end_section();
}

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}

/*
 * Time FloatParse and strtof over 1M "%.9g" unit-vector components, the
 * best of three rounds each.  For information only.
 */
static void
measure_speed(void)
{
	enum
	{
		N = 1000000, ROUNDS = 3
	};
	char	   *text = malloc((size_t) N * 20);
	size_t	   *offsets = malloc(sizeof(size_t) * N);
	size_t		used = 0;
	double		best_fp = 0,
				best_strtof = 0;
	volatile float sink = 0;

	if (text == NULL || offsets == NULL)
	{
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	for (int i = 0; i < N; i++)
	{
		offsets[i] = used;
		used += (size_t) snprintf(text + used, 20, "%.9g",
								  (double) rand_component()) + 1;
	}

	for (int round = 0; round < ROUNDS; round++)
	{
		double		t0,
					t1,
					t2;
		float		sum = 0;
		char	   *end;

		t0 = now_ns();
		for (int i = 0; i < N; i++)
		{
			sum += FloatParse(text + offsets[i], &end);
			sum += (float) (end - text - (long) offsets[i]);
		}
		t1 = now_ns();
		for (int i = 0; i < N; i++)
		{
			sum += strtof(text + offsets[i], &end);
			sum += (float) (end - text - (long) offsets[i]);
		}
		t2 = now_ns();
		sink = sum;
		if (round == 0 || t1 - t0 < best_fp)
			best_fp = t1 - t0;
		if (round == 0 || t2 - t1 < best_strtof)
			best_strtof = t2 - t1;
	}
	(void) sink;
	printf("speed on 1M \"%%.9g\" unit-vector components: "
		   "FloatParse %.1f ns/parse, strtof %.1f ns/parse\n",
		   best_fp / N, best_strtof / N);
	free(text);
	free(offsets);
}

int
main(void)
{
	test_edge_cases();
	test_midpoints();
	test_random_floats();
	test_random_decimals();
	printf("fast path: %ld inputs, fallback to strtof: %ld inputs\n",
		   fast_total, fallback_total);
	measure_speed();
	printf("floatparse: %ld passed, %ld failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}

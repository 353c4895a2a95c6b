/*-------------------------------------------------------------------------
 *
 * floatparse.c
 *	  FloatParse(): strtof() with a fast path for short decimal numbers,
 *	  used by vector_in for every element of a text literal.
 *
 * glibc's strtof() is correct for every input but slow for the common one:
 * it converts through multi-precision arithmetic, which made parsing a
 * long query literal a large part of a query's CPU time (README, Design).
 * Most elements are short decimals ("0.0251839329", "-1.23456791e-05", as
 * printed by "%.9g"), and for those Clinger's fast path gives the correctly
 * rounded result with a single floating-point operation.
 *
 * The fast path reads [+-] digits [. digits] [e|E [+-] digits] with at most
 * 19 significant digits, as an integer w times 10^e10.  When w <= 2^53 and
 * |e10| <= 22, both w and 10^|e10| are exact doubles, so one IEEE multiply
 * or divide gives d, the exact value x rounded to double.  The float we
 * want is x rounded to float; we get it by rounding d to float, and that
 * double rounding is harmless unless d is a midpoint between two floats:
 *
 *	  Let a < b be adjacent floats with a <= x <= b (x in the normal
 *	  range), and m = (a + b) / 2.  a, b and m are doubles (m needs one
 *	  bit more than a float's 24 and the same exponent range), and
 *	  rounding to double is monotonic and leaves doubles alone.  So x < m
 *	  gives a <= d <= m, and x > m gives m <= d <= b.  If d != m, then d is
 *	  on x's side of m, and d and x round to the same float.  If d == m, x
 *	  may be on either side of m, or m itself, and only strtof() can tell.
 *
 * For d in the float normal range a float keeps the top 23 of the double's
 * 52 fraction bits, so d is a float midpoint exactly when the 29 bits
 * dropped are 1 followed by zeros; we leave those to strtof().  (With
 * w <= 2^53 and |e10| <= 22, d lies between 1e-22 and 9.1e37 and is always
 * a normal float; the range check below is there so that the argument
 * never depends on that.)
 *
 * Everything else goes to strtof() from the start of the string: too many
 * digits, larger exponents, hexadecimal, infinities and NaNs, leading white
 * space, a bare 'e', and any result that underflows or overflows (where
 * strtof() sets errno to ERANGE).  The fast path never sets errno, so the
 * caller sees exactly what strtof() would have done.
 *
 * It assumes what strtof() in PostgreSQL's backend also gets: the "C"
 * locale's decimal point (the backend never changes LC_NUMERIC) and
 * round-to-nearest.  Plain C with no PostgreSQL headers, so that the
 * standalone test (test/floatparse/) compiles it on its own.
 *
 *-------------------------------------------------------------------------
 */
#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "floatparse.h"

#ifdef __FAST_MATH__
#error -ffast-math breaks the exact arithmetic the fast path relies on
#endif

/*
 * Each double operation must be rounded once, to double.  x87 extended
 * precision (FLT_EVAL_METHOD 2) would round twice; then use strtof() only.
 */
#if defined(FLT_EVAL_METHOD) && (FLT_EVAL_METHOD == 0 || FLT_EVAL_METHOD == 1)
#define FLOATPARSE_HAVE_FAST_PATH 1
#endif

/* Significant digits that always fit in a uint64 (10^19 - 1 < 2^64) */
#define MAX_SIG_DIGITS	19

/* Largest power of ten that is an exact double (5^22 < 2^53) */
#define MAX_EXACT_POW10 22

/*
 * Beyond this the exponent can only be cancelled by as many leading zeros
 * in the fraction, which no real input has; stopping here keeps the
 * accumulation from overflowing.
 */
#define MAX_EXPONENT	100000

/*
 * The midpoint between FLT_MAX and 2^128: x at or above it rounds to
 * infinity (strtof() sets ERANGE).  A double, so d < it implies x < it.
 */
#define FLOAT_OVERFLOW_MIDPOINT 0x1.ffffffp127

/* The 29 low fraction bits of a double that rounding to float drops */
#define DROPPED_BITS_MASK	((UINT64_C(1) << 29) - 1)
#define DROPPED_BITS_HALF	(UINT64_C(1) << 28)

#ifdef FLOATPARSE_HAVE_FAST_PATH
static const double exact_pow10[MAX_EXACT_POW10 + 1] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};
#endif

/* Is c an ASCII digit?  Sets *digit to its value. */
static inline bool
decimal_digit(char c, unsigned int *digit)
{
	*digit = (unsigned int) (unsigned char) c - (unsigned int) '0';
	return *digit <= 9;
}

/*
 * Append the run of digits at *p to *w, advancing *p past them; returns how
 * many there were.  *w may wrap; callers check the count first.
 */
static inline ptrdiff_t
append_digits(const char **p, uint64_t *w)
{
	const char *start = *p;
	unsigned int digit;

	while (decimal_digit(**p, &digit))
	{
		*w = *w * 10 + digit;
		(*p)++;
	}
	return *p - start;
}

/* The fast path; see the top of the file */
static inline bool
parse_fast(const char *s, char **end, float *result)
{
#ifdef FLOATPARSE_HAVE_FAST_PATH
	const char *p = s;
	const char *digits;
	const char *dot = NULL;
	bool		negative = false;
	uint64_t	w = 0;
	ptrdiff_t	nsig;
	int64_t		e10 = 0;
	unsigned int digit;
	double		d;
	uint64_t	bits;
	float		f;

	if (*p == '-' || *p == '+')
	{
		negative = (*p == '-');
		p++;
	}
	/* "0x" starts a hexadecimal number for strtof() */
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		return false;

	/*
	 * The digits, with at most one '.' among them.  Leading zeros are not
	 * significant: skip them (and, before any other digit, those after the
	 * '.'), then count the rest.  w may wrap when there are more than 19,
	 * but is then not used.
	 */
	digits = p;
	while (*p == '0')
		p++;
	nsig = append_digits(&p, &w);
	if (*p == '.')
	{
		dot = p++;
		if (w == 0)
			while (*p == '0')
				p++;
		nsig += append_digits(&p, &w);
	}
	if (nsig > MAX_SIG_DIGITS)
		return false;
	/* at least one digit ("." alone, or nothing, is no number) */
	if (p - digits - (dot != NULL) == 0)
		return false;
	/* each digit after the '.' divides by ten */
	if (dot != NULL)
		e10 = -(int64_t) (p - dot - 1);

	if (*p == 'e' || *p == 'E')
	{
		const char *q = p + 1;
		bool		exp_negative = false;
		int			exponent = 0;

		if (*q == '-' || *q == '+')
		{
			exp_negative = (*q == '-');
			q++;
		}
		/* a bare 'e' is not part of the number; strtof() knows the rules */
		if (!decimal_digit(*q, &digit))
			return false;
		do
		{
			exponent = exponent * 10 + (int) digit;
			if (exponent > MAX_EXPONENT)
				return false;
			q++;
		} while (decimal_digit(*q, &digit));
		e10 += exp_negative ? -exponent : exponent;
		p = q;
	}

	if (w == 0)
	{
		/* zero whatever the exponent, and strtof() sets no ERANGE for it */
		f = negative ? -0.0f : 0.0f;
	}
	else
	{
		if (w > (UINT64_C(1) << 53) ||
			e10 < -MAX_EXACT_POW10 || e10 > MAX_EXACT_POW10)
			return false;

		/* one correctly rounded operation on exact operands */
		d = (double) w;
		if (e10 >= 0)
			d *= exact_pow10[e10];
		else
			d /= exact_pow10[-e10];

		/*
		 * Both bounds are doubles, so d inside them puts x inside them too:
		 * x then rounds to a normal float, and strtof() leaves errno alone.
		 * (d == FLT_MIN could be x just below it, tiny for strtof().)
		 */
		if (!(d > FLT_MIN && d < FLOAT_OVERFLOW_MIDPOINT))
			return false;

		/* a float midpoint: d may have rounded x across it */
		memcpy(&bits, &d, sizeof(bits));
		if ((bits & DROPPED_BITS_MASK) == DROPPED_BITS_HALF)
			return false;

		f = (float) d;
		if (negative)
			f = -f;
	}

	*result = f;
	if (end != NULL)
		*end = (char *) p;
	return true;
#else
	(void) s;
	(void) end;
	(void) result;
	return false;
#endif
}

/* The fast path alone, for the test; see floatparse.h */
bool
FloatParseFast(const char *s, char **end, float *result)
{
	return parse_fast(s, end, result);
}

/* strtof(s, end), with the fast path first */
float
FloatParse(const char *s, char **end)
{
	float		result;

	if (parse_fast(s, end, &result))
		return result;
	return strtof(s, end);
}

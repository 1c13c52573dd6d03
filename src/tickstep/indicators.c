/* The indicators' loops over candles (decision 0015), called through ctypes from
 * indicators.py, which validates the arguments, allocates the outputs and fills their NaN
 * warm-ups: every function here writes only the values after the warm-up.
 *
 * Plain C99 with no Python headers, so one shared library serves every Python version.
 * Each loop follows TA-Lib's definitions and seeds (the EMA in TA-Lib's very order,
 * `(x - y) * k + y`); the speed comes from fusing, one pass per indicator with MACD's three
 * EMAs interleaved. Compiled without floating point contraction or reassociation, and fma()
 * only where written (it rounds once, correctly, in software too), so every clone below
 * gives the same results, within a few ulps of TA-Lib's.
 *
 * The hot functions are compiled for the baseline x86-64 and again for x86-64-v3 (AVX2,
 * FMA) and x86-64-v4 (AVX-512); the loader picks the clone the processor runs. Never
 * -march=native: the library goes to Lambda. Other architectures get the baseline only.
 */
#include <math.h>
#include <stddef.h>

#if defined(__x86_64__)
#define HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HOT
#endif

/* TA-Lib's seeds: a left-to-right sum divided by the count (not pairwise). */
static double sequential_mean(const double *x, ptrdiff_t count)
{
    double sum = 0.0;
    for (ptrdiff_t i = 0; i < count; i++)
        sum += x[i];
    return sum / (double)count;
}

/* EMA with k = 2 / (period + 1), seeded at period - 1 by the mean of the first period
 * values; needs n >= period. */
HOT void tk_ema(const double *x, ptrdiff_t n, ptrdiff_t period, double *out)
{
    const double k = 2.0 / (double)(period + 1);
    double y = sequential_mean(x, period);
    out[period - 1] = y;
    if (period == 1) { /* keeps nothing of the past: the input itself, exactly */
        for (ptrdiff_t i = 1; i < n; i++)
            out[i] = x[i];
        return;
    }
    for (ptrdiff_t i = period; i < n; i++) {
        y = (x[i] - y) * k + y;
        out[i] = y;
    }
}

/* MACD line, signal and histogram from index slow + signal - 2 on; needs n > that index.
 * Both EMAs start at slow - 1, the fast one seeded by the mean of the fast values ending
 * there (TA-Lib's late seed); the signal EMA is seeded by the mean of its first signal
 * line values. The three recurrences are independent chains, so the loop costs about one. */
HOT void tk_macd(const double *x, ptrdiff_t n, ptrdiff_t fast, ptrdiff_t slow, ptrdiff_t signal,
                 double *line, double *sig, double *hist)
{
    const double k_fast = 2.0 / (double)(fast + 1);
    const double k_slow = 2.0 / (double)(slow + 1);
    const double k_signal = 2.0 / (double)(signal + 1);
    const ptrdiff_t first = slow + signal - 2;
    double y_slow = sequential_mean(x, slow);
    double y_fast = sequential_mean(x + slow - fast, fast);
    double seed = y_fast - y_slow; /* the signal's seed: a sequential sum of line values */
    for (ptrdiff_t i = slow; i <= first; i++) {
        y_fast = (x[i] - y_fast) * k_fast + y_fast;
        y_slow = (x[i] - y_slow) * k_slow + y_slow;
        seed += y_fast - y_slow;
    }
    double m = y_fast - y_slow;
    double s = seed / (double)signal;
    line[first] = m;
    sig[first] = s;
    hist[first] = m - s;
    for (ptrdiff_t i = first + 1; i < n; i++) {
        y_fast = (x[i] - y_fast) * k_fast + y_fast;
        y_slow = (x[i] - y_slow) * k_slow + y_slow;
        m = y_fast - y_slow;
        s = (m - s) * k_signal + s;
        line[i] = m;
        sig[i] = s;
        hist[i] = m - s;
    }
}

static double rsi_value(double gain, double loss)
{
    const double moved = gain + loss;
    return moved > 0.0 ? 100.0 * (gain / moved) : 0.0;
}

/* Wilder's smoothing y = y * (p - 1) / p + x / p as fma(y, keep, x * gain), with keep the
 * rounded (p - 1) / p and gain = 1 - keep, exactly: the weights sum to exactly 1, as in
 * TA-Lib's division form, so nothing drifts, and the loop's dependency chain is a single
 * fused multiply-add (the input's multiply is off it) where a division would take four
 * times as long. fma() rounds once, correctly, in every clone: the same results everywhere
 * (the baseline clone calls the C library's fma, slower, on processors older than AVX2). */
static double wilder_keep(ptrdiff_t period)
{
    return (double)(period - 1) / (double)period;
}

/* Wilder's RSI from index period on; needs n > period. Gains and losses are smoothed
 * separately, both on every candle (a zero gain or loss is a zero input), so the loop has
 * no branch on the sign of the change. */
HOT void tk_rsi(const double *x, ptrdiff_t n, ptrdiff_t period, double *out)
{
    const double keep = wilder_keep(period);
    const double gain_weight = 1.0 - keep;
    double gain = 0.0;
    double loss = 0.0;
    for (ptrdiff_t i = 1; i <= period; i++) {
        const double change = x[i] - x[i - 1];
        gain += change > 0.0 ? change : 0.0;
        loss -= change < 0.0 ? change : 0.0;
    }
    gain /= (double)period;
    loss /= (double)period;
    out[period] = rsi_value(gain, loss);
    for (ptrdiff_t i = period + 1; i < n; i++) {
        const double change = x[i] - x[i - 1];
        gain = fma(gain, keep, (change > 0.0 ? change : 0.0) * gain_weight);
        loss = fma(loss, keep, (change < 0.0 ? -change : 0.0) * gain_weight);
        out[i] = rsi_value(gain, loss);
    }
}

/* TA-Lib's true range of candle i (i >= 1): the largest of high - low and the distances of
 * the previous close to the high and to the low. */
static double true_range(const double *high, const double *low, const double *close,
                         ptrdiff_t i)
{
    double range = high[i] - low[i];
    const double to_high = fabs(close[i - 1] - high[i]);
    const double to_low = fabs(close[i - 1] - low[i]);
    range = to_high > range ? to_high : range;
    return to_low > range ? to_low : range;
}

/* ATR from index period on; needs n > period. Seeded by the mean true range of candles
 * 1..period (candle 0 has no previous close), then Wilder's smoothing; a period of 1 gives
 * the true range itself. */
HOT void tk_atr(const double *high, const double *low, const double *close, ptrdiff_t n,
                ptrdiff_t period, double *out)
{
    const double keep = wilder_keep(period);
    const double gain = 1.0 - keep;
    double y = 0.0;
    for (ptrdiff_t i = 1; i <= period; i++)
        y += true_range(high, low, close, i);
    y /= (double)period;
    out[period] = y;
    for (ptrdiff_t i = period + 1; i < n; i++) {
        y = fma(y, keep, true_range(high, low, close, i) * gain);
        out[i] = y;
    }
}

/* Outputs processed together: the inner loops run across them (independent windows), so
 * the compiler vectorises lanes without reordering any sum. */
#define BAND_BLOCK 32

/* Bollinger bands of `count` consecutive windows starting at x (window j is
 * x[j..j+period-1], its outputs at index j). Sums are of d = x[j + i] - x[j], the window's
 * values less its first: a flat window gives exactly 0 and a near-flat one loses nothing to
 * cancellation against the price level. Inlined into each clone of tk_bbands, so it is
 * vectorised with that clone's registers. */
static inline __attribute__((always_inline)) void
band_block(const double *x, ptrdiff_t count, ptrdiff_t period, double scale, double *upper,
           double *middle, double *lower)
{
    double sum[BAND_BLOCK] = {0.0};
    double squares[BAND_BLOCK] = {0.0};
    for (ptrdiff_t i = 1; i < period; i++) {
        for (ptrdiff_t j = 0; j < count; j++) {
            const double d = x[j + i] - x[j];
            sum[j] += d;
            squares[j] += d * d;
        }
    }
    const double p = (double)period;
    for (ptrdiff_t j = 0; j < count; j++) {
        const double mean = sum[j] / p;
        double deviations = squares[j] - sum[j] * mean;
        deviations = deviations > 0.0 ? deviations : 0.0;
        const double half_width = sqrt(deviations * scale);
        middle[j] = x[j] + mean;
        upper[j] = middle[j] + half_width;
        lower[j] = middle[j] - half_width;
    }
}

/* Bands from index period - 1 on (needs n >= period): middle = the window's mean, upper and
 * lower = middle +/- sqrt(scale * sum of squared deviations), scale = nbdev^2 / period.
 * Each output costs period steps (vectorised across outputs), not a running sum's two. */
HOT void tk_bbands(const double *x, ptrdiff_t n, ptrdiff_t period, double scale, double *upper,
                   double *middle, double *lower)
{
    const ptrdiff_t windows = n - period + 1;
    const ptrdiff_t skip = period - 1;
    ptrdiff_t j = 0;
    for (; j + BAND_BLOCK <= windows; j += BAND_BLOCK)
        band_block(x + j, BAND_BLOCK, period, scale, upper + skip + j, middle + skip + j,
                   lower + skip + j);
    if (j < windows)
        band_block(x + j, windows - j, period, scale, upper + skip + j, middle + skip + j,
                   lower + skip + j);
}

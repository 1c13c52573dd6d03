/* The indicators' loops over candles (decision 0015), called through ctypes from
 * indicators.py, which validates the arguments, allocates the outputs and fills their NaN
 * warm-ups: every function here writes only the values after the warm-up.
 *
 * Plain C99 with no Python headers, so one shared library serves every Python version.
 * Each loop follows TA-Lib's definitions and seeds (the EMA in TA-Lib's very order,
 * `(x - y) * k + y`); the speed comes from fusing, one pass per indicator with MACD's three
 * EMAs interleaved, and from window sums (SMA, bands) whose cost per output does not grow
 * with the period. Compiled without floating point contraction or reassociation, and fma()
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

/* --- Moving windows: SMA and Bollinger bands --------------------------------------------
 *
 * The series is cut into blocks of `period` values aligned on its end: boundaries
 * c = n - period, n - 2 * period, ..., the first at n % period. Every window of `period`
 * values holds exactly one boundary c and is split there into a suffix x[j..c-1] and a
 * prefix x[c..j+period-1]. Both parts are summed as d = x[t] - x[c], backward over the
 * suffixes and forward over the prefixes, so an output costs the same few steps whatever
 * the period (van Herk / Gil-Werman) where a direct sum costs `period` steps and a running
 * sum drifts. x[c] lies inside every window summed against it: a flat window gives d = 0
 * throughout, so exactly 0 deviation, and nothing cancels against the price level.
 */

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define SPAN 2048 /* outputs per round: the bands' last pass rereads them from cache */

/* One step of a backward suffix sum against `reference`, left at t + period - 1: the
 * output of the window that starts at t. */
static ALWAYS_INLINE void suffix_step(const double *x, ptrdiff_t t, double reference,
                                      ptrdiff_t period, double *s1, double *s2, double *sum,
                                      double *squares)
{
    const double d = x[t] - reference;
    *s1 += d;
    sum[t + period - 1] = *s1;
    if (squares) {
        *s2 += d * d;
        squares[t + period - 1] = *s2;
    }
}

/* The outputs c .. c + period - 1: forward over the prefixes from c, each added to the
 * suffix sum already left at its output (none at the last: that window is the whole block),
 * and, interleaved as independent chains, backward over the suffixes of the next boundary
 * c + period (when `next`). Those backward streams are the first to touch their memory, so
 * with `prefetch` (when the next two blocks exist) it is fetched forward a block or two
 * ahead: without that, periods from ~50 up cost twice as much. With `warm`, outputs before period - 1 (the warm-up) are left alone.
 * Without squares (SMA) an output is the mean; with them (bands) the window's two sums and
 * x[c], for band_values. */
static ALWAYS_INLINE void block(const double *x, ptrdiff_t c, ptrdiff_t period, int next,
                                int warm, int prefetch, double *sum, double *squares,
                                double *reference)
{
    const double ref = x[c];
    const double ref_next = next ? x[c + period] : 0.0;
    double p1 = 0.0, p2 = 0.0, q1 = 0.0, q2 = 0.0;
    for (ptrdiff_t r = 0; r < period; r++) {
        const ptrdiff_t o = c + r;
        const int whole = r == period - 1;
        if (prefetch) {
            __builtin_prefetch(x + o + period, 0, 3);
            __builtin_prefetch(sum + o + 2 * period, 1, 3);
            if (squares) {
                __builtin_prefetch(squares + o + 2 * period, 1, 3);
                __builtin_prefetch(reference + o + 2 * period, 1, 3);
            }
        }
        const double d = x[o] - ref;
        p1 += d;
        if (squares)
            p2 += d * d;
        if (next && !whole)
            suffix_step(x, c + period - 1 - r, ref_next, period, &q1, &q2, sum, squares);
        if (warm && o < period - 1)
            continue;
        const double total = whole ? p1 : p1 + sum[o];
        if (!squares) {
            sum[o] = ref + total / (double)period;
            continue;
        }
        sum[o] = total;
        squares[o] = whole ? p2 : p2 + squares[o];
        reference[o] = ref;
    }
}

/* Bands from a window's sums S1, S2 of d (in middle and upper) and its x[c] (in lower):
 * mean = x[c] + S1 / period, M = S2 - S1^2 / period (clamped at 0), half width
 * sqrt(M * scale), scale = nbdev^2 / period. A flat loop, vectorised with its sqrt. */
static ALWAYS_INLINE void band_values(ptrdiff_t from, ptrdiff_t to, ptrdiff_t period,
                                      double scale, double *restrict upper,
                                      double *restrict middle, double *restrict lower)
{
    const double p = (double)period;
    for (ptrdiff_t o = from; o < to; o++) {
        const double s1 = middle[o];
        const double mean = s1 / p;
        double deviations = upper[o] - s1 * mean;
        deviations = deviations > 0.0 ? deviations : 0.0;
        const double half_width = sqrt(deviations * scale);
        const double m = lower[o] + mean;
        middle[o] = m;
        upper[o] = m + half_width;
        lower[o] = m - half_width;
    }
}

/* Every window from index period - 1 on (needs n >= period); with squares, the bands of
 * each round of blocks are computed while its sums are still in cache. */
static ALWAYS_INLINE void moving_windows(const double *x, ptrdiff_t n, ptrdiff_t period,
                                         double scale, double *sum, double *squares,
                                         double *reference)
{
    const ptrdiff_t blocks = SPAN > period ? SPAN / period : 1;
    ptrdiff_t c = n % period; /* the first boundary: its suffixes reach back to x[0] */
    double s1 = 0.0, s2 = 0.0;
    for (ptrdiff_t t = c - 1; t >= 0; t--)
        suffix_step(x, t, x[c], period, &s1, &s2, sum, squares);
    block(x, c, period, c + period < n, 1, c + 3 * period <= n, sum, squares, reference);
    if (squares)
        band_values(period - 1, c + period, period, scale, squares, sum, reference);
    for (c += period; c < n;) {
        const ptrdiff_t start = c;
        ptrdiff_t b = 0;
        for (; b < blocks && c + 3 * period <= n; b++, c += period)
            block(x, c, period, 1, 0, 1, sum, squares, reference);
        for (; b < blocks && c < n - period; b++, c += period) /* the last few */
            block(x, c, period, 1, 0, 0, sum, squares, reference);
        if (c == n - period) { /* the last block: no boundary after it */
            block(x, c, period, 0, 0, 0, sum, squares, reference);
            c = n;
        }
        if (squares)
            band_values(start, c, period, scale, squares, sum, reference);
    }
}

/* Simple moving average from index period - 1 on (needs n >= period): x[c] plus the
 * window's sum of d, divided by period. */
HOT void tk_sma(const double *x, ptrdiff_t n, ptrdiff_t period, double *out)
{
    moving_windows(x, n, period, 0.0, out, NULL, NULL);
}

/* Bands from index period - 1 on (needs n >= period): middle = the window's mean, upper and
 * lower = middle +/- sqrt(scale * sum of squared deviations), scale = nbdev^2 / period. */
HOT void tk_bbands(const double *x, ptrdiff_t n, ptrdiff_t period, double scale, double *upper,
                   double *middle, double *lower)
{
    moving_windows(x, n, period, scale, middle, upper, lower);
}

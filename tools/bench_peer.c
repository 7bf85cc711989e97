/* The compiled-C peer of tools/bench.py: a per-sample LSTM and GRU written plainly in C for the compiler to
 * optimise, the hidden size fixed at compile time.  bench.py builds it once per hidden size, float type and
 * activation path, as
 *
 *   cc -O3 -march=native -ffast-math -fopenmp-simd -shared -fPIC -DH=32 -DREAL=float [-DFAST] bench_peer.c \
 *      -o peer.so -lm
 *
 * Model: 1 input -> cell(H) -> Dense(1), plus the input (skip), from a zero state.  Weights as nbrnn's kernels
 * take them: the recurrent matrix transposed (H rows of G·H gate weights, gates i f g o, or r z n), the input
 * weights and biases as G·H vectors, the rows of the sigmoid gates (i f o; r z) pre-scaled by 1/2, so that one
 * tanh serves every gate: sigmoid(v) = 1/2 + tanh(v/2)/2.
 *
 * FAST: nbrnn's fast rational tanh (its coefficients passed in `k`, the input clamped at ±k[0]), evaluated in
 * one loop with the cell update, where it inlines.  Otherwise tanh() from the C library in loops of their own,
 * marked `omp simd` (without it GCC 12 unrolled the GRU's short loops and called the scalar tanh), where the
 * compiler calls the library's vector variant (glibc's libmvec, with -ffast-math).  Each layout was the faster
 * of the two for its path.
 */
#include <math.h>

#ifndef H
#error "compile with -DH=<hidden size>"
#endif
#ifndef REAL
#define REAL float
#endif

#define HALF ((REAL)0.5)

static inline REAL tanh_rational(REAL x, const REAL *k)
{
    REAL a = x > k[0] ? k[0] : (x < -k[0] ? -k[0] : x);
    REAL u = a * a, u2 = u * u;
    REAL num = a * u * (u2 * (u * k[5] + k[4]) + (u * k[3] + k[2])) + a;
    REAL den = u2 * (u2 * k[9] + (u * k[8] + k[7])) + (u * k[6] + k[1]);
    return num / den;
}

#ifdef FAST
#define TANH(x) tanh_rational((x), k)
#else
#define TANH(x) ((REAL)tanh(x))
#endif

/* y[t] = b_out + x[t] + w_out · h_t over n samples; bias = b_ih + b_hh */
void lstm(const REAL *restrict x, REAL *restrict y, long n, const REAL *restrict w_ih, const REAL *restrict w_hh,
          const REAL *restrict bias, const REAL *restrict w_out, REAL b_out, const REAL *restrict k)
{
    REAL h[H] = {0}, c[H] = {0}, z[4 * H];
    (void)k;
    for (long t = 0; t < n; t++) {
        REAL xt = x[t];
        for (int g = 0; g < 4 * H; g++)
            z[g] = bias[g] + w_ih[g] * xt;
        for (int j = 0; j < H; j++)
            for (int g = 0; g < 4 * H; g++)
                z[g] += w_hh[j * 4 * H + g] * h[j];
#pragma omp simd
        for (int g = 0; g < 4 * H; g++)
            z[g] = TANH(z[g]);
        REAL s = b_out + xt;
#ifdef FAST
        for (int j = 0; j < H; j++) {
            c[j] = (HALF + HALF * z[H + j]) * c[j] + (HALF + HALF * z[j]) * z[2 * H + j];
            h[j] = (HALF + HALF * z[3 * H + j]) * TANH(c[j]);
            s += w_out[j] * h[j];
        }
#else
        REAL tc[H];
        for (int j = 0; j < H; j++)
            c[j] = (HALF + HALF * z[H + j]) * c[j] + (HALF + HALF * z[j]) * z[2 * H + j];
#pragma omp simd
        for (int j = 0; j < H; j++)
            tc[j] = TANH(c[j]);
        for (int j = 0; j < H; j++) {
            h[j] = (HALF + HALF * z[3 * H + j]) * tc[j];
            s += w_out[j] * h[j];
        }
#endif
        y[t] = s;
    }
}

/* bias = b_ih with b_hh's r and z parts added; bias_n = b_hh's n part, which sits inside r·(...) */
void gru(const REAL *restrict x, REAL *restrict y, long n, const REAL *restrict w_ih, const REAL *restrict w_hh,
         const REAL *restrict bias, const REAL *restrict bias_n, const REAL *restrict w_out, REAL b_out,
         const REAL *restrict k)
{
    REAL h[H] = {0}, zx[3 * H], zh[3 * H];
    (void)k;
    for (long t = 0; t < n; t++) {
        REAL xt = x[t];
        for (int g = 0; g < 3 * H; g++) {
            zx[g] = bias[g] + w_ih[g] * xt;
            zh[g] = g < 2 * H ? (REAL)0 : bias_n[g - 2 * H];
        }
        for (int j = 0; j < H; j++)
            for (int g = 0; g < 3 * H; g++)
                zh[g] += w_hh[j * 3 * H + g] * h[j];
        REAL s = b_out + xt;
#ifdef FAST
        for (int j = 0; j < H; j++) {
            REAL r = HALF + HALF * TANH(zx[j] + zh[j]);
            REAL u = HALF + HALF * TANH(zx[H + j] + zh[H + j]);
            REAL m = TANH(zx[2 * H + j] + r * zh[2 * H + j]);
            h[j] = m + u * (h[j] - m);
            s += w_out[j] * h[j];
        }
#else
        REAL ru[2 * H], m[H];
#pragma omp simd
        for (int g = 0; g < 2 * H; g++)
            ru[g] = HALF + HALF * TANH(zx[g] + zh[g]);
#pragma omp simd
        for (int j = 0; j < H; j++)
            m[j] = TANH(zx[2 * H + j] + ru[j] * zh[2 * H + j]);
        for (int j = 0; j < H; j++) {
            h[j] = m[j] + ru[H + j] * (h[j] - m[j]);
            s += w_out[j] * h[j];
        }
#endif
        y[t] = s;
    }
}

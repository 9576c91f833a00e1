//! The inner loops of a training step, compiled once per instruction set and picked at run time.
//!
//! The crate is built for baseline x86-64 (SSE2: 4 lanes, no FMA), so a release binary runs on any
//! x86-64 machine. These loops (row dot products, `y += w·x`, the lazy-Adam row update, the
//! softmax row) are where a step spends what its gemms do not; [`multiversion`] compiles each for
//! AVX-512 and AVX2 as well and dispatches on the CPU it finds.
//!
//! Every function fixes its own order of operations: reductions run over [`LANES`] partial sums
//! combined in a fixed order, and no multiply-add is fused (Rust never contracts `a * b + c`), so
//! each version returns the same bits as the others: which one runs changes the speed, not the
//! model. (The gemm crate picks its own kernels per instruction set, whose roundings may differ, so
//! the promise of the same model stays "same seed, same thread count, same machine".)

use multiversion::multiversion;

/// Partial sums of a reduction: one AVX-512 register, or two AVX2 ones.
pub(crate) const LANES: usize = 16;

/// `Σ a_i · b_i` over [`LANES`] partial sums (a fixed order, unlike a sequential sum, which the
/// compiler may not vectorise).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[l] += x * y;
    }
    sum_lanes(&acc)
}

/// The [`LANES`] partial sums added pairwise in a fixed order.
#[inline(always)]
fn sum_lanes(acc: &[f32; LANES]) -> f32 {
    let mut h = [0f32; LANES / 2];
    for l in 0..LANES / 2 {
        h[l] = acc[l] + acc[l + LANES / 2];
    }
    let mut q = [0f32; LANES / 4];
    for l in 0..LANES / 4 {
        q[l] = h[l] + h[l + LANES / 4];
    }
    (q[0] + q[2]) + (q[1] + q[3])
}

/// `y += w · x` (plain `y += x` when `w` is 1, bit for bit the same as multiplying by 1).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn axpy(y: &mut [f32], w: f32, x: &[f32]) {
    for (d, s) in y.iter_mut().zip(x) {
        *d += w * s;
    }
}

/// One lazy-Adam row: first and second moments, then `w -= lr_t · m / (sqrt(v) + eps)`.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn adam_row(w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], k: AdamStep) {
    for (((w, m), v), &g) in w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
        *m = k.beta1 * *m + (1.0 - k.beta1) * g;
        *v = k.beta2 * *v + (1.0 - k.beta2) * g * g;
        *w -= k.lr_t * *m / (v.sqrt() + k.eps);
    }
}

/// The constants of one Adam step ([`adam_row`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamStep {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// The bias-corrected learning rate of this step.
    pub lr_t: f32,
}

/// One Adagrad row: `acc += g²`, then `w -= lr · g / sqrt(acc)`.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn adagrad_row(w: &mut [f32], acc: &mut [f32], g: &[f32], lr: f32) {
    for ((w, acc), &g) in w.iter_mut().zip(acc.iter_mut()).zip(g) {
        *acc += g * g;
        *w -= lr * g / acc.sqrt();
    }
}

/// `x = x · s - q` elementwise (`q` empty: `x = x · s`), returning the largest result (`-inf` for none) over
/// [`LANES`] partial maxima: one pass where a scaling then a maximum would take two over a row of
/// the `[B, C]` block. With `s > 0` and `q` finite (a logQ is the log of a probability floored
/// above 0), a masked logit set to `-inf` beforehand stays `-inf`.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn scale_sub_max(x: &mut [f32], s: f32, q: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let full = x.len() / LANES * LANES;
    let (body, tail) = x.split_at_mut(full);
    if q.is_empty() {
        for ch in body.chunks_exact_mut(LANES) {
            for (a, v) in acc.iter_mut().zip(ch.iter_mut()) {
                *v *= s;
                *a = if *v > *a { *v } else { *a };
            }
        }
    } else {
        for (ch, qc) in body.chunks_exact_mut(LANES).zip(q.chunks_exact(LANES)) {
            for ((a, v), &q) in acc.iter_mut().zip(ch.iter_mut()).zip(qc) {
                *v = *v * s - q;
                *a = if *v > *a { *v } else { *a };
            }
        }
    }
    let mut m = acc.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    for (i, v) in tail.iter_mut().enumerate() {
        *v = match q.get(full + i) {
            Some(&q) => *v * s - q,
            None => *v * s,
        };
        m = m.max(*v);
    }
    m
}

/// Replaces each `x` by `e^(x - m)` and returns their sum ([`LANES`] partial sums, then combined in a
/// fixed order, so the result does not depend on threads or on the instruction set).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn exp_sub_and_sum(x: &mut [f32], m: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = x.chunks_exact_mut(LANES);
    for ch in &mut chunks {
        for (a, v) in acc.iter_mut().zip(ch.iter_mut()) {
            let e = fast_exp(*v - m);
            *v = e;
            *a += e;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for v in chunks.into_remainder() {
        let e = fast_exp(*v - m);
        *v = e;
        sum += e;
    }
    sum
}

/// `x = x · s` elementwise: a row of softmax probabilities scaled into its gradient.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn scale(x: &mut [f32], s: f32) {
    x.iter_mut().for_each(|v| *v *= s);
}

/// `e^x` to about 2 ulp, written so the compiler vectorises it (libm's `expf` does not).
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer in the low bits
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + MAGIC;
    let n = t.to_bits() as i32 - MAGIC.to_bits() as i32;
    let nf = t - MAGIC;
    let r = x - nf * LN2_HI - nf * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    f32::from_bits(((n + 127) << 23) as u32) * e
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain scalar versions: the reference each dispatched kernel must match bit for bit.
    fn dot_ref(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0f32; LANES];
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            acc[i % LANES] += x * y;
        }
        sum_lanes(&acc)
    }

    fn data(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    #[test]
    fn dot_is_the_fixed_lane_order_at_every_length() {
        for n in [0, 1, 15, 16, 17, 64, 127, 128, 300] {
            let (a, b) = (data(n, 1), data(n, 7));
            assert_eq!(dot(&a, &b).to_bits(), dot_ref(&a, &b).to_bits(), "n = {n}");
        }
    }

    #[test]
    fn adam_and_axpy_match_the_scalar_formulas() {
        let g = data(37, 3);
        let (mut w, mut m, mut v) = (
            data(37, 4),
            data(37, 5),
            data(37, 6).iter().map(|x| x.abs()).collect::<Vec<_>>(),
        );
        let (w0, m0, v0) = (w.clone(), m.clone(), v.clone());
        let k = AdamStep {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            lr_t: 0.01,
        };
        adam_row(&mut w, &mut m, &mut v, &g, k);
        for i in 0..37 {
            let mi = 0.9 * m0[i] + (1.0 - 0.9) * g[i];
            let vi = 0.999 * v0[i] + (1.0 - 0.999) * g[i] * g[i];
            let wi = w0[i] - 0.01 * mi / (vi.sqrt() + 1e-8);
            assert_eq!(
                (w[i].to_bits(), m[i].to_bits(), v[i].to_bits()),
                (wi.to_bits(), mi.to_bits(), vi.to_bits())
            );
        }
        let mut y = data(37, 8);
        let y0 = y.clone();
        axpy(&mut y, 0.25, &g);
        for i in 0..37 {
            assert_eq!(y[i].to_bits(), (y0[i] + 0.25 * g[i]).to_bits());
        }
    }

    #[test]
    fn softmax_pieces_match_the_scalar_formulas() {
        let mut x = data(1000, 9);
        let q = data(1000, 10);
        let x0 = x.clone();
        for i in 0..1000 {
            x[i] = x0[i] * 2.5 - q[i];
        }
        let mut scaled = x0.clone();
        scale(&mut scaled, 2.5);
        for i in 0..1000 {
            assert_eq!(scaled[i].to_bits(), (x0[i] * 2.5).to_bits());
        }
        let mut y = x0.clone();
        for h in [3, 500, 999] {
            y[h] = f32::NEG_INFINITY;
        }
        let m = scale_sub_max(&mut y, 2.5, &q);
        for i in 0..1000 {
            let want = if [3, 500, 999].contains(&i) {
                f32::NEG_INFINITY
            } else {
                x[i]
            };
            assert_eq!(y[i].to_bits(), want.to_bits(), "{i}");
        }
        assert_eq!(m, y.iter().cloned().fold(f32::NEG_INFINITY, f32::max));
        let mut y2 = x0.clone();
        assert_eq!(
            scale_sub_max(&mut y2, 2.5, &[]),
            x0.iter().map(|v| v * 2.5).fold(f32::NEG_INFINITY, f32::max)
        );
        let before = x.clone();
        let s = exp_sub_and_sum(&mut x, m);
        let want: f32 = {
            let mut acc = [0f32; LANES];
            let full = 1000 / LANES * LANES;
            for (i, v) in before[..full].iter().enumerate() {
                acc[i % LANES] += fast_exp(v - m);
            }
            let mut s: f32 = acc.iter().sum();
            for v in &before[full..] {
                s += fast_exp(v - m);
            }
            s
        };
        assert_eq!(s.to_bits(), want.to_bits());
        for (e, v) in x.iter().zip(&before) {
            assert_eq!(e.to_bits(), fast_exp(v - m).to_bits());
            assert!((e - (v - m).exp()).abs() <= 1e-6 * (v - m).exp().max(1e-30) + 1e-37);
        }
    }
}

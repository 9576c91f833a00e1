//! The metric: cosine similarity on L2-normalised vectors, computed as squared L2 distance inside
//! the graph and reported as a dot-product score.
//!
//! Every stored row and every query is normalised to unit length, so `|a-b|² = 2 - 2 a·b` and
//! `score = a·b = 1 - |a-b|²/2`. Squared L2 never needs an assertion about its range (it is a sum of
//! squares), unlike `1 - a·b`, which rounding can push below zero and which hnsw_rs's `DistDot` asserts on.

use hnsw_rs::prelude::Distance;

/// Why a vector cannot be normalised.
pub(crate) const NOT_FINITE: &str = "contains NaN or infinite components";
/// Why a vector cannot be normalised.
pub(crate) const ZERO_NORM: &str = "has zero norm (cannot be normalised for cosine similarity)";

/// Scales `v` to unit length in place. A vector with a non-finite component or zero norm is
/// rejected rather than silently producing NaN scores later.
pub fn normalize(v: &mut [f32]) -> std::result::Result<(), &'static str> {
    if v.iter().any(|x| !x.is_finite()) {
        return Err(NOT_FINITE);
    }
    // f64 accumulation: a huge but finite component must not overflow the norm to infinity.
    let norm = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(ZERO_NORM);
    }
    let inv = 1.0 / norm;
    for x in v.iter_mut() {
        *x = (f64::from(*x) * inv) as f32;
    }
    Ok(())
}

/// Copies row-major `vectors` (n × `dim`) and normalises every row. The error names the first bad
/// row and, when `ids` is given, its item id.
pub fn normalize_rows(dim: usize, vectors: &[f32], ids: Option<&[String]>) -> crate::Result<Vec<f32>> {
    if dim == 0 {
        return Err(crate::Error::InvalidParam {
            name: "dim",
            problem: "must be at least 1".into(),
        });
    }
    if !vectors.len().is_multiple_of(dim) {
        return Err(crate::Error::Dimension {
            what: format!(
                "vectors ({} floats, not a multiple of the dimension)",
                vectors.len()
            ),
            expected: dim,
            got: vectors.len() % dim,
        });
    }
    if let Some(ids) = ids {
        if ids.len() * dim != vectors.len() {
            return Err(crate::Error::BadIds(format!(
                "{} ids for {} vectors",
                ids.len(),
                vectors.len() / dim
            )));
        }
    }
    let mut out = vectors.to_vec();
    for (row, v) in out.chunks_exact_mut(dim).enumerate() {
        normalize(v).map_err(|problem| crate::Error::BadVector {
            row,
            item: ids.map(|ids| ids[row].clone()).unwrap_or_default(),
            problem,
        })?;
    }
    Ok(out)
}

/// Normalises a query copy; the error names the query's position in its batch.
pub(crate) fn normalize_query(dim: usize, q: &[f32], index: usize) -> crate::Result<Vec<f32>> {
    if q.len() != dim {
        return Err(crate::Error::Dimension {
            what: format!("query {index}"),
            expected: dim,
            got: q.len(),
        });
    }
    let mut v = q.to_vec();
    match normalize(&mut v) {
        Ok(()) => Ok(v),
        // A zero query has no direction: every row scores 0, which is an answer, not an error.
        Err(ZERO_NORM) => Ok(v),
        Err(problem) => Err(crate::Error::BadQuery { index, problem }),
    }
}

/// Normalises a row-major batch of queries (`queries.len() / dim` of them) into one copy; the error
/// names the first bad query's position.
pub(crate) fn normalize_queries(dim: usize, queries: &[f32]) -> crate::Result<Vec<f32>> {
    if !queries.len().is_multiple_of(dim) {
        return Err(crate::Error::Dimension {
            what: format!("query batch ({} floats)", queries.len()),
            expected: dim,
            got: queries.len() % dim,
        });
    }
    let mut qs = Vec::with_capacity(queries.len());
    for (i, q) in queries.chunks_exact(dim).enumerate() {
        qs.extend_from_slice(&normalize_query(dim, q, i)?);
    }
    Ok(qs)
}

/// Converts a squared L2 distance between unit vectors to the cosine score, clamped to [-1, 1]
/// so rounding never reports a similarity above 1.
#[inline]
pub fn score_from_sq_l2(d2: f32) -> f32 {
    (1.0 - 0.5 * d2).clamp(-1.0, 1.0)
}

/// Squared Euclidean distance for unit vectors, as hnsw_rs's distance.
///
/// Squared (not plain) L2: the graph only compares distances, the square root is wasted work. The
/// result is never NaN and never negative, so hnsw_rs's `dist >= 0` assertions cannot fire.
/// Its type name is recorded in the graph dump: do not rename or move it.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnitL2;

impl Distance<f32> for UnitL2 {
    #[inline]
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        let d = sq_l2(va, vb);
        if d.is_nan() {
            f32::MAX
        } else {
            d
        }
    }
}

/// Squared L2 distance with AVX2/FMA when the CPU has it (checked once per call through the
/// standard library's cached CPU detection).
#[inline]
pub fn sq_l2(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { sq_l2_avx2(a, b) };
        }
    }
    sq_l2_portable(a, b)
}

/// Dot product with AVX2/FMA when available.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sq_l2_avx2(a: &[f32], b: &[f32]) -> f32 {
    sq_l2_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_portable(a, b)
}

/// 16 independent lanes so the compiler vectorises without reassociating floats.
#[inline(always)]
pub(crate) fn sq_l2_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 16];
    let mut ca = a.chunks_exact(16);
    let mut cb = b.chunks_exact(16);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..16 {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        let d = x - y;
        tail += d * d;
    }
    reduce16(&acc) + tail
}

#[inline(always)]
pub(crate) fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 16];
    let mut ca = a.chunks_exact(16);
    let mut cb = b.chunks_exact(16);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    reduce16(&acc) + tail
}

#[inline(always)]
fn reduce16(acc: &[f32; 16]) -> f32 {
    let mut h = [0f32; 8];
    for i in 0..8 {
        h[i] = acc[i] + acc[i + 8];
    }
    let q = [h[0] + h[4], h[1] + h[5], h[2] + h[6], h[3] + h[7]];
    (q[0] + q[2]) + (q[1] + q[3])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_unnormalisable_vectors() {
        assert_eq!(normalize(&mut [0.0, 0.0]), Err(ZERO_NORM));
        assert_eq!(normalize(&mut [f32::NAN, 1.0]), Err(NOT_FINITE));
        assert_eq!(normalize(&mut [f32::INFINITY, 1.0]), Err(NOT_FINITE));
        let mut big = [f32::MAX, f32::MAX];
        normalize(&mut big).unwrap();
        assert!((big[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn l2_score_matches_dot_and_never_exceeds_one(
            mut a in proptest::collection::vec(-100f32..100.0, 1..70),
            seed in proptest::collection::vec(-100f32..100.0, 70),
        ) {
            let mut b: Vec<f32> = seed[..a.len()].to_vec();
            prop_assume!(normalize(&mut a).is_ok() && normalize(&mut b).is_ok());
            let d2 = UnitL2.eval(&a, &b);
            prop_assert!(d2 >= 0.0);
            let s = score_from_sq_l2(d2);
            prop_assert!((-1.0..=1.0).contains(&s));
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            prop_assert!((s - naive).abs() < 1e-4, "{} vs {}", s, naive);
            prop_assert!((dot(&a, &b) - naive).abs() < 1e-4);
            // A vector against itself: distance 0, score exactly 1.
            prop_assert_eq!(score_from_sq_l2(UnitL2.eval(&a, &a)), 1.0);
        }
    }
}

//! Clustered unit vectors: a cheap stand-in for item-tower embeddings in tests, benchmarks and
//! `check` dry runs. Uniform random vectors are the wrong test for an ANN index (no structure to
//! exploit, and no embedding model produces them); a gaussian mixture around many centres is closer.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::metric::normalize;

/// `n` row-major unit vectors of dimension `dim` drawn around `centres` random unit centres with
/// per-component gaussian noise of standard deviation `spread / sqrt(dim)`. Deterministic in `seed`
/// and prefix-stable: the first `n` rows of a larger draw with the same seed are the same rows, so
/// held-out queries from the same mixture are the tail of one draw.
pub fn clustered_unit_vectors(n: usize, dim: usize, centres: usize, spread: f32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres = centres.max(1);
    let mut c = vec![0f32; centres * dim];
    for v in c.chunks_exact_mut(dim) {
        loop {
            v.iter_mut().for_each(|x| *x = gaussian(&mut rng));
            if normalize(v).is_ok() {
                break;
            }
        }
    }
    let sigma = spread / (dim as f32).sqrt();
    let mut out = vec![0f32; n * dim];
    for v in out.chunks_exact_mut(dim) {
        let k = rng.gen_range(0..centres);
        loop {
            for (x, m) in v.iter_mut().zip(&c[k * dim..(k + 1) * dim]) {
                *x = m + sigma * gaussian(&mut rng);
            }
            if normalize(v).is_ok() {
                break;
            }
        }
    }
    out
}

/// Standard normal sample (Box–Muller), to avoid a distribution dependency.
fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.gen();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

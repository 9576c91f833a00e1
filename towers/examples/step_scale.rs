//! Step time and peak memory of an id-only training step at a given catalogue size:
//! `cargo run --release -p twotower-towers --example step_scale -- 1000000 [steps]` prints the mean step
//! time and the process's peak resident memory (VmHWM), so 10 k and 1 M can be compared.

use std::time::Instant;

use twotower_towers::StepBench;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().unwrap_or_else(|| "1000000".into()).parse()?;
    let steps: usize = args.next().unwrap_or_else(|| "50".into()).parse()?;
    let mut b = StepBench::new(n, n, 64, 1024, None)?;
    for _ in 0..5 {
        b.step()?;
    }
    let t0 = Instant::now();
    for _ in 0..steps {
        b.step()?;
    }
    let ms = t0.elapsed().as_secs_f64() * 1e3 / steps as f64;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?")
        .to_string();
    println!(
        "{n} users x {n} items, d=64, batch 1024: {ms:.2} ms/step, {}",
        hwm.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
    );
    Ok(())
}

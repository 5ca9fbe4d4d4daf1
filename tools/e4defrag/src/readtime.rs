//! A read-time model for a set of files read in order from a hard disk:
//! what the read-order figures are worth in seconds, until the benchmark
//! measures it.
//!
//! The disk is the one the benchmark's throttled profile stands for: 150
//! random accesses per second (seek and rotation, whatever the distance)
//! and 120 MB/s once the head is there. Reading a set costs one access to
//! start, one per read-order discontinuity, and its bytes at the transfer
//! rate. Not modeled: seek distance (a short jump costs as much as a long
//! one), read-ahead across small gaps, the page cache, and the metadata
//! (inodes, extent blocks, directories) read on the way.

/// Random accesses per second.
pub const HDD_ACCESSES_PER_S: f64 = 150.0;
/// Sequential transfer rate, bytes per second.
pub const HDD_BYTES_PER_S: f64 = 120e6;

/// Milliseconds to read `bytes` that lie in `discontinuities + 1` runs
/// (nothing to read: 0).
pub fn hdd_ms(discontinuities: u64, bytes: u64) -> f64 {
    if bytes == 0 {
        return 0.0;
    }
    let accesses = (discontinuities + 1) as f64;
    1000.0 * (accesses / HDD_ACCESSES_PER_S + bytes as f64 / HDD_BYTES_PER_S)
}

#[cfg(test)]
mod tests {
    use super::hdd_ms;

    #[test]
    fn one_run_costs_one_access_and_the_transfer() {
        assert_eq!(hdd_ms(0, 0), 0.0);
        // 12 MB in one run: 6.67 ms + 100 ms.
        assert!((hdd_ms(0, 12_000_000) - 106.667).abs() < 0.01);
        // The same bytes in 11 runs: 10 more accesses.
        assert!((hdd_ms(10, 12_000_000) - 173.333).abs() < 0.01);
    }
}

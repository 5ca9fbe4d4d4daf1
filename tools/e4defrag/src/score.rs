//! The fragmentation score of `e4defrag -c`, with the meaning e2fsprogs'
//! `e4defrag -c` gives it (see Documentation/ext4-defrag/e4defrag.rst):
//!
//! * best extents of a file: its blocks divided by the blocks of one
//!   flex group (the longest run the allocator hands out), rounded up;
//! * ratio: (extents now - best extents) * 100 / blocks, per file and over
//!   a whole set (sums);
//! * score: `8 * ratio` up to a ratio of 10, `80 + ratio / 5` above;
//!   0-30 no problem, 31-55 a little fragmented, above 55 needs defrag.

use std::path::Path;

/// The filesystem numbers the best extent count depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub blocks_per_group: u64,
    pub groups_per_flex: u64,
    /// Read from the superblock (false: assumed from the block size).
    pub from_superblock: bool,
}

impl Geometry {
    /// What `mke2fs` makes by default for `block_size`: a group per bit
    /// of a bitmap block, no flex groups. Used when the superblock cannot
    /// be read (no permission on the device).
    pub fn assumed(block_size: u64) -> Self {
        Geometry {
            blocks_per_group: 8 * block_size,
            groups_per_flex: 1,
            from_superblock: false,
        }
    }

    /// Reads the superblock of the ext4 filesystem on `device`.
    pub fn read(device: &Path) -> std::io::Result<Self> {
        let sb = crate::ext4fs::read_superblock(device, None)?;
        Self::parse(&sb).ok_or_else(|| std::io::Error::other("not an ext4 superblock"))
    }

    /// Parses a 1024-byte ext4 superblock.
    pub fn parse(sb: &[u8; 1024]) -> Option<Self> {
        let le32 = |off: usize| u32::from_le_bytes(sb[off..off + 4].try_into().unwrap());
        const MAGIC: u16 = 0xef53;
        const FLEX_BG: u32 = 0x200;
        if u16::from_le_bytes([sb[56], sb[57]]) != MAGIC {
            return None;
        }
        let blocks_per_group = u64::from(le32(32));
        let flex = le32(96) & FLEX_BG != 0;
        let log_flex = u32::from(sb[372]).min(31);
        Some(Geometry {
            blocks_per_group: blocks_per_group.max(1),
            groups_per_flex: if flex { 1 << log_flex } else { 1 },
            from_superblock: true,
        })
    }

    /// The geometry of the filesystem `device` holds, or the assumed one.
    pub fn of_device_or_assumed(device: Option<&Path>, block_size: u64) -> Self {
        device
            .and_then(|d| Self::read(d).ok())
            .unwrap_or_else(|| Self::assumed(block_size))
    }

    /// Fewest extents `blocks` blocks can have.
    pub fn best_extents(&self, blocks: u64) -> u64 {
        match blocks {
            0 => 0,
            b => (b - 1) / (self.blocks_per_group * self.groups_per_flex) + 1,
        }
    }
}

/// Extents above the best per 100 blocks.
pub fn ratio(extents: u64, best: u64, blocks: u64) -> f64 {
    if blocks == 0 {
        return 0.0;
    }
    (extents as f64 - best as f64) * 100.0 / blocks as f64
}

/// The score for a ratio.
pub fn score(ratio: f64) -> f64 {
    if ratio > 10.0 {
        80.0 + 20.0 * ratio / 100.0
    } else {
        8.0 * ratio
    }
}

/// What a score means.
pub fn verdict(score: f64) -> &'static str {
    if score <= 30.0 {
        "no problem"
    } else if score <= 55.0 {
        "a little fragmented"
    } else {
        "needs defragmentation"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_extents_per_flex_group() {
        let g = Geometry {
            blocks_per_group: 32768,
            groups_per_flex: 16,
            from_superblock: true,
        };
        assert_eq!(g.best_extents(0), 0);
        assert_eq!(g.best_extents(1), 1);
        assert_eq!(g.best_extents(32768 * 16), 1);
        assert_eq!(g.best_extents(32768 * 16 + 1), 2);
        assert_eq!(Geometry::assumed(1024).best_extents(8193), 2);
    }

    #[test]
    fn ratio_and_score_match_e2fsprogs() {
        // 200 blocks in 101 extents, best 1: ratio 50 %, score 90.
        let r = ratio(101, 1, 200);
        assert_eq!(r, 50.0);
        assert_eq!(score(r), 90.0);
        assert_eq!(verdict(score(r)), "needs defragmentation");
        // 1000 blocks in 3 extents: ratio 0.2 %, score 1.6.
        assert!((score(ratio(3, 1, 1000)) - 1.6).abs() < 1e-9);
        assert_eq!(verdict(1.6), "no problem");
        assert_eq!(verdict(40.0), "a little fragmented");
        assert_eq!(ratio(5, 1, 0), 0.0);
    }

    #[test]
    fn parses_a_superblock() {
        let mut sb = [0u8; 1024];
        sb[56..58].copy_from_slice(&0xef53u16.to_le_bytes());
        sb[32..36].copy_from_slice(&32768u32.to_le_bytes());
        sb[96..100].copy_from_slice(&0x2c2u32.to_le_bytes());
        sb[372] = 4;
        let g = Geometry::parse(&sb).unwrap();
        assert_eq!((g.blocks_per_group, g.groups_per_flex), (32768, 16));
        sb[96..100].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(Geometry::parse(&sb).unwrap().groups_per_flex, 1);
        sb[56] = 0;
        assert!(Geometry::parse(&sb).is_none());
    }
}

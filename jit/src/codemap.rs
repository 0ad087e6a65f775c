//! Which guest physical pages hold translated code, and which of them a guest store has dirtied
//! since (self-modifying code, DESIGN.md §4).
//!
//! The engine marks a page when it translates code in it. A guest's store slow path, on a page
//! whose TLB write tag carries `TLB_NOTDIRTY`, calls [`CodeMap::note_write`]: if the page holds
//! code it is queued and the vCPU is asked to leave generated code (`insn_limit = 0`); the engine
//! drains the queue before its next block lookup and invalidates every block in those pages.
//!
//! The pages are one bit each in a bitmap over the low [`BITMAP_LIMIT`] bytes of physical
//! memory (where boards put their RAM and ROM), allocated by chunks on first use, so asking
//! about a page that holds no code — every TLB fill for a store, every page-table A/D update,
//! every DMA write — is one atomic load with no lock. Pages above the limit go to a locked set,
//! which is skipped while it is empty.

use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::env::{PAGE_BITS, PAGE_MASK};

/// Physical addresses below this are tracked in the bitmap (64 GiB: RISC-V `virt` puts RAM at
/// 2 GiB, so this holds tens of GiB of RAM).
pub const BITMAP_LIMIT: u64 = 1 << 36;
/// Pages per bitmap chunk (log2): 2^15 pages are 128 MiB of guest memory in 4 KiB of bits.
const CHUNK_PAGES_LOG2: u32 = 15;
const CHUNK_WORDS: usize = 1 << (CHUNK_PAGES_LOG2 - 6);
const NB_CHUNKS: usize = (BITMAP_LIMIT >> (PAGE_BITS + CHUNK_PAGES_LOG2)) as usize;

/// The bits of 2^CHUNK_PAGES_LOG2 consecutive pages.
struct Chunk([AtomicU64; CHUNK_WORDS]);

impl Chunk {
    fn new() -> Box<Chunk> {
        Box::new(Chunk([const { AtomicU64::new(0) }; CHUNK_WORDS]))
    }
}

pub struct CodeMap {
    /// Chunk `i` covers pages `i << CHUNK_PAGES_LOG2 ..`; allocated when one of its pages
    /// first holds code (`OnceLock::get` is a plain acquire load once set).
    chunks: Box<[OnceLock<Box<Chunk>>]>,
    /// Code pages at or above `BITMAP_LIMIT`, and how many there are (read without the lock).
    high: Mutex<BTreeSet<u64>>,
    high_len: AtomicUsize,
    dirty: Mutex<Vec<u64>>,
    has_dirty: AtomicBool,
    /// Bumped each time a page newly holds code. A vCPU whose TLB write entries may predate
    /// that (another vCPU translated the page) compares it with the value it last saw
    /// ([`crate::guest::Guest::sync_code_pages`]).
    generation: AtomicU64,
}

impl std::fmt::Debug for CodeMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeMap")
            .field(
                "chunks_allocated",
                &self.chunks.iter().flat_map(|c| c.get()).count(),
            )
            .field("high_pages", &self.high_len.load(Ordering::Relaxed))
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Default for CodeMap {
    fn default() -> Self {
        CodeMap {
            chunks: (0..NB_CHUNKS).map(|_| OnceLock::new()).collect(),
            high: Mutex::new(BTreeSet::new()),
            high_len: AtomicUsize::new(0),
            dirty: Mutex::new(Vec::new()),
            has_dirty: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        }
    }
}

/// Chunk index, word index in the chunk and bit mask of a page in the bitmap; `None` above
/// [`BITMAP_LIMIT`].
fn bit_of(phys_addr: u64) -> Option<(usize, usize, u64)> {
    if phys_addr >= BITMAP_LIMIT {
        return None;
    }
    let page = phys_addr >> PAGE_BITS;
    let chunk = (page >> CHUNK_PAGES_LOG2) as usize;
    let in_chunk = (page & ((1 << CHUNK_PAGES_LOG2) - 1)) as usize;
    Some((chunk, in_chunk / 64, 1 << (in_chunk % 64)))
}

impl CodeMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bitmap word holding `phys_addr`'s bit and the bit, if its chunk exists.
    fn word(&self, phys_addr: u64) -> Option<(&AtomicU64, u64)> {
        let (chunk, word, mask) = bit_of(phys_addr)?;
        let w = self.chunks.get(chunk)?.get()?.0.get(word)?;
        Some((w, mask))
    }

    /// Record that `phys_addr`'s page holds translated code. Returns true if it is new.
    pub fn add_page(&self, phys_addr: u64) -> bool {
        let new = match bit_of(phys_addr) {
            Some((chunk, word, mask)) => self
                .chunks
                .get(chunk)
                .map(|c| c.get_or_init(Chunk::new))
                .and_then(|c| c.0.get(word))
                .is_some_and(|w| w.fetch_or(mask, Ordering::AcqRel) & mask == 0),
            None => {
                let new = self.high.lock().insert(phys_addr & PAGE_MASK);
                if new {
                    self.high_len.fetch_add(1, Ordering::AcqRel);
                }
                new
            }
        };
        if new {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        new
    }

    /// How many times a page newly became code (see the field's docs).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn page_has_code(&self, phys_addr: u64) -> bool {
        if phys_addr < BITMAP_LIMIT {
            return self
                .word(phys_addr)
                .is_some_and(|(w, mask)| w.load(Ordering::Acquire) & mask != 0);
        }
        self.high_len.load(Ordering::Acquire) != 0
            && self.high.lock().contains(&(phys_addr & PAGE_MASK))
    }

    /// Take `phys_addr`'s page out of the map; true if it was there.
    fn remove(&self, phys_addr: u64) -> bool {
        if phys_addr < BITMAP_LIMIT {
            // A plain load first: most writes reach pages without code, and those must not
            // pay for a locked read-modify-write.
            return self.word(phys_addr).is_some_and(|(w, mask)| {
                w.load(Ordering::Acquire) & mask != 0
                    && w.fetch_and(!mask, Ordering::AcqRel) & mask != 0
            });
        }
        if self.high_len.load(Ordering::Acquire) == 0 {
            return false;
        }
        let removed = self.high.lock().remove(&(phys_addr & PAGE_MASK));
        if removed {
            self.high_len.fetch_sub(1, Ordering::AcqRel);
        }
        removed
    }

    /// A guest (or DMA) wrote to `phys_addr`. Returns true if the page held code and was queued
    /// for invalidation (the caller then makes the vCPU leave generated code).
    pub fn note_write(&self, phys_addr: u64) -> bool {
        if !self.remove(phys_addr) {
            return false;
        }
        self.dirty.lock().push(phys_addr & PAGE_MASK);
        self.has_dirty.store(true, Ordering::Release);
        true
    }

    /// Take the pages written since the last call.
    pub fn take_dirty(&self) -> Vec<u64> {
        // Called before every block lookup: the common case must be one plain load, not an
        // atomic read-modify-write.
        if !self.has_dirty.load(Ordering::Acquire) || !self.has_dirty.swap(false, Ordering::AcqRel)
        {
            return Vec::new();
        }
        std::mem::take(&mut *self.dirty.lock())
    }

    /// Forget every page (after a full code-cache flush).
    pub fn clear(&self) {
        for chunk in self.chunks.iter().flat_map(|c| c.get()) {
            for w in &chunk.0 {
                w.store(0, Ordering::Release);
            }
        }
        let mut high = self.high.lock();
        high.clear();
        self.high_len.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 0x8000_0000;

    #[test]
    fn a_page_is_code_until_written_once() {
        let map = CodeMap::new();
        assert!(!map.page_has_code(RAM + 0x1234));
        assert!(
            !map.note_write(RAM + 0x1234),
            "no chunk yet: nothing to remove"
        );
        assert!(map.add_page(RAM + 0x1010));
        assert!(!map.add_page(RAM + 0x1ffc), "same page");
        assert_eq!(map.generation(), 1);
        assert!(map.page_has_code(RAM + 0x1000));
        assert!(!map.page_has_code(RAM + 0x2000) && !map.page_has_code(RAM));
        assert!(!map.note_write(RAM + 0x2000));
        assert!(map.note_write(RAM + 0x1008));
        assert!(!map.note_write(RAM + 0x1008), "queued once");
        assert!(!map.page_has_code(RAM + 0x1000));
        assert_eq!(map.take_dirty(), vec![RAM + 0x1000]);
        assert_eq!(map.take_dirty(), Vec::<u64>::new());
        // Code again: a new generation.
        assert!(map.add_page(RAM + 0x1000));
        assert_eq!(map.generation(), 2);
    }

    #[test]
    fn every_bit_of_a_chunk_and_its_edges() {
        let map = CodeMap::new();
        let chunk_bytes = 1u64 << (PAGE_BITS + CHUNK_PAGES_LOG2);
        let pages = [
            0,
            0x1000,
            63 << PAGE_BITS,
            64 << PAGE_BITS,
            chunk_bytes - 0x1000,
            chunk_bytes,
            BITMAP_LIMIT - 0x1000,
        ];
        for &p in &pages {
            assert!(map.add_page(p), "{p:#x}");
        }
        for &p in &pages {
            assert!(map.page_has_code(p + 0xfff), "{p:#x}");
            assert!(!map.page_has_code(p + 0x2000) || pages.contains(&(p + 0x2000)));
        }
        for &p in &pages {
            assert!(map.note_write(p), "{p:#x}");
        }
        assert_eq!(map.take_dirty(), pages.to_vec());
    }

    #[test]
    fn pages_above_the_bitmap_use_the_fallback_set() {
        let map = CodeMap::new();
        let high = BITMAP_LIMIT + 0x5000;
        assert!(!map.note_write(high));
        assert!(map.add_page(high + 4));
        assert!(map.page_has_code(high + 0xfff));
        assert!(!map.page_has_code(high + 0x1000));
        assert!(map.note_write(high));
        assert!(!map.page_has_code(high));
        assert_eq!(map.take_dirty(), vec![high]);
        assert!(map.add_page(u64::MAX));
        assert!(map.page_has_code(PAGE_MASK));
    }

    #[test]
    fn clear_forgets_every_page() {
        let map = CodeMap::new();
        for p in [0x1000, RAM, RAM + (5 << 30), BITMAP_LIMIT] {
            map.add_page(p);
        }
        map.clear();
        for p in [0x1000, RAM, RAM + (5 << 30), BITMAP_LIMIT] {
            assert!(!map.page_has_code(p), "{p:#x}");
            assert!(!map.note_write(p));
        }
        assert!(map.take_dirty().is_empty());
    }
}

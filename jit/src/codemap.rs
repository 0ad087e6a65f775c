//! Which guest physical pages hold translated code, and which of them a guest store has dirtied
//! since (self-modifying code, DESIGN.md §4).
//!
//! The engine marks a page when it translates code in it. A guest's store slow path, on a page
//! whose TLB write tag carries `TLB_NOTDIRTY`, calls [`CodeMap::note_write`]: if the page holds
//! code it is queued and the vCPU is asked to leave generated code (`insn_limit = 0`); the engine
//! drains the queue before its next block lookup and invalidates every block in those pages.

use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::env::PAGE_MASK;

#[derive(Debug, Default)]
pub struct CodeMap {
    pages: Mutex<BTreeSet<u64>>,
    dirty: Mutex<Vec<u64>>,
    has_dirty: AtomicBool,
    /// Bumped each time a page newly holds code. A vCPU whose TLB write entries may predate
    /// that (another vCPU translated the page) compares it with the value it last saw
    /// ([`crate::guest::Guest::sync_code_pages`]).
    generation: AtomicU64,
}

impl CodeMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record that `phys_addr`'s page holds translated code. Returns true if it is new.
    pub fn add_page(&self, phys_addr: u64) -> bool {
        let new = self.pages.lock().insert(phys_addr & PAGE_MASK);
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
        self.pages.lock().contains(&(phys_addr & PAGE_MASK))
    }

    /// A guest (or DMA) wrote to `phys_addr`. Returns true if the page held code and was queued
    /// for invalidation (the caller then makes the vCPU leave generated code).
    pub fn note_write(&self, phys_addr: u64) -> bool {
        let page = phys_addr & PAGE_MASK;
        if self.pages.lock().remove(&page) {
            self.dirty.lock().push(page);
            self.has_dirty.store(true, Ordering::Release);
            true
        } else {
            false
        }
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
        self.pages.lock().clear();
    }
}

//! The `--stats` report of [`EngineStats`] (one line per topic, for people and for
//! `benches/compare.sh`'s notes).

use std::fmt;

use crate::engine::EngineStats;

impl fmt::Display for EngineStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| ns as f64 / 1e6;
        let lookups = self.lookups_goto + self.lookups_indirect + self.lookups_other;
        writeln!(
            f,
            "blocks: {} translated, {} compiled ({} failed), then {} regions of {} blocks ({} \
             cut), {:.1} ms compiling, {} invalidated, {} flushes; at most {} queued for \
             compiling",
            self.blocks_translated,
            self.blocks_compiled,
            self.compile_failures,
            self.regions_compiled,
            self.region_blocks,
            self.region_blocks_cut,
            ms(self.compile_ns),
            self.blocks_invalidated,
            self.flushes,
            self.peak_in_flight
        )?;
        writeln!(
            f,
            "runs from the dispatch loop: {} interpreted ({} guest instructions), {} native; {} \
             chain links made",
            self.interp_runs, self.interp_insns, self.native_runs, self.chain_links
        )?;
        writeln!(
            f,
            "exits looked up by the dispatch loop: {lookups} ({} goto not chained, {} indirect \
             missing the jump cache, {} other; {} missed the lookup front); chained and \
             jump-cache exits stay in compiled code (not counted); jump cache emptied {} times \
             after whole TLB flushes, {} pages dropped after page flushes",
            self.lookups_goto,
            self.lookups_indirect,
            self.lookups_other,
            self.front_misses,
            self.jump_cache_clears,
            self.jump_cache_page_clears
        )?;
        writeln!(
            f,
            "yields the engine went on from without the run loop: {}; blocks lifted again for \
             the compiler: {}",
            self.yields_kept, self.blocks_relifted
        )?;
        write!(
            f,
            "memory slow-path calls from compiled code (TLB misses, MMIO): {}",
            self.slow_path_calls
        )?;
        if self.interp_ns != 0 || self.native_ns != 0 {
            write!(
                f,
                "\ntime: {:.1} ms interpreting, {:.1} ms in compiled code (with the helpers and \
                 slow path they call)",
                ms(self.interp_ns),
                ms(self.native_ns)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_every_counter() {
        let s = EngineStats {
            blocks_translated: 11,
            blocks_compiled: 7,
            compile_ns: 2_500_000,
            lookups_goto: 1,
            lookups_indirect: 2,
            lookups_other: 3,
            slow_path_calls: 42,
            interp_ns: 1_000_000,
            peak_in_flight: 9,
            front_misses: 4,
            jump_cache_clears: 5,
            jump_cache_page_clears: 8,
            interp_runs: 2,
            interp_insns: 13,
            yields_kept: 21,
            regions_compiled: 3,
            region_blocks: 10,
            region_blocks_cut: 6,
            ..EngineStats::default()
        };
        let text = s.to_string();
        assert!(text.contains("11 translated, 7 compiled"), "{text}");
        assert!(text.contains("2.5 ms compiling"), "{text}");
        assert!(
            text.contains("then 3 regions of 10 blocks (6 cut)"),
            "{text}"
        );
        assert!(text.contains("at most 9 queued"), "{text}");
        assert!(text.contains("4 missed the lookup front"), "{text}");
        assert!(text.contains("emptied 5 times"), "{text}");
        assert!(text.contains("8 pages dropped"), "{text}");
        assert!(
            text.contains("2 interpreted (13 guest instructions)"),
            "{text}"
        );
        assert!(
            text.contains("looked up by the dispatch loop: 6 (1 goto"),
            "{text}"
        );
        assert!(text.contains("(TLB misses, MMIO): 42"), "{text}");
        assert!(text.contains("1.0 ms interpreting"), "{text}");
        assert!(!EngineStats::default().to_string().contains("time:"));
    }
}

//! Board assembly: where concrete CPUs, devices and firmware meet (DESIGN.md §1).

pub mod spike;

pub use spike::{MachineError, Spike, SpikeConfig};

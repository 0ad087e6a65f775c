//! Board assembly: where concrete CPUs, devices and firmware meet (DESIGN.md §1).

pub mod spike;
pub mod virt;

pub use spike::{MachineError, Spike, SpikeConfig};
pub use virt::{Virt, VirtConfig, VirtError, VirtExit};

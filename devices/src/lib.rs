//! emu-devices: guest RAM, the physical address map and bus, and devices (DESIGN.md §1, §4, §6).
//! Imports nothing of emu's.

pub mod bus;
pub mod clint;
pub mod clock;
pub mod goldfish_rtc;
pub mod htif;
pub mod irq;
pub mod memory;
pub mod plic;
pub mod sched;
pub mod sifive_test;
pub mod uart;
pub mod virtio;

pub use bus::{Bus, BusDevice, BusError};
pub use clint::Clint;
pub use htif::{Htif, HtifExit, HtifPort, HtifReg};
pub use irq::{IrqLine, IrqSink};
pub use memory::{GuestRam, MemoryError};

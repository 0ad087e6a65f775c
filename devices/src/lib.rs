//! emu-devices: guest RAM, the physical address map and bus, and devices (DESIGN.md §1, §4, §6).
//! Imports nothing of emu's.

pub mod bus;
pub mod clock;
pub mod memory;

pub use bus::{Bus, BusDevice, BusError};
pub use memory::{GuestRam, MemoryError};

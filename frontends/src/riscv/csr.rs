//! Control and status registers (Privileged ISA ch. 2–4).

/// CSR state of one hart.
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct Csrs {
    pub mstatus: u64,
}

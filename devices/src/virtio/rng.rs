//! virtio-rng, the entropy device (VIRTIO 1.2 §5.4): one queue (`requestq`); the device fills
//! each device-writable buffer with random bytes. No feature bits, no configuration space.
//!
//! The bytes come from an injected [`EntropySource`]. The default, [`XorShiftEntropy`], is a
//! PRNG with a fixed seed so that two runs of the same guest are identical (DESIGN.md §5); the
//! board may offer host randomness instead.

use super::{Completion, GuestMemory, Queue, QueueError, VirtioDevice, VIRTIO_ID_RNG};

/// Most bytes written into one request (the rest of a larger buffer is left untouched and the
/// used length says how much was filled, as §5.4.6 allows).
pub const RNG_MAX_REQUEST: usize = 64 * 1024;

/// Where virtio-rng's bytes come from.
pub trait EntropySource: Send {
    fn fill(&mut self, buf: &mut [u8]);
}

/// xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift generators"),
/// deterministic from its seed. Not cryptographic: reproducible runs are the point.
#[derive(Debug, Clone)]
pub struct XorShiftEntropy {
    state: u64,
}

/// The default seed.
pub const DEFAULT_RNG_SEED: u64 = 0x454d_555f_524e_4721;

impl XorShiftEntropy {
    pub fn new(seed: u64) -> Self {
        // The state must never be zero.
        XorShiftEntropy {
            state: if seed == 0 { DEFAULT_RNG_SEED } else { seed },
        }
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl Default for XorShiftEntropy {
    fn default() -> Self {
        XorShiftEntropy::new(DEFAULT_RNG_SEED)
    }
}

impl EntropySource for XorShiftEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Host randomness from `/dev/urandom`, for users who want real entropy and accept that runs
/// are then not reproducible. Opened once; a failed read leaves zeros (and is logged), since
/// the guest cannot be told.
pub struct HostEntropy {
    file: std::fs::File,
}

impl HostEntropy {
    pub fn open() -> std::io::Result<Self> {
        Ok(HostEntropy {
            file: std::fs::File::open("/dev/urandom")?,
        })
    }
}

impl EntropySource for HostEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        use std::io::Read;
        if let Err(e) = self.file.read_exact(buf) {
            buf.fill(0);
            log::error!("virtio-rng: reading /dev/urandom failed: {e}");
        }
    }
}

/// The entropy device.
pub struct VirtioRng {
    source: Box<dyn EntropySource>,
}

impl VirtioRng {
    pub fn new(source: Box<dyn EntropySource>) -> Self {
        VirtioRng { source }
    }
}

impl Default for VirtioRng {
    fn default() -> Self {
        VirtioRng::new(Box::new(XorShiftEntropy::default()))
    }
}

impl VirtioDevice for VirtioRng {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_RNG
    }

    fn device_features(&self) -> u64 {
        0
    }

    fn num_queues(&self) -> usize {
        1
    }

    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn process_queue(
        &mut self,
        index: usize,
        queues: &mut [Queue],
        mem: &GuestMemory,
    ) -> Result<Completion, QueueError> {
        let Some(q) = queues.get_mut(index) else {
            return Ok(Completion::default());
        };
        let mut used = false;
        let mut buf = Vec::new();
        while let Some(chain) = q.pop(mem)? {
            let n = chain.writable_len().min(RNG_MAX_REQUEST as u64) as usize;
            buf.resize(n, 0);
            self.source.fill(&mut buf);
            if !chain.write_at(mem, 0, &buf) {
                return Err(QueueError::Malformed("rng buffer not writable"));
            }
            q.add_used(mem, chain.head, n as u32)?;
            used = true;
        }
        Ok(Completion {
            notify: used && q.wants_interrupt(mem),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xorshift_is_deterministic_and_nonzero() {
        let mut a = XorShiftEntropy::default();
        let mut b = XorShiftEntropy::default();
        let (mut x, mut y) = ([0u8; 37], [0u8; 37]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        assert!(x.iter().any(|&v| v != 0));
        let mut h = HostEntropy::open().unwrap();
        let mut w = [0u8; 64];
        h.fill(&mut w);
        assert!(w.iter().any(|&v| v != 0));
        let mut c = XorShiftEntropy::new(1);
        let mut z = [0u8; 37];
        c.fill(&mut z);
        assert_ne!(x, z);
    }
}

//! virtio-net (VIRTIO 1.2 §5.1): queue 0 `receiveq1`, queue 1 `transmitq1`, no control queue.
//!
//! Offered: VIRTIO_NET_F_MAC (the MAC in configuration space) and VIRTIO_NET_F_STATUS (link
//! always up). No checksum offload, GSO or mergeable buffers, so every packet is preceded by a
//! 12-byte `virtio_net_hdr` (§5.1.6, VERSION_1 layout with `num_buffers`), which the device
//! ignores on transmit and writes as zeros (`num_buffers` = 1) on receive.
//!
//! Frames go to and come from an injected [`NetBackend`]; received frames are delivered at
//! [`poll`](VirtioDevice::poll) (slice boundaries), only while the guest has a receive buffer,
//! so the backend keeps them meanwhile.

use super::mmio::read_config_bytes;
use super::net_backend::{NetBackend, MAX_FRAME};
use super::{Completion, GuestMemory, Queue, QueueError, VirtioDevice, VIRTIO_ID_NET};

/// Feature bits (§5.1.3).
pub const VIRTIO_NET_F_MAC: u64 = 1 << 5;
pub const VIRTIO_NET_F_STATUS: u64 = 1 << 16;
/// Configuration `status` bit (§5.1.4).
pub const VIRTIO_NET_S_LINK_UP: u16 = 1;

pub const NET_RECEIVEQ: usize = 0;
pub const NET_TRANSMITQ: usize = 1;
/// `struct virtio_net_hdr` with VIRTIO_F_VERSION_1 (§5.1.6).
pub const VIRTIO_NET_HDR_LEN: usize = 12;
/// Offset of `num_buffers` in the header.
const NUM_BUFFERS: usize = 10;
/// Frames handed to the guest per poll, so one poll is bounded.
const RX_BUDGET: usize = 256;

/// Counters of what the device dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NetStats {
    pub tx_frames: u64,
    pub rx_frames: u64,
    /// Transmitted frames larger than [`MAX_FRAME`] (dropped).
    pub tx_oversize: u64,
    /// Received frames that did not fit the guest's buffer (dropped).
    pub rx_too_big: u64,
}

/// The network device.
pub struct VirtioNet {
    mac: [u8; 6],
    backend: Box<dyn NetBackend>,
    stats: NetStats,
    /// Receive scratch buffer (header + frame).
    rx_buf: Vec<u8>,
}

impl VirtioNet {
    pub fn new(mac: [u8; 6], backend: Box<dyn NetBackend>) -> Self {
        VirtioNet {
            mac,
            backend,
            stats: NetStats::default(),
            rx_buf: vec![0; VIRTIO_NET_HDR_LEN + MAX_FRAME],
        }
    }

    pub fn stats(&self) -> NetStats {
        self.stats
    }

    fn transmit(&mut self, q: &mut Queue, mem: &GuestMemory) -> Result<bool, QueueError> {
        let mut used = false;
        let mut frame = Vec::new();
        while let Some(chain) = q.pop(mem)? {
            let len = chain
                .readable_len()
                .saturating_sub(VIRTIO_NET_HDR_LEN as u64);
            if len > MAX_FRAME as u64 {
                self.stats.tx_oversize += 1;
            } else {
                frame.resize(len as usize, 0);
                if !chain.read_at(mem, VIRTIO_NET_HDR_LEN as u64, &mut frame) {
                    return Err(QueueError::Malformed("virtio-net transmit buffer"));
                }
                self.backend.send(&frame);
                self.stats.tx_frames += 1;
            }
            q.add_used(mem, chain.head, 0)?;
            used = true;
        }
        Ok(used)
    }

    fn receive(&mut self, q: &mut Queue, mem: &GuestMemory) -> Result<bool, QueueError> {
        let mut used = false;
        for _ in 0..RX_BUDGET {
            if !q.has_available(mem)? {
                break;
            }
            let Some(frame_buf) = self.rx_buf.get_mut(VIRTIO_NET_HDR_LEN..) else {
                break;
            };
            let Some(n) = self.backend.recv(frame_buf) else {
                break;
            };
            let Some(chain) = q.pop(mem)? else { break };
            let total = VIRTIO_NET_HDR_LEN + n.min(MAX_FRAME);
            if total as u64 > chain.writable_len() {
                // The driver's buffer is too small for the frame: drop the frame and give the
                // buffer back empty (a header only would be a bogus packet).
                self.stats.rx_too_big += 1;
                q.add_used(mem, chain.head, 0)?;
                used = true;
                continue;
            }
            let Some(pkt) = self.rx_buf.get_mut(..total) else {
                break;
            };
            pkt[..VIRTIO_NET_HDR_LEN].fill(0);
            pkt[NUM_BUFFERS..NUM_BUFFERS + 2].copy_from_slice(&1u16.to_le_bytes());
            if !chain.write_at(mem, 0, pkt) {
                return Err(QueueError::Malformed("virtio-net receive buffer"));
            }
            q.add_used(mem, chain.head, total as u32)?;
            self.stats.rx_frames += 1;
            used = true;
        }
        Ok(used)
    }
}

impl VirtioDevice for VirtioNet {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_NET
    }

    fn device_features(&self) -> u64 {
        VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS
    }

    fn num_queues(&self) -> usize {
        2
    }

    /// §5.1.4: mac[6] @0, status u16 @6.
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let mut cfg = [0u8; 8];
        cfg[..6].copy_from_slice(&self.mac);
        cfg[6..8].copy_from_slice(&VIRTIO_NET_S_LINK_UP.to_le_bytes());
        read_config_bytes(&cfg, offset, data);
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
        // New receive buffers are filled at the next poll (host input enters at slice
        // boundaries only).
        let used = match index {
            NET_TRANSMITQ => self.transmit(q, mem)?,
            _ => false,
        };
        Ok(Completion {
            notify: used && q.wants_interrupt(mem),
        })
    }

    fn poll(&mut self, queues: &mut [Queue], mem: &GuestMemory) -> Result<Completion, QueueError> {
        let Some(q) = queues.get_mut(NET_RECEIVEQ) else {
            return Ok(Completion::default());
        };
        let used = self.receive(q, mem)?;
        Ok(Completion {
            notify: used && q.wants_interrupt(mem),
        })
    }
}

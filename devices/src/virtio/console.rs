//! virtio-console (VIRTIO 1.2 §5.3), a single port without VIRTIO_CONSOLE_F_MULTIPORT:
//! queue 0 is `receiveq(port0)` (host to guest), queue 1 `transmitq(port0)` (guest to host).
//! No feature bits are offered, so the configuration space (cols, rows, max_nr_ports,
//! emerg_wr) is not used by the driver and reads as zero.
//!
//! Transmitted bytes go to an injected writer (the `-chardev` the console is given), written
//! and flushed per transmit buffer. Received bytes are pushed by the host side
//! ([`VirtioConsole::push_input`], only between slices of guest time) into a bounded buffer
//! and delivered into the guest's receive buffers at the next poll.

use super::{
    Completion, GuestMemory, LogLimit, Queue, QueueError, VirtioDevice, VIRTIO_ID_CONSOLE,
};
use std::collections::VecDeque;
use std::io::Write;

pub const CONSOLE_RECEIVEQ: usize = 0;
pub const CONSOLE_TRANSMITQ: usize = 1;

/// Host input held while the guest provides no receive buffers; more is dropped.
pub const CONSOLE_INPUT_LIMIT: usize = 64 * 1024;
/// Most bytes taken from one transmit buffer.
pub const CONSOLE_MAX_TX: u64 = 64 * 1024;

/// The console device.
pub struct VirtioConsole {
    out: Box<dyn Write + Send>,
    input: VecDeque<u8>,
    dropped_input: u64,
    log: LogLimit,
}

impl VirtioConsole {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        VirtioConsole {
            out,
            input: VecDeque::new(),
            dropped_input: 0,
            log: LogLimit::default(),
        }
    }

    /// Queue host input for the guest; bytes beyond [`CONSOLE_INPUT_LIMIT`] are dropped.
    pub fn push_input(&mut self, bytes: &[u8]) {
        let room = CONSOLE_INPUT_LIMIT.saturating_sub(self.input.len());
        let take = bytes.len().min(room);
        self.input.extend(bytes.iter().take(take));
        self.dropped_input += (bytes.len() - take) as u64;
    }

    /// Bytes [`VirtioConsole::push_input`] takes now without dropping any.
    pub fn input_space(&self) -> usize {
        CONSOLE_INPUT_LIMIT.saturating_sub(self.input.len())
    }

    /// Input bytes dropped because the buffer was full.
    pub fn dropped_input(&self) -> u64 {
        self.dropped_input
    }

    fn transmit(&mut self, q: &mut Queue, mem: &GuestMemory) -> Result<bool, QueueError> {
        let mut used = false;
        let mut buf = Vec::new();
        while let Some(chain) = q.pop(mem)? {
            let n = chain.readable_len().min(CONSOLE_MAX_TX) as usize;
            buf.resize(n, 0);
            if !chain.read_at(mem, 0, &mut buf) {
                return Err(QueueError::Malformed("console buffer not readable"));
            }
            // A host write error loses console output but is not the guest's fault.
            if let Err(e) = self.out.write_all(&buf).and_then(|()| self.out.flush()) {
                if self.log.allow() {
                    log::warn!("virtio-console: output write failed: {e}");
                }
            }
            q.add_used(mem, chain.head, 0)?;
            used = true;
        }
        Ok(used)
    }

    fn receive(&mut self, q: &mut Queue, mem: &GuestMemory) -> Result<bool, QueueError> {
        let mut used = false;
        while !self.input.is_empty() {
            let Some(chain) = q.pop(mem)? else { break };
            let n = (chain.writable_len().min(self.input.len() as u64)) as usize;
            let bytes: Vec<u8> = self.input.drain(..n).collect();
            if !chain.write_at(mem, 0, &bytes) {
                return Err(QueueError::Malformed("console buffer not writable"));
            }
            q.add_used(mem, chain.head, n as u32)?;
            used = true;
        }
        Ok(used)
    }
}

impl VirtioDevice for VirtioConsole {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_CONSOLE
    }

    fn device_features(&self) -> u64 {
        0
    }

    fn num_queues(&self) -> usize {
        2
    }

    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn reset(&mut self) {}

    fn process_queue(
        &mut self,
        index: usize,
        queues: &mut [Queue],
        mem: &GuestMemory,
    ) -> Result<Completion, QueueError> {
        let Some(q) = queues.get_mut(index) else {
            return Ok(Completion::default());
        };
        // Receive buffers made available are filled at the next poll (host input enters only
        // at slice boundaries).
        let used = match index {
            CONSOLE_TRANSMITQ => self.transmit(q, mem)?,
            _ => false,
        };
        Ok(Completion {
            notify: used && q.wants_interrupt(mem),
        })
    }

    fn poll(&mut self, queues: &mut [Queue], mem: &GuestMemory) -> Result<Completion, QueueError> {
        let Some(q) = queues.get_mut(CONSOLE_RECEIVEQ) else {
            return Ok(Completion::default());
        };
        let used = self.receive(q, mem)?;
        Ok(Completion {
            notify: used && q.wants_interrupt(mem),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_space_shrinks_and_overflow_is_dropped() {
        let mut c = VirtioConsole::new(Box::new(std::io::sink()));
        assert_eq!(c.input_space(), CONSOLE_INPUT_LIMIT);
        c.push_input(b"abc");
        assert_eq!(c.input_space(), CONSOLE_INPUT_LIMIT - 3);
        c.push_input(&vec![b'x'; CONSOLE_INPUT_LIMIT]);
        assert_eq!(c.input_space(), 0);
        assert_eq!(c.dropped_input(), 3);
    }
}

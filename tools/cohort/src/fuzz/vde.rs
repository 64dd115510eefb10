//! The fuzzer's network card: a port on the cluster's VDE switch, reached
//! through Debian's `vde_plug`, which carries Ethernet frames on its
//! standard input and output, each preceded by its length (2 bytes, big
//! endian). smoltcp's interface sits on top of it as a `phy::Device`.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Largest Ethernet frame carried (no jumbo frames on the switch).
const MTU: usize = 1514;

/// A port on the switch.
pub struct VdePort {
    child: Child,
    tx: ChildStdin,
    rx: Receiver<Vec<u8>>,
    queue: VecDeque<Vec<u8>>,
    /// Frames sent and received, for the summary.
    pub frames_out: u64,
    pub frames_in: u64,
}

impl VdePort {
    /// Plugs into the switch whose directory is `switch`.
    pub fn open(switch: &Path) -> Result<VdePort, String> {
        let mut child = Command::new("vde_plug")
            .arg("--descr")
            .arg("cohort-fuzz")
            .arg(switch)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run vde_plug: {e}"))?;
        let tx = child.stdin.take().ok_or("vde_plug has no stdin")?;
        let mut out = child.stdout.take().ok_or("vde_plug has no stdout")?;
        let (send, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut len = [0u8; 2];
            while out.read_exact(&mut len).is_ok() {
                let mut frame = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if out.read_exact(&mut frame).is_err() || send.send(frame).is_err() {
                    return;
                }
            }
        });
        Ok(VdePort {
            child,
            tx,
            rx,
            queue: VecDeque::new(),
            frames_out: 0,
            frames_in: 0,
        })
    }

    /// Moves the frames that arrived into the receive queue; fails once
    /// `vde_plug` is gone.
    pub fn pump(&mut self) -> Result<(), String> {
        loop {
            match self.rx.try_recv() {
                Ok(frame) => {
                    self.frames_in += 1;
                    self.queue.push_back(frame);
                }
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => return Err("vde_plug exited".into()),
            }
        }
    }
}

impl Drop for VdePort {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A received frame, handed to smoltcp.
pub struct RxFrame(Vec<u8>);

impl phy::RxToken for RxFrame {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

/// Room for one frame to send.
pub struct TxFrame<'a> {
    port: &'a mut ChildStdin,
    sent: &'a mut u64,
}

impl phy::TxToken for TxFrame<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; 2 + len];
        let result = f(&mut buf[2..]);
        let len = u16::try_from(len).unwrap_or(u16::MAX);
        buf[..2].copy_from_slice(&len.to_be_bytes());
        // A write error means vde_plug died: `pump` reports it.
        if self.port.write_all(&buf).is_ok() {
            *self.sent += 1;
        }
        result
    }
}

impl Device for VdePort {
    type RxToken<'a> = RxFrame;
    type TxToken<'a> = TxFrame<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxFrame, TxFrame<'_>)> {
        let frame = self.queue.pop_front()?;
        Some((
            RxFrame(frame),
            TxFrame {
                port: &mut self.tx,
                sent: &mut self.frames_out,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxFrame<'_>> {
        Some(TxFrame {
            port: &mut self.tx,
            sent: &mut self.frames_out,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps
    }
}

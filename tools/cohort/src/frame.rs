//! The agent's wire format: an ASCII header line ending in `\n`, and for
//! `OUT` frames a binary payload whose length the header gives.

/// Longest header line accepted from the agent.
pub const MAX_HEADER: usize = 256;
/// Longest payload accepted in one `OUT` frame (the agent sends <= 4096).
pub const MAX_OUT: usize = 1 << 20;
/// Longest command line the agent accepts.
pub const MAX_CMD: usize = 1 << 20;
/// Longest request id.
pub const MAX_ID: usize = 32;

/// A frame sent by the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Pong {
        id: String,
        node: String,
    },
    Out {
        id: String,
        data: Vec<u8>,
    },
    Exit {
        id: String,
        status: i32,
    },
    Err {
        id: String,
        msg: String,
    },
    /// A line that is not a valid frame; the decoder skipped it.
    Bad(String),
}

/// True if `id` is a valid request id: 1 to 32 ASCII letters and digits.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub fn encode_ping(id: &str) -> Vec<u8> {
    format!("PING {id}\n").into_bytes()
}

pub fn encode_exec(id: &str, timeout_s: u64, cmd: &[u8]) -> Vec<u8> {
    let mut out = format!("EXEC {id} {timeout_s} {}\n", cmd.len()).into_bytes();
    out.extend_from_slice(cmd);
    out
}

/// Incremental decoder for the agent's frames.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Header of an `OUT` frame whose payload is still arriving.
    pending: Option<(String, usize)>,
    /// Discarding bytes up to the next newline after an overlong line.
    resync: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Next complete frame, or None if more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((id, len)) = self.pending.take() {
                if self.buf.len() < len {
                    self.pending = Some((id, len));
                    return None;
                }
                let data: Vec<u8> = self.buf.drain(..len).collect();
                return Some(Frame::Out { id, data });
            }
            let nl = self.buf.iter().position(|&b| b == b'\n');
            if self.resync {
                match nl {
                    Some(i) => {
                        self.buf.drain(..=i);
                        self.resync = false;
                        continue;
                    }
                    None => {
                        self.buf.clear();
                        return None;
                    }
                }
            }
            let Some(i) = nl else {
                if self.buf.len() > MAX_HEADER {
                    self.buf.clear();
                    self.resync = true;
                    return Some(Frame::Bad("header line too long".into()));
                }
                return None;
            };
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line[..i]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                continue;
            }
            if line.len() > MAX_HEADER {
                return Some(Frame::Bad("header line too long".into()));
            }
            match parse_header(line) {
                Ok(Header::Frame(f)) => return Some(f),
                Ok(Header::Out(id, len)) => self.pending = Some((id, len)),
                Err(e) => return Some(Frame::Bad(e)),
            }
        }
    }
}

enum Header {
    Frame(Frame),
    Out(String, usize),
}

fn parse_header(line: &str) -> Result<Header, String> {
    let bad = || format!("malformed frame {line:?}");
    let mut it = line.splitn(3, ' ');
    let verb = it.next().unwrap_or("");
    let id = it.next().ok_or_else(bad)?.to_string();
    let rest = it.next();
    if verb == "ERR" {
        if id != "-" && !valid_id(&id) {
            return Err(bad());
        }
        let msg = rest.unwrap_or("").to_string();
        return Ok(Header::Frame(Frame::Err { id, msg }));
    }
    if !valid_id(&id) {
        return Err(bad());
    }
    let rest = rest.ok_or_else(bad)?;
    if rest.contains(' ') {
        return Err(bad());
    }
    match verb {
        "PONG" if !rest.is_empty() => Ok(Header::Frame(Frame::Pong {
            id,
            node: rest.to_string(),
        })),
        "EXIT" => {
            let status = rest.parse::<i32>().map_err(|_| bad())?;
            Ok(Header::Frame(Frame::Exit { id, status }))
        }
        "OUT" => {
            if !rest.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let len = rest.parse::<usize>().map_err(|_| bad())?;
            if len > MAX_OUT {
                return Err(format!("OUT frame of {len} bytes is too long"));
            }
            Ok(Header::Out(id, len))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut Decoder) -> Vec<Frame> {
        std::iter::from_fn(|| d.next_frame()).collect()
    }

    #[test]
    fn encodes_requests() {
        assert_eq!(encode_ping("a1"), b"PING a1\n");
        assert_eq!(encode_exec("x", 5, b"echo hi"), b"EXEC x 5 7\necho hi");
        assert_eq!(encode_exec("x", 0, b""), b"EXEC x 0 0\n");
    }

    #[test]
    fn ids() {
        assert!(valid_id("abcXYZ019"));
        assert!(valid_id(&"a".repeat(32)));
        assert!(!valid_id(&"a".repeat(33)));
        assert!(!valid_id(""));
        assert!(!valid_id("a-b"));
        assert!(!valid_id("a b"));
    }

    #[test]
    fn decodes_whole_stream() {
        let mut d = Decoder::new();
        d.push(b"PONG p1 3\nOUT e1 5\nhello\nOUT e1 0\nEXIT e1 42\nERR - bad thing here\n");
        assert_eq!(
            all(&mut d),
            vec![
                Frame::Pong {
                    id: "p1".into(),
                    node: "3".into()
                },
                Frame::Out {
                    id: "e1".into(),
                    data: b"hello".to_vec()
                },
                Frame::Out {
                    id: "e1".into(),
                    data: vec![]
                },
                Frame::Exit {
                    id: "e1".into(),
                    status: 42
                },
                Frame::Err {
                    id: "-".into(),
                    msg: "bad thing here".into()
                },
            ]
        );
    }

    #[test]
    fn decodes_byte_by_byte_with_binary_payload() {
        let mut stream = b"OUT a 6\n".to_vec();
        stream.extend_from_slice(&[0, b'\n', 255, b'O', b'U', b'T']);
        stream.extend_from_slice(b"EXIT a -1\n");
        let mut d = Decoder::new();
        let mut got = vec![];
        for b in stream {
            d.push(&[b]);
            got.extend(all(&mut d));
        }
        assert_eq!(
            got,
            vec![
                Frame::Out {
                    id: "a".into(),
                    data: vec![0, b'\n', 255, b'O', b'U', b'T']
                },
                Frame::Exit {
                    id: "a".into(),
                    status: -1
                },
            ]
        );
    }

    #[test]
    fn skips_malformed_lines_and_resyncs() {
        let mut d = Decoder::new();
        d.push(b"garbage\nEXIT a notanumber\nOUT a -3\nPONG a\nEXIT a 0\n");
        let f = all(&mut d);
        assert_eq!(f.len(), 5);
        assert!(f[..4].iter().all(|f| matches!(f, Frame::Bad(_))));
        assert_eq!(
            f[4],
            Frame::Exit {
                id: "a".into(),
                status: 0
            }
        );
    }

    #[test]
    fn overlong_header_is_dropped_up_to_newline() {
        let mut d = Decoder::new();
        d.push(&vec![b'x'; MAX_HEADER + 10]);
        assert!(matches!(d.next_frame(), Some(Frame::Bad(_))));
        d.push(b"xxxx\nPONG b 1\n");
        assert_eq!(
            all(&mut d),
            vec![Frame::Pong {
                id: "b".into(),
                node: "1".into()
            }]
        );
    }

    #[test]
    fn rejects_huge_out_and_bad_ids() {
        let mut d = Decoder::new();
        d.push(
            format!(
                "OUT a {}\nEXIT a-b 0\nEXIT {} 0\n",
                MAX_OUT + 1,
                "z".repeat(33)
            )
            .as_bytes(),
        );
        let f = all(&mut d);
        assert_eq!(f.len(), 3);
        assert!(f.iter().all(|f| matches!(f, Frame::Bad(_))));
    }
}

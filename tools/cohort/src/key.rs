//! The cluster key on the host: `cohort up` makes one per cluster
//! (`STATE/cluster.key`, 64 hex digits from the OS's random number
//! generator, mode 0600) and hands it to every node through QEMU's fw_cfg
//! ([`FW_CFG_NAME`]; tools/guest/rc copies it to `/etc/cohort/cluster.key`,
//! where kmsg.ko reads it). `cohort fuzz --key` reads it back to act as a
//! node that holds it, with HMAC-SHA-256 from the `hmac` crate ([`HostMac`])
//! and frame tags from the `chacha20` and `poly1305` crates ([`HostTags`]).
//! The format and its checks are `rust/proto`'s ([`auth::parse_key`]).

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use chacha20::cipher::{KeyIvInit as _, StreamCipher as _};
use cohort_proto::auth::{self, KEY_LEN, MAC_LEN, TAG_LEN};
use cohort_proto::wire::HEADER_LEN;
use hmac::{Hmac, Mac as _};
use poly1305::universal_hash::KeyInit as _;
use rand::rngs::OsRng;
use rand::RngCore as _;
use sha2::Sha256;

/// The key's file in the state dir.
pub const KEY_FILE: &str = "cluster.key";
/// The fw_cfg entry a node finds the key in
/// (`/sys/firmware/qemu_fw_cfg/by_name/opt/org.cohort/cluster.key/raw`).
pub const FW_CFG_NAME: &str = "opt/org.cohort/cluster.key";

/// A fresh key from the operating system's random number generator
/// (getrandom(2), through `rand`'s `OsRng`). Never all zero: a key that
/// is would be refused by [`auth::parse_key`], so draw again (2^-256).
pub fn generate() -> Result<[u8; KEY_LEN], String> {
    loop {
        let mut key = [0u8; KEY_LEN];
        OsRng
            .try_fill_bytes(&mut key)
            .map_err(|e| format!("cannot read the OS random number generator: {e}"))?;
        if key.iter().any(|&b| b != 0) {
            return Ok(key);
        }
    }
}

/// The key file's text: 64 lowercase hex digits and a newline.
pub fn render(key: &[u8; KEY_LEN]) -> String {
    let mut s: String = key.iter().map(|b| format!("{b:02x}")).collect();
    s.push('\n');
    s
}

/// Writes `key` to `path` with mode 0600, replacing any file there: the
/// text goes to a new file beside it (created 0600, so never readable by
/// others), which is then renamed over `path`.
pub fn write(path: &Path, key: &[u8; KEY_LEN]) -> Result<(), String> {
    let tmp = path.with_extension("key.tmp");
    let _ = fs::remove_file(&tmp);
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(render(key).as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write the cluster key {}: {e}", path.display())
    })
}

/// Reads and checks a key file as kmsg.ko does.
pub fn read(path: &Path) -> Result<[u8; KEY_LEN], String> {
    let text = fs::read(path).map_err(|e| format!("cannot read key {}: {e}", path.display()))?;
    if text.len() > auth::KEY_FILE_MAX {
        return Err(format!(
            "key {}: {} bytes, more than a key file holds ({})",
            path.display(),
            text.len(),
            auth::KEY_FILE_MAX
        ));
    }
    auth::parse_key(&text).map_err(|e| format!("key {}: {}", path.display(), e.as_str()))
}

/// HMAC-SHA-256 under the cluster key, as `rust/proto`'s handshake wants
/// it: for proofs and session keys.
#[derive(Clone)]
pub struct HostMac {
    mac: Hmac<Sha256>,
    key: [u8; KEY_LEN],
}

impl HostMac {
    pub fn new(key: &[u8; KEY_LEN]) -> HostMac {
        HostMac {
            // HMAC takes a key of any length; a 32-byte one cannot fail.
            mac: <Hmac<Sha256> as hmac::Mac>::new_from_slice(key)
                .expect("HMAC takes any key length"),
            key: *key,
        }
    }

    /// Frame tags under this key itself (never a session key: a fuzzer's
    /// wrong tag).
    pub fn tags(&self) -> HostTags {
        HostTags::new(&self.key)
    }
}

impl auth::Mac for HostMac {
    type Error = core::convert::Infallible;

    fn mac(&self, parts: &[&[u8]]) -> Result<[u8; MAC_LEN], Self::Error> {
        let mut m = self.mac.clone();
        for p in parts {
            m.update(p);
        }
        Ok(m.finalize().into_bytes().into())
    }
}

/// The frame tags under one session key, as `rust/proto`'s
/// [`auth::FrameMac`] defines them: Poly1305 under the first 32 bytes of
/// ChaCha20 block 0 with nonce `0 || seq` (RFC 8439 section 2.6).
#[derive(Clone)]
pub struct HostTags {
    key: [u8; KEY_LEN],
    /// The one-time key of the tag begun.
    one_time: Option<[u8; 32]>,
    /// The bytes of the tag begun.
    data: Vec<u8>,
}

impl HostTags {
    pub fn new(key: &[u8; KEY_LEN]) -> HostTags {
        HostTags {
            key: *key,
            one_time: None,
            data: Vec::new(),
        }
    }

    /// The tag of frame number `seq`.
    pub fn tag(&self, seq: u64, header: &[u8; HEADER_LEN], payload: &[u8]) -> [u8; TAG_LEN] {
        auth::frame_tag(&mut self.clone(), seq, header, payload)
    }
}

impl auth::FrameMac for HostTags {
    fn begin(&mut self, seq: u64) {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&seq.to_le_bytes());
        let mut block = [0u8; 32];
        chacha20::ChaCha20::new(&self.key.into(), &nonce.into()).apply_keystream(&mut block);
        self.one_time = Some(block);
        self.data.clear();
    }

    fn update(&mut self, data: &[u8]) {
        self.data.extend_from_slice(data);
    }

    fn finish(&mut self) -> [u8; TAG_LEN] {
        // Unbegun, the tag is under an all-zero key: never a good one.
        let key = self.one_time.take().unwrap_or_default();
        poly1305::Poly1305::new(&key.into())
            .compute_unpadded(&self.data)
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth::Mac as _;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn generated_keys_are_written_0600_and_read_back() {
        let dir = std::env::temp_dir().join(format!("cohort-key-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(KEY_FILE);
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        write(&path, &a).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        assert!(text[..64]
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(read(&path).unwrap(), a);
        // Replaced, not appended to; no temporary file left.
        write(&path, &b).unwrap();
        assert_eq!(read(&path).unwrap(), b);
        assert!(!path.with_extension("key.tmp").exists());
        fs::write(&path, "00".repeat(32)).unwrap();
        assert!(read(&path).unwrap_err().contains("all zero"));
        fs::write(&path, "xyz\n").unwrap();
        assert!(read(&path).unwrap_err().contains("not 64 hex digits"));
        assert!(read(&dir.join("absent")).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn host_tags_are_rfc8439_poly1305() {
        // RFC 8439 section 2.5.2's message under section 2.6.2's key
        // generation: the one-time key for key 80..9f and nonce
        // 00 00 00 00 00 01 02 03 04 05 06 07 (seq 0x0706050403020100),
        // checked through a tag against the crate's Poly1305 directly.
        let mut key = [0u8; KEY_LEN];
        for (i, b) in key.iter_mut().enumerate() {
            *b = 0x80 + i as u8;
        }
        let one_time: [u8; 32] = [
            0x8a, 0xd5, 0xa0, 0x8b, 0x90, 0x5f, 0x81, 0xcc, 0x81, 0x50, 0x40, 0x27, 0x4a, 0xb2,
            0x94, 0x71, 0xa8, 0x33, 0xb6, 0x37, 0xe3, 0xfd, 0x0d, 0xa5, 0x08, 0xdb, 0xb8, 0xe2,
            0xfd, 0xd1, 0xa6, 0x46,
        ];
        let header = [7u8; HEADER_LEN];
        let payload = b"Cryptographic Forum Research Group";
        let mut data = header.to_vec();
        data.extend_from_slice(payload);
        let want: [u8; TAG_LEN] = poly1305::Poly1305::new(&one_time.into())
            .compute_unpadded(&data)
            .into();
        let tags = HostTags::new(&key);
        assert_eq!(tags.tag(0x0706_0504_0302_0100, &header, payload), want);
        assert_ne!(tags.tag(0x0706_0504_0302_0101, &header, payload), want);
        // RFC 8439 section 2.5.2 itself, through the crate.
        let mut rfc_key = [0u8; 32];
        hex_into(
            "85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b",
            &mut rfc_key,
        );
        let mut rfc_tag = [0u8; 16];
        hex_into("a8061dc1305136c6c22b8baf0c0127a9", &mut rfc_tag);
        let got: [u8; 16] = poly1305::Poly1305::new(&rfc_key.into())
            .compute_unpadded(payload)
            .into();
        assert_eq!(got, rfc_tag);
    }

    fn hex_into(hex: &str, out: &mut [u8]) {
        for (b, pair) in out.iter_mut().zip(hex.as_bytes().chunks(2)) {
            *b = u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap();
        }
    }

    #[test]
    fn host_mac_is_hmac_sha256() {
        // RFC 4231 test case 2, the key "Jefe" zero-padded to 32 bytes
        // (HMAC pads short keys with zeros).
        let mut key = [0u8; KEY_LEN];
        key[..4].copy_from_slice(b"Jefe");
        let out = HostMac::new(&key)
            .mac(&[b"what do ya want ", b"for nothing?"])
            .unwrap();
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

//! The cluster key on the host: `cohort up` makes one per cluster
//! (`STATE/cluster.key`, 64 hex digits from the OS's random number
//! generator, mode 0600) and hands it to every node through QEMU's fw_cfg
//! ([`FW_CFG_NAME`]; tools/guest/rc copies it to `/etc/cohort/cluster.key`,
//! where kmsg.ko reads it). `cohort fuzz --key` reads it back to act as a
//! node that holds it, with `rust/proto`'s host MAC and frame tags
//! ([`HostMac`], [`HostTags`], from the RustCrypto crates). The format and
//! its checks are `rust/proto`'s ([`auth::parse_key`]).

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

pub use cohort_proto::auth::host::{HostMac, HostTags};
use cohort_proto::auth::{self, KEY_LEN};
use rand::rngs::OsRng;
use rand::RngCore as _;

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

#[cfg(test)]
mod tests {
    use super::*;
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
}

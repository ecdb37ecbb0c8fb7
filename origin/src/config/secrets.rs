//! The development secrets the embedded default generates: created once in the data directory,
//! readable by their owner only.

use std::path::Path;

use base64::{engine::general_purpose::STANDARD, Engine};
use latch_shared::secret::Secret;

/// Reads a development secret from `dir/file`, creating it (mode 0600) on first use.
pub(super) fn dev_secret(dir: &Path, file: &str) -> Result<Secret, String> {
    let path = dir.join(file);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(Secret::from(text.trim()));
    }
    std::fs::create_dir_all(dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let value = STANDARD.encode(bytes);
    write_private(&path, &value)
        .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    Ok(Secret::from(value))
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(value.as_bytes())
}

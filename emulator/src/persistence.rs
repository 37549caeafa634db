//! Write-through persistence of the whole emulated world as one JSON file, replaced
//! atomically (temporary file, fsync, rename, fsync of the directory).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::errors::EmulatorError;
use super::world::World;

/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "state.json";

/// Reads the saved world, if there is one.
pub fn load(dir: &Path) -> Result<Option<World>, EmulatorError> {
    let path = dir.join(STATE_FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EmulatorError::io(format!("reading {}", path.display()), e)),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| EmulatorError::State { path: path.display().to_string(), message: e.to_string() })
}

/// The world as the bytes `write` saves.
pub fn encode(world: &World) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec(world).map_err(std::io::Error::other)
}

/// Saves an encoded world so that a crash leaves either the old or the new file, never a torn
/// one.
pub fn write(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = dir.join(format!("{STATE_FILE}.tmp"));
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, dir.join(STATE_FILE))?;
    File::open(dir)?.sync_all()
}

//! libsrtp2 as a reference peer: a child process running `srtp_ref stream`, fed packets and
//! read back in one go.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use relay_srtp::{SdesKey, Suite};

/// The path of the built `srtp_ref` tool.
pub fn srtp_ref_path() -> Result<&'static str> {
    let path = env!("SRTP_REF");
    if path.is_empty() {
        bail!("libsrtp2 was not found when relay-bench was built: run `scripts/install.sh --packages --test-deps` and rebuild");
    }
    Ok(path)
}

/// What libsrtp made of one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `srtp_err_status_t`: 0 is success, 9 auth failure, 10 replay failure, ...
    pub status: i32,
    /// The protected or unprotected packet (the input unchanged on error).
    pub packet: Vec<u8>,
}

/// Direction of a libsrtp run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `srtp_protect` / `srtp_protect_rtcp`.
    Protect,
    /// `srtp_unprotect` / `srtp_unprotect_rtcp`.
    Unprotect,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `packets` through one libsrtp session for `key` (RTP, or RTCP if `rtcp`).
pub fn run(op: Op, rtcp: bool, key: &SdesKey, packets: &[Vec<u8>]) -> Result<Vec<Outcome>> {
    let suite: Suite = key.master.suite();
    let mut key_hex = hex(key.master.key());
    key_hex.push_str(&hex(key.master.salt()));
    let mut cmd = Command::new(srtp_ref_path()?);
    cmd.arg("stream")
        .arg(if op == Op::Protect {
            "protect"
        } else {
            "unprotect"
        })
        .arg(if rtcp { "rtcp" } else { "rtp" })
        .arg(suite.name())
        .arg(&key_hex);
    if let Some(mki) = key.mki {
        let (bytes, len) = mki.to_bytes();
        cmd.arg(hex(&bytes[..len]));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting srtp_ref")?;
    let mut input = Vec::new();
    for p in packets {
        input.extend_from_slice(&(p.len() as u32).to_le_bytes());
        input.extend_from_slice(p);
    }
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut output = Vec::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_end(&mut output)?;
    writer
        .join()
        .expect("writer thread")
        .context("writing to srtp_ref")?;
    let result = child.wait_with_output()?;
    if !result.status.success() {
        bail!(
            "srtp_ref failed: {}",
            String::from_utf8_lossy(&result.stderr)
        );
    }
    let mut outcomes = Vec::with_capacity(packets.len());
    let mut rest = &output[..];
    while rest.len() >= 8 {
        let status = i32::from_le_bytes(rest[..4].try_into()?);
        let len = u32::from_le_bytes(rest[4..8].try_into()?) as usize;
        let packet = rest
            .get(8..8 + len)
            .context("short srtp_ref record")?
            .to_vec();
        outcomes.push(Outcome { status, packet });
        rest = &rest[8 + len..];
    }
    if outcomes.len() != packets.len() {
        bail!(
            "srtp_ref answered {} of {} packets",
            outcomes.len(),
            packets.len()
        );
    }
    Ok(outcomes)
}

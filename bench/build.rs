//! Builds `srtp_ref`, the libsrtp2 reference tool the interop tests and the SRTP benchmark
//! drive, and tells the crate where it is (`SRTP_REF`). Without libsrtp2 the crate still
//! builds; the tools that need it then say how to install it.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=libsrtp/srtp_ref.c");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("srtp_ref");
    let lib = match pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("libsrtp2")
    {
        Ok(lib) => lib,
        Err(_) => {
            println!("cargo:warning=libsrtp2 not found: the libsrtp interop tests and benchmark need `scripts/install.sh --packages --test-deps`");
            println!("cargo:rustc-env=SRTP_REF=");
            return;
        }
    };
    let compiler = cc::Build::new().opt_level(2).get_compiler();
    let mut cmd = compiler.to_command();
    cmd.arg("-O2")
        .arg("-Wall")
        .arg("libsrtp/srtp_ref.c")
        .arg("-o")
        .arg(&out);
    for dir in &lib.include_paths {
        cmd.arg(format!("-I{}", dir.display()));
    }
    for dir in &lib.link_paths {
        cmd.arg(format!("-L{}", dir.display()));
    }
    cmd.arg("-lsrtp2");
    let status = cmd.status().expect("run the C compiler");
    assert!(status.success(), "compiling libsrtp/srtp_ref.c failed");
    println!("cargo:rustc-env=SRTP_REF={}", out.display());
}

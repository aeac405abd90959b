//! Generates the DPDK bindings at build time from the system DPDK found by pkg-config.
//!
//! * `bindgen` reads `wrapper.h` with exactly the flags `pkg-config --cflags libdpdk` gives
//!   (no `-march=native`: the binary must run on CPUs other than the build machine's).
//! * `wrap_static_fns(true)` makes bindgen write C shims for DPDK's `static inline` functions
//!   (rx/tx burst, mbuf alloc/free, lcore id, ...); `cc` compiles them with the same flags.
//! * `RTE_BIT64(n)` flag macros (offload and RSS flags) are not emitted by bindgen, so they are
//!   parsed out of `rte_ethdev.h` and written as typed `u64` constants.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const MIN_DPDK: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let lib = match pkg_config::Config::new()
        .atleast_version(MIN_DPDK)
        .cargo_metadata(true)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            let why = e.to_string();
            let why = why.lines().next().unwrap_or_default();
            eprintln!(
                "error: DPDK (pkg-config libdpdk >= {MIN_DPDK}) not found ({why}); \
                 run `sudo scripts/install.sh --packages` to install it"
            );
            exit(1);
        }
    };
    // rte_eth_from_rings() lives in the net_ring PMD, which pkg-config does not list.
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");
    println!("cargo:version={}", lib.version);

    let cflags = dpdk_cflags();
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let shims = out.join("static_fns");

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&cflags)
        .allowlist_function("rte_.*|relay_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*|rte_.*")
        // Packed structs that contain aligned members: rustc rejects their layout.
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr")
        .opaque_type("rte_arp_hdr")
        .opaque_type("rte_arp_ipv4")
        .wrap_static_fns(true)
        .wrap_static_fns_path(&shims)
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| {
            eprintln!("error: bindgen could not read the DPDK headers: {e}");
            exit(1);
        });
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");

    let mut build = cc::Build::new();
    build.file(shims.with_extension("c")).include(".");
    for flag in &cflags {
        build.flag(flag);
    }
    build.flag_if_supported("-Wno-deprecated-declarations");
    // bindgen writes `const const void *` for some DPDK prototypes; harmless in C.
    build.flag_if_supported("-Wno-duplicate-decl-specifier");
    build.compile("relay_dpdk_shims");

    let include_dirs = lib.include_paths.clone();
    write_bit_flags(&include_dirs, &out.join("bit_flags.rs"));
}

/// `pkg-config --cflags libdpdk`, split into arguments. The pkg-config crate keeps only the
/// `-I`/`-D` parts, but DPDK also needs `-include rte_config.h` and its `-march` baseline.
fn dpdk_cflags() -> Vec<String> {
    let output = Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .unwrap_or_else(|e| {
            eprintln!(
                "error: cannot run pkg-config ({e}); run `sudo scripts/install.sh --packages`"
            );
            exit(1);
        });
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Writes `pub const RTE_ETH_*: u64` for every `RTE_BIT64(n)` flag in `rte_ethdev.h`, and for
/// the parenthesised OR-combinations of them (e.g. `RTE_ETH_RSS_UDP`).
fn write_bit_flags(include_dirs: &[PathBuf], dest: &Path) {
    let header = include_dirs
        .iter()
        .map(|d| d.join("rte_ethdev.h"))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            eprintln!("error: rte_ethdev.h not found under {include_dirs:?}");
            exit(1);
        });
    println!("cargo:rerun-if-changed={}", header.display());
    let text = std::fs::read_to_string(&header).expect("read rte_ethdev.h");
    // Join backslash continuations so every #define is one logical line.
    let text = text.replace("\\\n", " ");

    let mut known: Vec<(String, u64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("#define ") else {
            continue;
        };
        let mut parts = rest.splitn(2, char::is_whitespace);
        let (Some(name), Some(body)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !(name.starts_with("RTE_ETH_RX_OFFLOAD_")
            || name.starts_with("RTE_ETH_TX_OFFLOAD_")
            || name.starts_with("RTE_ETH_RSS_"))
        {
            continue;
        }
        let body = body.trim();
        let value = if let Some(bit) = body
            .strip_prefix("RTE_BIT64(")
            .and_then(|b| b.strip_suffix(')'))
        {
            bit.trim().parse::<u32>().ok().map(|b| 1u64 << b)
        } else if body.starts_with('(') && body.ends_with(')') {
            // An OR of flags defined earlier in the header.
            body[1..body.len() - 1]
                .split('|')
                .map(|term| {
                    let term = term.trim();
                    known.iter().find(|(n, _)| n == term).map(|(_, v)| *v)
                })
                .try_fold(0u64, |acc, v| v.map(|v| acc | v))
        } else {
            known.iter().find(|(n, _)| n == body).map(|(_, v)| *v)
        };
        if let Some(value) = value {
            if !known.iter().any(|(n, _)| n == name) {
                known.push((name.to_owned(), value));
            }
        }
    }
    let mut code = String::new();
    for (name, value) in &known {
        writeln!(
            code,
            "/// `{name}` from `rte_ethdev.h`.\npub const {name}: u64 = {value:#018x};"
        )
        .expect("write to String");
    }
    std::fs::write(dest, code).expect("write bit_flags.rs");
}

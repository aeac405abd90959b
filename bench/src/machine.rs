//! The machine a figure was measured on, printed with every figure (machines differ between
//! sessions: some have AVX-512, some not), and the median the benches report.

/// The CPU flags the figures depend on (the SRTP engine picks its paths by them), as
/// `/proc/cpuinfo` names them.
pub const WATCHED_FLAGS: [&str; 10] = [
    "aes",
    "pclmulqdq",
    "vaes",
    "vpclmulqdq",
    "sha_ni",
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "hypervisor",
];

/// A field of `/proc/cpuinfo`'s first processor.
fn cpuinfo_field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find(|l| l.split(':').next().map(str::trim) == Some(name))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

/// The CPU as one line: model name, family and model (a virtual machine may name only the
/// vendor's line, "AMD EPYC"; family and model tell Zen 3 from Zen 4), CPUs online, and which
/// of [`WATCHED_FLAGS`] it has.
pub fn cpu() -> String {
    describe_cpu(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
}

/// [`cpu`] for the given `/proc/cpuinfo` text.
pub fn describe_cpu(info: &str) -> String {
    let field = |name| cpuinfo_field(info, name).unwrap_or_else(|| "?".into());
    let flags = cpuinfo_field(info, "flags").unwrap_or_default();
    let have: Vec<&str> = WATCHED_FLAGS
        .into_iter()
        .filter(|f| flags.split_whitespace().any(|x| x == *f))
        .collect();
    let cpus = info.lines().filter(|l| l.starts_with("processor")).count();
    format!(
        "{} (family {} model {}), {cpus} online; flags: {}",
        field("model name"),
        field("cpu family"),
        field("model"),
        if have.is_empty() {
            "none of the watched".to_owned()
        } else {
            have.join(" ")
        }
    )
}

/// The running kernel's release.
pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The median of `v` (the mean of the middle two for an even count; 0 for none).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_no_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn a_cpu_is_described_by_model_family_and_watched_flags() {
        let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n\
                    model name\t: AMD EPYC\nflags\t\t: fpu aes avx2 sha_ni avx512f hypervisor\n\n\
                    processor\t: 1\nmodel name\t: AMD EPYC\n";
        assert_eq!(
            describe_cpu(info),
            "AMD EPYC (family 25 model 17), 2 online; flags: aes sha_ni avx2 avx512f hypervisor"
        );
        assert_eq!(
            describe_cpu("processor\t: 0\nmodel name\t: X\nflags\t: fpu\n"),
            "X (family ? model ?), 1 online; flags: none of the watched"
        );
    }
}

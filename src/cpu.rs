//! What the processor offers that decides the fast CPU path.

use std::sync::OnceLock;

/// The processor's bf16 matrix units, by name (`AMX-BF16` or `AVX512-BF16`),
/// or `None` when it has none.
///
/// OpenVINO in bf16 pays only on such units: elsewhere it would emulate bf16
/// with no gain, so [`ExecutionProvider::Auto`](crate::ExecutionProvider::Auto)
/// tries OpenVINO only when this is `Some`. Checked once per process.
pub fn bf16_matrix_units() -> Option<&'static str> {
    static UNITS: OnceLock<Option<&'static str>> = OnceLock::new();
    *UNITS.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Option<&'static str> {
    // AMX detection is not stable in std yet; every processor with AMX-BF16
    // also has AVX512-BF16, which is, so that decides and /proc/cpuinfo only
    // names the better unit.
    if !std::arch::is_x86_feature_detected!("avx512bf16") {
        return None;
    }
    let amx = std::fs::read_to_string("/proc/cpuinfo")
        .map(|info| {
            info.lines()
                .find(|l| l.starts_with("flags"))
                .is_some_and(|l| l.split_whitespace().any(|f| f == "amx_bf16"))
        })
        .unwrap_or(false);
    Some(if amx { "AMX-BF16" } else { "AVX512-BF16" })
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Option<&'static str> {
    None
}

//! The processor's features that decide the CPU path.

use serde::Serialize;

/// The flags of `/proc/cpuinfo` that matter here, and what they mean for
/// the element.
#[derive(Debug, Serialize)]
pub struct CpuReport {
    /// The processor's model name.
    pub model: Option<String>,
    /// Logical CPUs.
    pub logical_cpus: usize,
    /// AMX tiles with bf16 (`amx_bf16`).
    pub amx_bf16: bool,
    /// AVX-512 bf16 instructions (`avx512_bf16`).
    pub avx512_bf16: bool,
    /// int8 dot products (`avx512_vnni` or `avx_vnni`).
    pub vnni: bool,
    /// AVX2 (`avx2`).
    pub avx2: bool,
    /// The engine's own verdict: the bf16 matrix units OpenVINO runs on, if any.
    pub bf16_matrix_units: Option<&'static str>,
}

/// Reads `/proc/cpuinfo` (the first processor's flags).
pub fn inspect() -> CpuReport {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    };
    let flags = field("flags").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    CpuReport {
        model: field("model name"),
        logical_cpus: dreamsim::limits::logical_cpus(),
        amx_bf16: has("amx_bf16"),
        avx512_bf16: has("avx512_bf16"),
        vnni: has("avx512_vnni") || has("avx_vnni"),
        avx2: has("avx2"),
        bf16_matrix_units: dreamsim::cpu::bf16_matrix_units(),
    }
}

impl CpuReport {
    /// What the features mean for the CPU path, in one line.
    pub fn verdict(&self) -> String {
        match self.bf16_matrix_units {
            Some(units) => format!(
                "{units}: the OpenVINO build runs the model in bf16 (tools/get_onnxruntime.sh \
                 --build openvino)"
            ),
            None if self.vnni => "no bf16 matrix units; VNNI: an int8 model \
                                  (tools/get_model.sh --int8) is the fast CPU path"
                .into(),
            None => "no bf16 matrix units and no VNNI: fp32 on the CPU provider".into(),
        }
    }
}

//! The `dreamsim` element: attaches to every analysed frame its DreamSim
//! distance to the previous analysed frame and to a reference image
//! ([`crate::meta::DreamSimMeta`]), and posts a `dreamsim` message
//! ([`DreamSimMessage`]) per analysed frame, running the model on batches in
//! its own thread.
//!
//! ```text
//! gst-launch-1.0 -m filesrc location=in.mp4 ! decodebin ! videoconvert \
//!     ! dreamsim reference-location=known.png batch-size=4 ! fakesink
//! ```
//!
//! `queue` keeps buffers and serialized events in order between the
//! streaming thread and the model's; `video` maps a GStreamer frame to the
//! engine's [`dreamsim::Frame`].

use gst::glib;
use gst::prelude::*;

mod imp;
mod message;
mod queue;
pub(crate) mod video;

pub use message::DreamSimMessage;
pub use video::{thumbnail, with_engine_frame};

/// The execution provider property's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDreamSimExecutionProvider")]
pub enum ExecutionProvider {
    /// TensorRT, else CUDA, else OpenVINO in bf16 (only on processors with
    /// bf16 matrix units, unless full-precision), else the CPU; a message
    /// says which runs.
    #[default]
    #[enum_value(
        name = "Auto: TensorRT, else CUDA, else OpenVINO bf16 (AMX / AVX512-BF16 processors), else CPU",
        nick = "auto"
    )]
    Auto = 0,
    /// ONNX Runtime's CPU provider.
    #[enum_value(name = "CPU (ONNX Runtime)", nick = "cpu")]
    Cpu = 1,
    /// ONNX Runtime's CUDA provider; an error if it cannot start.
    #[enum_value(name = "CUDA (onnxruntime-gpu)", nick = "cuda")]
    Cuda = 2,
    /// ONNX Runtime's TensorRT provider; an error if it cannot start.
    #[enum_value(name = "TensorRT (onnxruntime-gpu + TensorRT 10)", nick = "tensorrt")]
    TensorRt = 3,
    /// ONNX Runtime's OpenVINO provider on the CPU; an error if the loaded
    /// ONNX Runtime is not the onnxruntime-openvino build.
    #[enum_value(
        name = "OpenVINO on the CPU (onnxruntime-openvino): bf16 on AMX / AVX512-BF16",
        nick = "openvino"
    )]
    OpenVino = 4,
}

impl From<ExecutionProvider> for dreamsim::ExecutionProvider {
    fn from(p: ExecutionProvider) -> Self {
        match p {
            ExecutionProvider::Auto => Self::Auto,
            ExecutionProvider::Cpu => Self::Cpu,
            ExecutionProvider::Cuda => Self::Cuda,
            ExecutionProvider::TensorRt => Self::TensorRt,
            ExecutionProvider::OpenVino => Self::OpenVino,
        }
    }
}

/// The precision property's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDreamSimPrecision")]
pub enum Precision {
    /// The fastest that starts: TensorRT fp16 only with `fp16`, bf16 on
    /// OpenVINO with bf16 units, else the int8 model installed beside the
    /// fp32 one, else fp32.
    #[default]
    #[enum_value(
        name = "Auto: bf16 on OpenVINO with bf16 units, else the int8 model beside the fp32 one \
                if installed (CPU), else fp32",
        nick = "auto"
    )]
    Auto = 0,
    /// fp32 on every provider (as `full-precision=true`).
    #[enum_value(
        name = "fp32 on every provider (as full-precision=true)",
        nick = "fp32"
    )]
    Fp32 = 1,
    /// The int8 model beside the fp32 one, on the CPU; an error if none.
    #[enum_value(
        name = "int8: the <type>-int8.onnx model beside the fp32 one, on the CPU (tools/get_model.sh --int8)",
        nick = "int8"
    )]
    Int8 = 2,
}

impl From<Precision> for dreamsim::RequestedPrecision {
    fn from(p: Precision) -> Self {
        match p {
            Precision::Auto => Self::Auto,
            Precision::Fp32 => Self::Fp32,
            Precision::Int8 => Self::Int8,
        }
    }
}

glib::wrapper! {
    /// The `dreamsim` element.
    pub struct DreamSim(ObjectSubclass<imp::DreamSim>)
        @extends gst::Element, gst::Object;
}

/// Registers the element with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // gst-inspect documents the enum's values through this.
    ExecutionProvider::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Precision::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "dreamsim",
        gst::Rank::NONE,
        DreamSim::static_type(),
    )
}
